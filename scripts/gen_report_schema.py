#!/usr/bin/env python
"""Write docs/run_report.schema.json from the report model (``--check``: fail when stale).

The schema is generated from :class:`src.pipeline.run_report.RunReport`, so the
documented contract and the reports the tool writes cannot drift apart.
Usage: .venv/bin/python scripts/gen_report_schema.py [--check]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.pipeline.run_report import json_schema  # noqa: E402

TARGET = ROOT / "docs" / "run_report.schema.json"


def main(argv: list[str]) -> int:
    """Generate, or with ``--check`` compare."""
    text = json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run scripts/gen_report_schema.py",
                  file=sys.stderr)  # fmt: skip
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

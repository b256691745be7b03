"""The README and every doc stand alone: each repository file they name exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Paths inside the repository start with one of these; placeholders (<x>, *, {x}) are skipped.
TOP = ("src/", "docs/", "scripts/", "tests/", "config/", ".ci/")
ROOT_FILES = {"README.md", "pyproject.toml", ".env.template", "redshift_keys.json"}


def named_paths(text: str) -> set[str]:
    found = set(re.findall(r"\]\(([^)#\s]+)\)", text))  # Markdown links
    found |= set(re.findall(r"`([^`\s]+)`", text))  # inline code
    paths = set()
    for item in found:
        item = item.rstrip(".,:;")
        if any(c in item for c in "<>*{}$") or item.startswith(("http", "s3://")):
            continue
        if item.startswith(TOP) or item in ROOT_FILES:
            paths.add(item.split(":")[0])
    return paths


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_file_a_doc_names_exists(doc: Path) -> None:
    missing = sorted(p for p in named_paths(doc.read_text()) if not (ROOT / p).exists())
    assert missing == [], f"{doc.name} names files that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_doc_points_outside_the_repository(doc: Path) -> None:
    text = doc.read_text()
    assert "../shared" not in text and "SPEC.md" not in text


def test_config_files_name_existing_docs() -> None:
    for path in [ROOT / ".env.template", *(ROOT / "config").rglob("*.yml")]:
        for name in re.findall(r"docs/[\w-]+\.md", path.read_text()):
            assert (ROOT / name).exists(), f"{path.name} names {name}"


def test_run_report_schema_is_generated_from_the_model() -> None:
    """docs/run_report.schema.json is what the RunReport model says (regenerate when not)."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "scripts/gen_report_schema.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr

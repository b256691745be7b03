"""The peer tools side by side with the product: dlt and Sling (``bench.py --peers``).

They live in their own virtualenv, ``.venv-peers`` (``scripts/peers_env.sh``, the
packages of ``scripts/peers-requirements.txt``), so that nothing of theirs reaches
the product's ``.venv``. Each peer copies the benchmark's table into a PostgreSQL
schema of its own, the way its documentation gives for an incremental table merged
on ``id`` with the ``updated_at`` cursor:

- dlt: ``scripts/peer_dlt.py`` (``sql_table(backend="connectorx")``, ``merge``);
- Sling: ``sling run --mode full-refresh`` the first time, then
  ``--mode incremental --primary-key id --update-key updated_at``.

Connection URLs (with any password) reach the children through their environment,
never their command lines.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-peers"
NAMES = ("dlt", "Sling")


@dataclass(frozen=True)
class Peers:
    """How to run each peer: its interpreter or binary, its work directory, the servers."""

    python: Path
    sling: Path
    home: Path
    mysql_url: str  # mysql://user:password@host:port, no database
    pg_url: str  # postgresql://user:password@host:port/database

    def schemas(self, name: str, prefix: str) -> list[str]:
        """The PostgreSQL schemas a peer writes (dlt keeps a staging one for its merge)."""
        schema = f"{prefix}_{name.lower()}"
        return [schema, f"{schema}_staging"] if name == "dlt" else [schema]

    def command(
        self, name: str, database: str, table: str, schema: str, *, first: bool
    ) -> tuple[list[str], dict[str, str]]:
        """The command line of one run of peer ``name``, and what its environment adds."""
        if name == "dlt":
            home = self.home / "dlt"
            if first:
                shutil.rmtree(home, ignore_errors=True)  # dlt's local pipeline state
            env = {
                "PEER_MYSQL_URL": self.mysql_url.replace("mysql://", "mysql+pymysql://", 1),
                "PEER_PG_URL": self.pg_url,
            }
            script = str(ROOT / "scripts" / "peer_dlt.py")
            return [str(self.python), script, database, table, schema, str(home)], env
        env = {
            "PEER_MYSQL": f"{self.mysql_url}/{database}",
            "PEER_PG": f"{self.pg_url}?sslmode=disable",
            "SLING_HOME_DIR": str(self.home / "sling"),
        }
        mode = ["--mode", "full-refresh"]
        if not first:
            mode = ["--mode", "incremental", "--primary-key", "id", "--update-key", "updated_at"]
        run = ["run", "--src-conn", "PEER_MYSQL", "--src-stream", f"{database}.{table}"]
        run += ["--tgt-conn", "PEER_PG", "--tgt-object", f"{schema}.{table}"]
        return [str(self.sling), *run, *mode], env

    def versions(self) -> str:
        """The peers' versions, for the benchmark's header."""
        code = "import connectorx, dlt; print(dlt.__version__, connectorx.__version__)"
        dlt, cx = subprocess.run(
            [str(self.python), "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
        sling = subprocess.run(
            [str(self.sling), "--version"], check=True, capture_output=True, text=True
        ).stdout.split()[-1]
        return f"dlt {dlt} (sql_table, connectorx {cx}), Sling {sling}"


def prepare(home: Path, mysql_url: str, pg_url: str) -> Peers:
    """Build or check ``.venv-peers`` and find Sling's binary inside its wheel."""
    subprocess.run(["bash", str(ROOT / "scripts" / "peers_env.sh")], check=True)
    python = VENV / "bin" / "python"
    where = "import pathlib, sling_linux_amd64 as s; print(pathlib.Path(s.__file__).parent)"
    package = subprocess.run(
        [str(python), "-c", where], check=True, capture_output=True, text=True
    ).stdout.strip()
    sling = Path(package) / "bin" / "sling-linux-amd64"
    sling.chmod(sling.stat().st_mode | 0o111)  # the wheel does not always keep the bit
    home.mkdir(parents=True, exist_ok=True)
    return Peers(python, sling, home, mysql_url, pg_url)

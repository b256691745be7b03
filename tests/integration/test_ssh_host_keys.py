"""The bastion's host key is checked by default (#12 item 7): unknown and changed keys are
refused with the host, key type, fingerprint and what to do; switching it off is warned."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.integration.test_sync_cli import last_error, orders
from tests.support.databases import MySQLDatabase
from tests.support.pipelines import Project, make_project
from tests.support.sshd import SshdServer

HYBRID = {"cdc_strategy": "hybrid", "cdc_timestamp_column": "updated_at", "cdc_id_column": "id"}


def _project(tmp_path: Path, db: MySQLDatabase, sshd: SshdServer, **tunnel: Any) -> Project:
    table = orders(db, rows=50)
    cfg = {
        "enabled": True,
        "host": sshd.host,
        "port": sshd.port,
        "username": sshd.user,
        "private_key_path": str(sshd.private_key_path),
        **tunnel,
    }
    project = make_project(tmp_path, db, {table: HYBRID}, source_extra={"ssh_tunnel": cfg})
    project.env["HOME"] = str(tmp_path / "home")  # no ~/.ssh/known_hosts of the machine's
    return project


def _server_fingerprint(sshd: SshdServer) -> str:
    """The host key's fingerprint as OpenSSH prints it (``SHA256:…``)."""
    public = sshd.known_hosts_path.parent / "ssh_host_key.pub"
    listed = subprocess.run(["ssh-keygen", "-lf", str(public)], capture_output=True, text=True)
    return listed.stdout.split()[1]


def _error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    return last_error(result)


def test_an_unknown_host_key_is_refused_naming_its_fingerprint(
    tmp_path: Path, mysql_db: MySQLDatabase, sshd: SshdServer
) -> None:
    project = _project(tmp_path, mysql_db, sshd)  # no known_hosts, none in ~/.ssh
    result = project.cli("sync", "pipeline", "-p", "p", "--backup-only")
    assert result.returncode == 1, result.stderr  # a person must check the key: no retry
    line = _error(result)
    assert f"[127.0.0.1]:{sshd.port} is not known" in line, line
    assert _server_fingerprint(sshd) in line and "ssh-keyscan" in line, line


def test_a_changed_host_key_is_refused(
    tmp_path: Path, mysql_db: MySQLDatabase, sshd: SshdServer
) -> None:
    kind, blob = Path(f"{sshd.wrong_key_path}.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n")  # another key, same type
    project = _project(tmp_path, mysql_db, sshd, known_hosts=str(known))
    result = project.cli("sync", "pipeline", "-p", "p", "--backup-only")
    assert result.returncode == 1, result.stderr
    line = _error(result)
    assert "has changed" in line and kind in line and _server_fingerprint(sshd) in line, line
    assert not list((tmp_path / "stage").rglob("*.parquet"))  # nothing was read or staged


def test_the_configured_known_hosts_lets_the_run_through(
    tmp_path: Path, mysql_db: MySQLDatabase, sshd: SshdServer
) -> None:
    project = _project(tmp_path, mysql_db, sshd, known_hosts=str(sshd.known_hosts_path))
    result = project.cli("sync", "pipeline", "-p", "p", "--backup-only")
    assert result.returncode == 0, result.stderr
    assert "strict_host_key_checking" not in result.stderr


def test_switching_the_check_off_is_warned_on_every_run(
    tmp_path: Path, mysql_db: MySQLDatabase, sshd: SshdServer
) -> None:
    project = _project(tmp_path, mysql_db, sshd, strict_host_key_checking=False)
    for _ in range(2):
        result = project.cli("sync", "pipeline", "-p", "p", "--backup-only")
        assert result.returncode == 0, result.stderr
        assert "strict_host_key_checking is false" in result.stderr, result.stderr

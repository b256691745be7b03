"""Secret redaction in every log event, stdlib log record and error line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import structlog

from src.utils.logging_setup import configure_logging, get_logger, register_secrets, scrub_text

SECRET = "s3cr3t-Pa55/word+="


@pytest.fixture(autouse=True)
def _secrets() -> None:
    register_secrets([SECRET])


def test_scrub_text_masks_plain_and_url_encoded_forms() -> None:
    assert scrub_text(f"password={SECRET}") == "password=***"
    assert scrub_text("mysql://u:s3cr3t-Pa55%2Fword%2B%3D@h/db") == "mysql://u:***@h/db"


def test_structlog_events_and_exceptions_are_scrubbed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "run.log"
    configure_logging(json_logs=True, log_file=str(log_file))
    log = get_logger("test")
    log.info("connecting", dsn=f"postgres://u:{SECRET}@h", nested={"k": [SECRET]})
    try:
        raise RuntimeError(f"login failed with {SECRET}")
    except RuntimeError:
        log.exception("boom")
    logging.getLogger("botocore").warning("header Authorization: %s", SECRET)
    err = capsys.readouterr().err
    written = log_file.read_text()
    for text in (err, written):
        assert SECRET not in text
        assert "***" in text
    events = [json.loads(line) for line in written.splitlines() if line.startswith("{")]
    assert events[0]["event"] == "connecting"
    assert "login failed with ***" in events[1]["exception"]
    structlog.reset_defaults()


def test_short_values_are_not_registered() -> None:
    register_secrets(["ab"])
    assert scrub_text("abc") == "abc"

"""A connection's login as the driver needs it: the file's, Secrets Manager's, or Redshift's.

A :class:`~src.config.credentials.SecretRef` is fetched once per process (one run)
and kept in memory; the value is registered for redaction before it is returned, so
no log line, report or error can show it. A secret that cannot be read is an
``Error:`` line naming the secret (never its value) and what to check.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import SecretStr

from src.config.credentials import RedshiftIam, SecretRef
from src.config.settings import TargetConnection
from src.errors import ConfigError, SourceConnectionError, first_line
from src.utils.logging_setup import register_secrets


def password_of(value: SecretStr | SecretRef) -> str:
    """The password a connection logs in with."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return _fetched(value)


@functools.cache
def _fetched(ref: SecretRef) -> str:
    import boto3  # only for a run that names a secret

    check = "its name, and that this host's AWS identity may call secretsmanager:GetSecretValue"
    with _asking_aws(f"secret {ref.secret}", check):
        client = boto3.client("secretsmanager", region_name=ref.region_name)
        text = client.get_secret_value(SecretId=ref.secret)["SecretString"]
    if ref.key is None:
        register_secrets([text])
        return str(text)
    try:
        value = json.loads(text)[ref.key]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"secret {ref.secret} is not a JSON object with the key {ref.key!r}"
        ) from None
    register_secrets([str(value)])
    return str(value)


def target_login(cfg: TargetConnection) -> tuple[str, str]:
    """``(user, password)`` a target logs in with: temporary IAM credentials, or the file's."""
    if cfg.iam_auth is None:
        return cfg.username, password_of(cfg.password)
    user, password, expires = _temporary(cfg.iam_auth, cfg.database)
    if time.time() > expires - _EARLY:  # a long run outlived them: ask again
        _temporary.cache_clear()
        user, password, expires = _temporary(cfg.iam_auth, cfg.database)
    return user, password


_EARLY = 60.0  # seconds before expiry that credentials are asked for again


@functools.cache
def _temporary(iam: RedshiftIam, database: str) -> tuple[str, str, float]:
    """GetClusterCredentials / Serverless GetCredentials: user, password, expiry (epoch)."""
    import boto3

    what = f"Redshift temporary credentials for {iam.cluster_identifier or iam.workgroup}"
    with _asking_aws(what, "iam_auth, and that this host's AWS identity may ask for them"):
        if iam.cluster_identifier:
            got = boto3.client("redshift", region_name=iam.region).get_cluster_credentials(
                DbUser=iam.db_user,
                DbName=database,
                ClusterIdentifier=iam.cluster_identifier,
                DurationSeconds=iam.duration_seconds,
                AutoCreate=iam.auto_create,
            )
            user, password, expires = got["DbUser"], got["DbPassword"], got["Expiration"]
        else:
            got = boto3.client("redshift-serverless", region_name=iam.region).get_credentials(
                workgroupName=iam.workgroup, dbName=database, durationSeconds=iam.duration_seconds
            )
            user, password, expires = got["dbUser"], got["dbPassword"], got["expiration"]
    register_secrets([password])
    return str(user), str(password), expires.timestamp()


@contextmanager
def _asking_aws(what: str, check: str) -> Iterator[None]:
    """AWS's refusal as a configuration error, AWS out of reach as a connection error."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise ConfigError(f"{what} could not be read ({code}); check {check}") from None
    except BotoCoreError as exc:
        raise SourceConnectionError(
            f"AWS could not be reached for {what}: {first_line(exc)}"
        ) from None

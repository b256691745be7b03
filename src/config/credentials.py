"""Where a connection's password comes from when it is not in the file: AWS.

``password: {secret: <ARN or name>, key: password}`` fetches the secret once per run
with boto3's default credential chain (:mod:`src.core.secrets`); ``key`` picks one
field of a JSON secret (the shape RDS and Redshift write), without it the whole
secret string is the password. The value lives in memory only and is redacted from
every log line, like a password in the file. A Redshift target may log in with
temporary credentials instead (``iam_auth:``, :class:`RedshiftIam`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SecretRef(BaseModel):
    """A password kept in AWS Secrets Manager."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    secret: str  # the secret's ARN or name
    key: str | None = None  # a field of a JSON secret
    region: str | None = None  # default: the ARN's region, else AWS's default chain

    @property
    def region_name(self) -> str | None:
        """The region to ask: set, or the one in the ARN."""
        if self.region:
            return self.region
        parts = self.secret.split(":")
        return parts[3] if len(parts) > 3 and self.secret.startswith("arn:") else None


class RedshiftIam(BaseModel):
    """Temporary Redshift credentials instead of a password (``iam_auth:`` of a target).

    A provisioned cluster's ``GetClusterCredentials`` (``cluster_identifier`` and
    ``db_user``), or Redshift Serverless' ``GetCredentials`` (``workgroup``), asked
    with boto3's default credential chain when the run first connects.
    https://docs.aws.amazon.com/redshift/latest/mgmt/generating-user-credentials.html
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cluster_identifier: str | None = None
    db_user: str | None = None
    auto_create: bool = False
    workgroup: str | None = None
    duration_seconds: int = Field(900, ge=900, le=3600)
    region: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> RedshiftIam:
        if bool(self.cluster_identifier) == bool(self.workgroup):
            raise ValueError("iam_auth needs cluster_identifier (with db_user) or workgroup")
        if self.cluster_identifier and not self.db_user:
            raise ValueError("iam_auth with cluster_identifier needs db_user")
        return self

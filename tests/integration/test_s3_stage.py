"""The S3 stage against a real S3 API (moto's server): what the rest of the code relies on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from src.config.settings import S3Performance, StageConfig
from src.core.s3_stage import S3Stage
from src.errors import StageError
from tests.support.s3_server import S3Bucket

ROOT = Path(__file__).resolve().parents[2]


def _stage(bucket: S3Bucket, name: str | None = None, **performance: int) -> S3Stage:
    server = bucket.server
    cfg = StageConfig(
        bucket_name=name or bucket.name,
        region=server.region,
        endpoint_url=server.endpoint_url,
        access_key_id=SecretStr(server.access_key),
        secret_access_key=SecretStr(server.secret_key),
        performance=S3Performance(**performance),
    )
    return S3Stage("s3", cfg)


def test_a_missing_key_is_none_but_a_missing_bucket_fails(s3_bucket: S3Bucket) -> None:
    stage = _stage(s3_bucket)
    assert stage.get_bytes("watermarks/v2/none.json") is None
    assert stage.size("watermarks/v2/none.json") is None
    gone = _stage(s3_bucket, name=f"{s3_bucket.name}-gone")
    with pytest.raises(StageError, match=r"read w\.json failed: NoSuchBucket"):
        gone.get_bytes("w.json")  # a missing watermark would mean "start over"


def test_listing_keeps_exactly_the_prefix_and_pages_past_1000(s3_bucket: S3Bucket) -> None:
    stage = _stage(s3_bucket)
    for key in ("t/orders/a", "t/orders/b", "t/orders_archive/c", "t/ord", "t/other"):
        stage.put_bytes(key, b"x")
    assert [o.key for o in stage.list("t/orders/")] == ["t/orders/a", "t/orders/b"]
    assert sorted(o.key for o in stage.list("t/ord")) == [
        "t/ord",
        "t/orders/a",
        "t/orders/b",
        "t/orders_archive/c",
    ]
    keys = [f"many/{n:05d}" for n in range(1_205)]
    for key in keys:
        stage.put_bytes(key, b"x")
    assert [o.key for o in stage.list("many/")] == keys  # moto's pages are cut at 1000
    assert stage.delete(keys) == 1_205  # in batches: moto refuses more than 1000 at once
    assert s3_bucket.keys("many/") == []


def test_create_exclusive_lets_exactly_one_creator_win(s3_bucket: S3Bucket) -> None:
    stage = _stage(s3_bucket)
    assert stage.create_exclusive("locks/a.lock", b"first") is True
    assert stage.create_exclusive("locks/a.lock", b"second") is False
    assert stage.get_bytes("locks/a.lock") == b"first"


def test_replace_if_swaps_only_what_it_read(s3_bucket: S3Bucket) -> None:
    """Lock renewal's compare-and-swap: the content compared, then S3's ``If-Match``."""
    stage = _stage(s3_bucket)
    assert stage.replace_if("locks/b.lock", b"mine", b"renewed") is False  # absent
    stage.put_bytes("locks/b.lock", b"mine")
    assert stage.replace_if("locks/b.lock", b"theirs", b"renewed") is False
    assert stage.replace_if("locks/b.lock", b"mine", b"renewed") is True
    assert stage.get_bytes("locks/b.lock") == b"renewed"
    # Another writer between the GET and the PUT: the PUT's If-Match names the old ETag.
    store = stage._store
    stale = store.get("locks/b.lock").meta["e_tag"]
    stage.put_bytes("locks/b.lock", b"taken over")
    from obstore.exceptions import PreconditionError

    with pytest.raises(PreconditionError):
        store.put("locks/b.lock", b"renewed again", mode={"e_tag": stale}, use_multipart=False)
    assert stage.get_bytes("locks/b.lock") == b"taken over"


@pytest.mark.parametrize("threshold", [5 * 2**20, 2**30], ids=["multipart", "single-put"])
def test_uploads_arrive_whole_either_way(
    s3_bucket: S3Bucket, tmp_path: Path, threshold: int
) -> None:
    data = os.urandom(12 * 2**20)
    path = tmp_path / "f.parquet"
    path.write_bytes(data)
    stage = _stage(s3_bucket, multipart_threshold=threshold, multipart_chunksize=5 * 2**20)
    stage.put_file("data/f.parquet", str(path))
    assert stage.size("data/f.parquet") == len(data)
    # A multipart object's ETag ends in "-<parts>": past the threshold the file goes up
    # in parts, not read into memory for one PUT.
    etag = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key="data/f.parquet")["ETag"]
    assert etag.strip('"').endswith("-3") == (threshold < len(data)), etag
    assert stage.get_range("data/f.parquet", 100, 200) == data[100:200]
    assert stage.get_bytes("data/f.parquet") == data


def test_a_stage_with_keys_never_loads_boto3(s3_bucket: S3Bucket) -> None:
    """boto3's import and client cost 0.3 s before a run's first row (docs/benchmarks.md)."""
    server = s3_bucket.server
    code = (
        "import sys; from src.config.settings import StageConfig; "
        "from src.core.s3_stage import S3Stage; "
        f"s = S3Stage('s3', StageConfig(bucket_name={s3_bucket.name!r}, region={server.region!r},"
        f" endpoint_url={server.endpoint_url!r}, access_key_id={server.access_key!r},"
        f" secret_access_key={server.secret_key!r})); "
        "s.put_bytes('k', b'v'); assert s.get_bytes('k') == b'v'; "
        "print([m for m in ('boto3', 'botocore') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"

"""s3-redshift-backup: MySQL → Parquet in a stage → Redshift / PostgreSQL (SPEC §1)."""

import os

# Arrow's C++ allocator is chosen once, from this variable, when pyarrow loads; so it
# is set here, before any module of ours imports pyarrow (an operator's own value
# wins). With the load running alongside the extract, two stages allocate at once in
# several threads, and mimalloc (the default) keeps each thread's freed pages: a
# 2M-row `sync pipeline` peaked at 302-325 MB with mimalloc and 238-253 MB with
# jemalloc, at the same speed (docs/benchmarks.md). A pyarrow built without jemalloc
# warns once and keeps its default.
# https://arrow.apache.org/docs/cpp/env_vars.html#envvar-ARROW_DEFAULT_MEMORY_POOL
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

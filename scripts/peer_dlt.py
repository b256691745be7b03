"""One dlt run of the benchmark's table, MySQL → PostgreSQL (run by ``.venv-peers/bin/python``).

``scripts/bench_peers.py`` starts it; it is not part of the product and imports
nothing of it. The resource is what dlt's docs give for an incremental table:
``sql_table(backend="connectorx")`` with an ``updated_at`` cursor, merged on
``id`` — the first run loads every row, the next only the rows past the cursor.

Usage: PEER_MYSQL_URL=mysql+pymysql://user:pw@host:port PEER_PG_URL=postgresql://… \
       peer_dlt.py DATABASE TABLE DATASET PIPELINES_DIR
"""

import os
import sys

import dlt
from dlt.sources.sql_database import sql_table


def main(database: str, table: str, dataset: str, home: str) -> None:
    """Run the pipeline once; raise when a load job failed."""
    mysql_url, pg_url = os.environ["PEER_MYSQL_URL"], os.environ["PEER_PG_URL"]
    resource = sql_table(
        credentials=f"{mysql_url}/{database}",
        table=table,
        backend="connectorx",
        incremental=dlt.sources.incremental("updated_at"),
    )
    resource.apply_hints(write_disposition="merge", primary_key="id")
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{dataset}",
        destination=dlt.destinations.postgres(pg_url),
        dataset_name=dataset,
        pipelines_dir=home,
    )
    pipeline.run(resource).raise_on_failed_jobs()


if __name__ == "__main__":
    main(*sys.argv[1:5])

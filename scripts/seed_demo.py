"""Create and fill demo_shop.parcels (the SPEC §10.1 table) in the local MariaDB.

Usage: .venv/bin/python scripts/seed_demo.py --rows N [--database demo_shop]
       [--host 127.0.0.1] [--port 3306] [--user root]
Also used by scripts/bench.py to build the benchmark table.
"""

from __future__ import annotations

import argparse
import os

import pymysql

DDL = """
CREATE TABLE parcels (
 id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
 tracking_number VARCHAR(64) NOT NULL, order_id BIGINT, status TINYINT,
 is_active TINYINT(1), weight DECIMAL(10,3), price DECIMAL(12,2),
 zone VARCHAR(16), note VARCHAR(255), created_at DATETIME,
 updated_at DATETIME(6) NOT NULL, shipped_date DATE,
 KEY idx_updated (updated_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""

# One INSERT ... SELECT over MariaDB's Sequence engine: fast, no Python row loop.
FILL = """
INSERT INTO parcels (id, tracking_number, order_id, status, is_active, weight, price, zone,
                     note, created_at, updated_at, shipped_date)
SELECT seq, CONCAT('UNI', LPAD(seq, 12, '0')), seq * 7 % 100000007, seq % 9, seq % 2,
       (seq % 50000) / 1000, (seq % 100000) / 100,
       ELT(1 + seq % 5, 'north', 'south', 'east', 'west', 'central'),
       IF(seq % 10 = 0, NULL, CONCAT('note for parcel ', seq, ' — ünïcödé')),
       '2025-01-01' + INTERVAL (seq DIV 10) SECOND,
       '2025-01-01' + INTERVAL (seq DIV 3) SECOND + INTERVAL (seq % 1000) MICROSECOND,
       '2025-01-01' + INTERVAL (seq DIV 100000) DAY
FROM seq_{lo}_to_{hi}
"""


def seed(rows: int, database: str, host: str, port: int, user: str, password: str) -> None:
    """Drop and recreate ``database``.parcels with ``rows`` rows."""
    conn = pymysql.connect(
        host=host, port=port, user=user, password=password, autocommit=True, charset="utf8mb4"
    )
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4")
        cur.execute(f"USE `{database}`")
        cur.execute("DROP TABLE IF EXISTS parcels")
        cur.execute(DDL)
        step = 1_000_000
        for lo in range(1, rows + 1, step):
            cur.execute(FILL.format(lo=lo, hi=min(lo + step - 1, rows)))
        cur.execute("ANALYZE TABLE parcels")
        cur.fetchall()
    conn.close()


def main() -> None:
    """Parse arguments and seed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--database", default="demo_shop")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--user", default="root")
    args = parser.parse_args()
    password = os.environ.get("DB_DEMO_PASSWORD", "")
    seed(args.rows, args.database, args.host, args.port, args.user, password)
    print(f"seeded {args.rows} rows into {args.database}.parcels")


if __name__ == "__main__":
    main()

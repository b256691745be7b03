from tests.support.databases import MySQLDatabase, PgSchema


def test_mysql_fixture(mysql_db: MySQLDatabase) -> None:
    mysql_db.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    mysql_db.execute("INSERT INTO t VALUES (1), (2)")
    assert mysql_db.execute("SELECT COUNT(*) FROM t") == [(2,)]


def test_pg_fixture(pg: PgSchema) -> None:
    pg.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    pg.execute("INSERT INTO t VALUES (1), (2)")
    assert pg.execute("SELECT COUNT(*) FROM t") == [(2,)]

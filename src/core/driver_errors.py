"""What a database driver's exception means for a run: did the connection fail?

One classifier for every caller (the load, verify, the MySQL reader), so a
connection that could not be made or was lost is told apart from a statement the
server refused the same way everywhere: the first is a connection fault (a new
connection may succeed), the second is not.
"""

from __future__ import annotations

# SQLSTATE classes and codes of a connection the server ended
# (https://www.postgresql.org/docs/current/errcodes-appendix.html): 08 connection
# exception; 57P01 admin_shutdown (pg_terminate_backend, a restart), 57P02
# crash_shutdown, 57P03 cannot_connect_now.
_PG_LOST_CLASSES = ("08",)
_PG_LOST_CODES = frozenset({"57P01", "57P02", "57P03"})
# MySQL errors of a connection that failed: 1045 access denied, 2003 cannot connect,
# 2006 server has gone away, 2013 lost connection during query, 2055 lost connection
# at system error (https://mariadb.com/kb/en/mariadb-error-codes/), 1927 connection
# killed (MariaDB's KILL).
_MYSQL_CONNECTION_CODES = frozenset({1045, 1927, 2003, 2006, 2013, 2055})


def connection_failed(exc: BaseException) -> bool:
    """Whether ``exc`` (psycopg2 or PyMySQL) is a connection that failed, not a statement."""
    import psycopg2
    import pymysql

    if isinstance(exc, psycopg2.InterfaceError):
        return True  # "connection already closed"
    if isinstance(exc, psycopg2.OperationalError):
        code = getattr(exc, "pgcode", None)
        # No SQLSTATE: libpq's own "server closed the connection unexpectedly".
        return code is None or code.startswith(_PG_LOST_CLASSES) or code in _PG_LOST_CODES
    if isinstance(exc, pymysql.err.InterfaceError):
        return True  # "(0, '')": the socket is closed
    if isinstance(exc, pymysql.err.OperationalError):
        return bool(exc.args) and exc.args[0] in _MYSQL_CONNECTION_CODES
    return False

"""A PostgreSQL server for the benchmarks, started the way the tests start theirs (tests/pg_server.py).

One difference: the tests turn ``synchronous_commit`` off for speed; here it stays on, so a commit is written
to the WAL before it is acknowledged, while ``fsync=off`` skips the flush to disk. That is the durability of
SQLite's WAL with ``synchronous=NORMAL``: an acknowledged order survives a crash of any process, not an OS
crash or power loss. The comparison with SQLite is like for like.
"""

from __future__ import annotations

from tests.pg_server import PostgresServer, find_pg_bin


class BenchPostgres(PostgresServer):
    @classmethod
    def start_if_available(cls) -> BenchPostgres | None:
        bin_dir = find_pg_bin()
        if bin_dir is None:
            return None
        server = cls(bin_dir)
        server.start()
        return server

    def start(self) -> None:
        if self._as_postgres:
            import shutil

            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=on"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w", "start")

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

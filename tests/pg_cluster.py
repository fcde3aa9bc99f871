"""A private PostgreSQL cluster for the tests: initdb in a temporary directory, pg_ctl on
127.0.0.1 with a free port, its unix socket in that directory, stopped and removed afterwards.

As root the server runs as the `postgres` user (initdb refuses root). `find_binaries` is None
when the server is not installed (`make setup` installs it from Debian's packages when root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

_SEARCH = ("/usr/lib/postgresql", "/usr/local/pgsql/bin")


def find_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl, or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    for root in _SEARCH:
        for cand in sorted(Path(root).glob("*/bin"), reverse=True) + [Path(root)]:
            if (cand / "initdb").exists() and (cand / "pg_ctl").exists():
                return cand
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.user = "postgres" if os.getuid() == 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="plantwatch-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "plantwatch", "-A", "trust", "-E", "UTF8", "--no-locale",
                  "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([str(self.bindir / tool), *args], check=True, user=self.user,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.dir)

    def start(self) -> None:
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.dir}"
                " -c fsync=off -c max_connections=40")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-o", opts, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://plantwatch@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """A new empty database in the cluster; its DSN."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

"""Stores the tests share, built once per session in pytest's temporary directory.

Tests that change a store copy it first (shutil.copy) or use `empty_store`, which is their own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plantwatch.core.store.database import Store
from tests.tui_support import build_demo_store, build_hostile_store


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo, learned then detected (tests using it are marked `needs_demo`)."""
    return build_demo_store(tmp_path_factory.mktemp("demo") / "demo.sqlite")


@pytest.fixture(scope="session")
def hostile_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of wire strings carrying Rich markup and ANSI escapes."""
    return build_hostile_store(tmp_path_factory.mktemp("hostile"))


@pytest.fixture
def empty_store(tmp_path: Path) -> Path:
    """A new store with the schema and no data, this test's own."""
    path = tmp_path / "empty.sqlite"
    Store(path).close()
    return path


@pytest.fixture(scope="session")
def pg_cluster():
    """A private PostgreSQL server for the session (tests/pg_cluster.py); each test makes its
    own database in it with `pg_cluster.create_database(name)`."""
    from tests.pg_cluster import Cluster, find_binaries

    bindir = find_binaries()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (make setup installs it when root): PostgreSQL store tests skipped")
    pytest.importorskip("psycopg", reason="psycopg is not installed: PostgreSQL store tests skipped")
    cluster = Cluster(bindir)
    yield cluster
    cluster.close()

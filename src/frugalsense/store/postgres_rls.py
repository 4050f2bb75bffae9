"""Row-level security on PostgreSQL: a second wall behind the tenant filter every statement already carries.

Migration ``m010_row_level_security`` (and each later one, for the tables it creates) gives every table holding
tenant rows (`TENANT_TABLES`) a policy that shows and accepts only the rows of the tenant the session names in
``frugalsense.tenant`` (or every row when it says `ALL_TENANTS`); ``FORCE`` makes the tables' owner, usually the
service's own role, subject to it as well. An unset or empty setting shows nothing.

The stores set it for the caller: every public method of a PostgreSQL store whose first argument is
``tenant_id`` runs inside `tenant_scope` of that tenant, and the connection's lock (`TenantLock`) sets the
session to the scope of whoever takes it. So a statement of ``get_face(tenant_id, face_id)`` that forgot its
``tenant_id = ?`` still finds only that tenant's face. The public methods without a tenant (checking a key by
its prefix, listing tenants, the usage ledger's batches, a session by its digest, vector rows by row number) run
as `ALL_TENANTS`; anything else, such as a private read from outside, sees nothing.

What it does not protect, and why, is in docs/postgres.md ("Tenant isolation and row-level security").

    >>> with tenant_scope("ten_a"):
    ...     current_scope()
    'ten_a'
    >>> current_scope()
    ''
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = [
    "ALL_TENANTS",
    "M010_TABLES",
    "NO_ROWS",
    "TENANT_SETTING",
    "TENANT_TABLES",
    "TenantLock",
    "all_tenants",
    "current_scope",
    "row_security",
    "scope_methods",
    "scope_of",
    "tenant_scope",
]

#: the session setting the policies read
TENANT_SETTING = "frugalsense.tenant"
#: its value for maintenance (migrations, copies) and the calls that must cross tenants
ALL_TENANTS = "*"
#: table -> the column naming its tenant, for the tables m010 put under the policy. Never change it: a migration
#: that shipped must create the same policies on every database; a later table gets its policy from the migration
#: that creates it and is listed in `TENANT_TABLES`.
M010_TABLES = {
    "tenants": "id",
    "api_keys": "tenant_id",
    "collections": "tenant_id",
    "persons": "tenant_id",
    "faces": "tenant_id",
    "face_embeddings": "tenant_id",
    "corrections": "tenant_id",
    "face_state": "tenant_id",
    "items": "tenant_id",
    "item_labels": "tenant_id",
    "item_faces": "tenant_id",
    "item_vectors": "tenant_id",
    "item_refs": "tenant_id",
    "search_state": "tenant_id",
    "usage": "tenant_id",
    "console_sessions": "tenant_id",
}
#: every table of tenant rows -> the column naming its tenant. Not here: ``item_text``. Full-text ``@@`` and
#: trigram ``LIKE`` are not leakproof, so under a policy PostgreSQL may not use their GIN indexes and scans every
#: text row of the tenant (docs/postgres.md has the measurement); keyword search keeps its own ``tenant_id = ?``
#: as its only wall.
TENANT_TABLES = {
    **M010_TABLES,
    # m011_batch_jobs
    "jobs": "tenant_id",
    "job_files": "tenant_id",
}

#: public methods of the stores that read no tenant's rows (DDL, VACUUM and ANALYZE are not row-level secured):
#: they keep their caller's scope
NO_ROWS = frozenset(
    {
        "close",
        "data_version",
        "checkpoint",
        "vacuum",
        "purge_deleted_text",
        "bulk_load",
        "build_vector_indexes",
        "search_store",
        "usage_ledger",
    }
)

_SCOPE: ContextVar[str] = ContextVar("frugalsense_tenant_scope", default="")
_SCOPED = "__frugalsense_scoped__"


def row_security(table: str, column: str = "tenant_id") -> list[str]:
    """The statements that put ``table`` under the tenant policy (for the migration that creates a table)."""
    # The setting is read once per statement (an InitPlan), not once per row.
    setting = f"(SELECT current_setting('{TENANT_SETTING}', true))"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_rows ON {table} USING ({column} = {setting} OR {setting} = '{ALL_TENANTS}')",
    ]


def current_scope() -> str:
    """The tenant the running store call acts for: a tenant id, `ALL_TENANTS`, or '' (nothing)."""
    return _SCOPE.get()


@contextmanager
def tenant_scope(tenant: str) -> Iterator[None]:
    """Store calls inside act for ``tenant`` only."""
    token = _SCOPE.set(tenant)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def all_tenants() -> AbstractContextManager[None]:
    """Store calls inside see every tenant's rows: maintenance, and tests reading behind a store's back."""
    return tenant_scope(ALL_TENANTS)


def _scoped(fn: Callable[..., Any]) -> Callable[..., Any]:
    by_tenant = list(inspect.signature(fn).parameters)[1:2] == ["tenant_id"]

    @functools.wraps(fn)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not by_tenant:
            scope = ALL_TENANTS
        else:
            tenant = args[0] if args else kwargs.get("tenant_id")
            # a tenant id is never "*"; one that says so gets nothing rather than everything
            scope = tenant if isinstance(tenant, str) and tenant != ALL_TENANTS else ""
        token = _SCOPE.set(scope)
        try:
            return fn(self, *args, **kwargs)
        finally:
            _SCOPE.reset(token)

    setattr(run, _SCOPED, "tenant" if by_tenant else "all")
    return run


def scope_of(cls: type, name: str) -> str:
    """How a store class's method runs: "tenant" (its ``tenant_id``'s rows), "all" (`ALL_TENANTS`) or "caller"
    (in whatever scope it is called)."""
    return str(getattr(inspect.getattr_static(cls, name), _SCOPED, "caller"))


def scope_methods(cls: type, skip: frozenset[str]) -> None:
    """Wrap the public methods ``cls`` has (its own and inherited ones) so each runs in its tenant's scope, or as
    `ALL_TENANTS` when its first argument is not ``tenant_id``. Names in ``skip`` stay as they are (they run in
    their caller's scope), and so do generators, whose bodies run after the call returned."""
    for name in dir(cls):
        fn = inspect.getattr_static(cls, name)
        if name.startswith("_") or name in skip or not inspect.isfunction(fn) or getattr(fn, _SCOPED, False):
            continue
        if inspect.isgeneratorfunction(fn):
            continue
        setattr(cls, name, _scoped(fn))


class TenantLock:
    """A connection's lock: whoever takes it first has ``apply`` set the session's tenant to their scope (it
    talks to the database only when the scope changed). Taken again inside, by the same thread, it must find the
    same scope: a call for another tenant inside a held lock would otherwise run with the outer tenant's rows."""

    def __init__(self, apply: Callable[[str, bool], None]) -> None:
        self._lock = threading.RLock()
        self._apply = apply
        self._depth = 0

    def __enter__(self) -> TenantLock:
        self._lock.acquire()
        self._depth += 1
        try:
            self._apply(_SCOPE.get(), self._depth > 1)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        self._lock.release()

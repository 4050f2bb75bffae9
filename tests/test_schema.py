"""Schemathesis over the server's own OpenAPI schema: whatever it sends, no response is a 5xx, and every 2xx body
it gets back under /v1 (2xx bodies and problem details alike) conforms to the schema the document declares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _server import Server

schemathesis = pytest.importorskip("schemathesis")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("schema"), model_dir, env={"FRUGALSENSE_RATE_PER_KEY": "0"}).start()
    yield srv
    srv.kill()


def test_generated_requests_get_no_server_errors_and_conforming_bodies(server: Server) -> None:
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import response_schema_conformance

    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    conforming: set[str] = set()
    problems: set[int] = set()  # error statuses whose problem-details body matched the schema
    calls = 0
    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=op.as_strategy())
        def check(case: object) -> None:
            nonlocal calls
            calls += 1
            response = case.call(headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=60)  # type: ignore[attr-defined]
            where = f"{case.method} {case.formatted_path}"  # type: ignore[attr-defined]
            if response.status_code >= 500:
                failures.append(f"{where}: {response.status_code} {response.text[:200]}")
            elif case.path.startswith("/v1"):  # type: ignore[attr-defined]
                try:
                    case.validate_response(response, checks=[response_schema_conformance])  # type: ignore[attr-defined]
                except (AssertionError, BaseExceptionGroup) as exc:  # one schemathesis failure, or a group
                    found = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
                    detail = "; ".join(str(e) for e in found)
                    failures.append(
                        f"{where}: {response.status_code} body does not match its schema: {detail}"[:800]
                    )
                else:
                    if response.status_code < 300:
                        conforming.add(f"{case.method} {case.path}")  # type: ignore[attr-defined]
                    else:
                        problems.add(response.status_code)

        check()
    assert calls >= 100, f"only {calls} generated requests were sent"
    assert not failures, "\n".join(failures[:20])
    # Random ids mostly miss, but the routes that list or create answer 2xx and so were checked.
    assert {"GET /v1/collections", "POST /v1/collections", "GET /v1/keys", "GET /v1/items"} <= conforming, (
        conforming
    )
    assert {404, 422} <= problems, problems

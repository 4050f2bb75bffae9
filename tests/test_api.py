"""The HTTP API against a real server on 127.0.0.1: routes, auth, errors as problem details, the cost header."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from _server import Server
from frugalsense.samples import write_samples


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Server]:
    srv = Server(
        tmp_path_factory.mktemp("api"),
        model_dir,
        env={"FRUGALSENSE_MAX_UPLOAD_BYTES": str(4 * 1024 * 1024), "FRUGALSENSE_RATE_PER_KEY": "0"},
    ).start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_samples(tmp_path_factory.mktemp("samples"))


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=120
    ) as c:
        yield c


def test_first_start_prints_an_admin_key(server: Server) -> None:
    assert server.admin_key.startswith("fs_")
    assert any("Listening on http://127.0.0.1" in line for line in server.output)


def test_operations_routes(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json()["status"] == "ready"
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert "/v1/collections/{collection_id}/identify" in schema["paths"]
    assert "multipart/form-data" in schema["paths"]["/v1/analyze"]["post"]["requestBody"]["content"]
    assert "swagger" in httpx.get(f"{server.url}/docs").text.lower()
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "frugalsense_requests_total" in metrics


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer fs_nope_nope"}, 401), ({"X-API-Key": "wrong"}, 401)],
)
def test_requests_without_a_valid_key_are_refused(server: Server, headers: dict[str, str], status: int) -> None:
    response = httpx.get(f"{server.url}/v1/collections", headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "unauthorized"


def test_analyze_multipart_and_base64_with_receipt(http: httpx.Client, samples: list[Path]) -> None:
    photo = samples[0].read_bytes()
    response = http.post(
        "/v1/analyze", files={"file": ("photo.jpg", photo)}, data={"features": "faces,moderation"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["pages"][0]["faces"]) == 1
    assert body["receipt"]["cpu_seconds"] > 0
    assert response.headers["x-cost-receipt"].startswith("cpu_s=")
    as_json = http.post("/v1/analyze", json={"file": base64.b64encode(photo).decode(), "features": ["faces"]})
    assert as_json.status_code == 200, as_json.text
    assert as_json.json()["pages"][0]["faces"][0]["box"] == body["pages"][0]["faces"][0]["box"]


def test_analyze_document_and_audio(http: httpx.Client, samples: list[Path]) -> None:
    pdf = http.post("/v1/analyze", files={"file": ("letter.pdf", samples[2].read_bytes())}).json()
    assert pdf["kind"] == "document" and len(pdf["pages"]) == 2
    voice = http.post("/v1/analyze", files={"file": ("note.ogg", samples[3].read_bytes())}).json()
    assert "friday" in voice["transcript"]["text"].lower()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size, with a tiny compressed body: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _bad_uploads(photo: bytes) -> list[tuple[str, dict[str, object], int, str]]:
    big = io.BytesIO(b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024))
    return [
        ("zero bytes", {"files": {"file": ("a.jpg", b"")}}, 400, "empty_input"),
        ("truncated jpeg", {"files": {"file": ("a.jpg", photo[: len(photo) // 3])}}, 422, "corrupt_input"),
        ("text named .jpg", {"files": {"file": ("a.jpg", b"hello, I am text")}}, 415, "unsupported_format"),
        (
            "20000x20000 png",
            {"files": {"file": ("a.png", _png_header_only(20000, 20000))}},
            413,
            "input_too_large",
        ),
        ("oversized body", {"files": {"file": ("a.jpg", big.getvalue())}}, 413, "input_too_large"),
        (
            "wrong content type",
            {"content": photo, "headers": {"content-type": "image/jpeg"}},
            415,
            "unsupported_format",
        ),
        ("no file part", {"files": {"other": ("a.jpg", photo)}}, 422, "invalid_request"),
        ("bad base64", {"json": {"file": "not base64!!"}}, 422, "invalid_request"),
        (
            "broken json",
            {"content": b"{", "headers": {"content-type": "application/json"}},
            422,
            "invalid_request",
        ),
        (
            "unknown feature",
            {"files": {"file": ("a.jpg", photo)}, "data": {"features": "x-ray"}},
            422,
            "invalid_request",
        ),
    ]


def test_bad_uploads_get_clear_4xx(http: httpx.Client, samples: list[Path]) -> None:
    photo = samples[0].read_bytes()
    for label, kwargs, status, code in _bad_uploads(photo):
        response = http.post("/v1/analyze", **kwargs)  # type: ignore[arg-type]
        assert response.status_code == status, (label, response.text)
        problem = response.json()
        assert problem["code"] == code, label
        assert problem["status"] == status and problem["detail"] and "Traceback" not in response.text


def test_unknown_routes_and_methods_are_problems(http: httpx.Client) -> None:
    assert http.get("/v1/nothing-here").json()["status"] == 404
    assert http.put("/v1/analyze").status_code == 405


def test_user_keys_cannot_manage_keys(server: Server, http: httpx.Client) -> None:
    created = http.post("/v1/keys", json={"name": "camera", "role": "user"})
    assert created.status_code == 201
    user_key = created.json()["key"]
    forbidden = httpx.get(f"{server.url}/v1/keys", headers={"Authorization": f"Bearer {user_key}"})
    assert forbidden.status_code == 403
    assert all("key" not in k for k in http.get("/v1/keys").json()["keys"])  # secrets are never listed
    revoked = http.delete(f"/v1/keys/{created.json()['id']}")
    assert revoked.status_code == 200
    assert httpx.get(f"{server.url}/v1/collections", headers={"X-API-Key": user_key}).status_code == 401


def test_metrics_count_requests_and_cpu(server: Server, http: httpx.Client, samples: list[Path]) -> None:
    http.post("/v1/analyze", files={"file": ("p.jpg", samples[0].read_bytes())}, data={"features": "faces"})
    text = httpx.get(f"{server.url}/metrics").text
    assert 'route="/v1/analyze"' in text
    assert 'frugalsense_cpu_seconds_total{stage="decode"}' in text
    assert 'frugalsense_cpu_seconds_total{stage="face-embedding"}' in text

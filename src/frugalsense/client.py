"""The HTTP client: the library's calls against a running `frugalsense serve`, sync or async.

    from frugalsense import Client
    with Client("http://127.0.0.1:8000", api_key="fs_...") as fs:
        staff = fs.create_collection("staff")
        ada = fs.create_person(staff["id"], "Ada")
        fs.enrol(ada["id"], "ada.jpg")
        fs.identify(staff["id"], "door-camera.jpg")["faces"][0]["decision"]
    # 'per_...'

Responses are the JSON the service returns (the library's `to_dict()` shapes); failures raise the same typed
errors as the library (`frugalsense.errors`), with `ServiceError`s for faults at the HTTP edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from frugalsense.errors import FrugalsenseError, InvalidRequestError, ServiceError, error_for_code

if TYPE_CHECKING:
    from frugalsense.media.types import Source

__all__ = ["AsyncClient", "Client"]


@dataclass(frozen=True)
class _Call:
    """One request, described once and sent by either client."""

    method: str
    path: str
    json: Any = None
    files: dict[str, tuple[str, bytes]] | None = None
    data: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] | None = None


def _file(source: Source, name: str | None = None) -> tuple[str, bytes]:
    if isinstance(source, bytes):
        return name or "upload", source
    path = Path(source)
    try:
        return name or path.name, path.read_bytes()
    except OSError as exc:
        raise InvalidRequestError(f"cannot read {path}: {exc.strerror}") from exc


def _form(**values: Any) -> dict[str, str]:
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = (
            ",".join(value)
            if isinstance(value, list | tuple)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )
    return out


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    code = str(problem.get("code", "")) if isinstance(problem, Mapping) else ""
    detail = str(problem.get("detail", "")) if isinstance(problem, Mapping) else ""
    message = detail or f"HTTP {response.status_code} from {response.request.url}"
    cls = error_for_code(code) if code else ServiceError
    retry = response.headers.get("retry-after")
    if issubclass(cls, ServiceError):
        raise cls(message, status=response.status_code, retry_after=float(retry) if retry else None)
    if cls is FrugalsenseError:
        raise ServiceError(message, status=response.status_code)
    raise cls(message)


class _Api:
    """Every call the API offers, written once; `_send` is blocking in `Client` and awaitable in `AsyncClient`."""

    def _send(self, call: _Call) -> Any:
        raise NotImplementedError

    # analysis
    def analyze(
        self, source: Source, features: list[str] | None = None, *, name: str | None = None, previews: bool = False
    ) -> Any:
        """`previews`: also a small JPEG of each page or frame (the first 20), to draw the boxes on."""
        form = _form(features=features, previews=True if previews else None)
        return self._send(_Call("POST", "/v1/analyze", files={"file": _file(source, name)}, data=form))

    def fields(self, source: Source, *, name: str | None = None, kind: str | None = None) -> Any:
        """A receipt's or invoice's fields, page by page: ``pages[i]["fields"]["total"]["value"]``, each with
        its confidence and evidence; ``not_found`` lists the fields left out (abstained or absent).

        ``kind="form"``: a form's question and answer pairs instead, ``pages[i]["pairs"][j]["question"]`` and
        ``["answers"]``, each with its confidence and evidence (``kind="receipt"`` is the default)."""
        files = {"file": _file(source, name)}
        return self._send(_Call("POST", "/v1/documents/fields", files=files, data=_form(kind=kind)))

    def detect_faces(self, source: Source) -> Any:
        return self._send(_Call("POST", "/v1/faces/detect", files={"file": _file(source)}))

    def compare_faces(
        self, a: Source, b: Source, *, threshold: float | None = None, source_face: int | None = None
    ) -> Any:
        """The largest face of `a` (or face number `source_face`, counted as `detect_faces` lists them) against
        every face of `b`: ``target_faces`` with each one's similarity and decision, and the best match."""
        form = _form(threshold=threshold, source_face=source_face)
        return self._send(_Call("POST", "/v1/faces/compare", files={"a": _file(a), "b": _file(b)}, data=form))

    # galleries
    def create_collection(self, name: str) -> Any:
        return self._send(_Call("POST", "/v1/collections", json={"name": name}))

    def list_collections(self) -> Any:
        return self._send(_Call("GET", "/v1/collections"))

    def delete_collection(self, collection_id: str) -> Any:
        return self._send(_Call("DELETE", f"/v1/collections/{collection_id}"))

    def create_person(self, collection_id: str, name: str, metadata: dict[str, Any] | None = None) -> Any:
        return self._send(
            _Call("POST", f"/v1/collections/{collection_id}/persons", json={"name": name, "metadata": metadata})
        )

    def list_persons(self, collection_id: str) -> Any:
        return self._send(_Call("GET", f"/v1/collections/{collection_id}/persons"))

    def get_person(self, person_id: str) -> Any:
        return self._send(_Call("GET", f"/v1/persons/{person_id}"))

    def delete_person(self, person_id: str) -> Any:
        return self._send(_Call("DELETE", f"/v1/persons/{person_id}"))

    def enrol(self, person_id: str, source: Source, *, face_index: int | None = None) -> Any:
        return self._send(
            _Call(
                "POST",
                f"/v1/persons/{person_id}/faces",
                files={"file": _file(source)},
                data=_form(face_index=face_index),
            )
        )

    def identify(
        self,
        collection_id: str,
        source: Source,
        *,
        top_k: int = 3,
        threshold: float | None = None,
        keep: bool = True,
    ) -> Any:
        return self._send(
            _Call(
                "POST",
                f"/v1/collections/{collection_id}/identify",
                files={"file": _file(source)},
                data=_form(top_k=top_k, threshold=threshold, keep=keep),
            )
        )

    def search_faces(
        self, source: Source, *, top_k: int = 10, include_unenrolled: bool = True, collection_id: str | None = None
    ) -> Any:
        fields = _form(top_k=top_k, include_unenrolled=include_unenrolled, collection_id=collection_id)
        return self._send(_Call("POST", "/v1/faces/search", files={"file": _file(source)}, data=fields))

    def get_face(self, face_id: str) -> Any:
        return self._send(_Call("GET", f"/v1/faces/{face_id}"))

    def delete_face(self, face_id: str) -> Any:
        return self._send(_Call("DELETE", f"/v1/faces/{face_id}"))

    def correct(self, face_id: str, *, is_person: str | None = None, is_not_person: str | None = None) -> Any:
        body = {"is_person": is_person, "is_not_person": is_not_person}
        return self._send(_Call("POST", f"/v1/faces/{face_id}/corrections", json=body))

    def clusters(self, min_size: int = 2) -> Any:
        return self._send(_Call("GET", "/v1/clusters", params={"min_size": min_size}))

    def promote_cluster(self, cluster_id: str, collection_id: str, name: str) -> Any:
        body = {"collection_id": collection_id, "name": name}
        return self._send(_Call("POST", f"/v1/clusters/{cluster_id}/promote", json=body))

    # search (index, search, items)
    def index(
        self,
        source: Source,
        *,
        name: str | None = None,
        source_key: str | None = None,
        captured_at: str | None = None,
        collection_id: str | None = None,
    ) -> Any:
        """Index a file for search; ``source_key`` names the item (a later upload with it replaces it)."""
        fields = _form(source=source_key, captured_at=captured_at, collection_id=collection_id)
        return self._send(_Call("POST", "/v1/index", files={"file": _file(source, name)}, data=fields))

    def search(self, query: str = "", *, top_k: int = 20, mode: str = "hybrid", **filters: Any) -> Any:
        """Hybrid search; ``filters``: person, label, modality, since, until, max_nsfw, safe."""
        params = {"q": query, "top_k": top_k, "mode": mode, **_form(**filters)}
        return self._send(_Call("GET", "/v1/search", params=params))

    def search_image(self, source: Source, *, top_k: int = 20, **filters: Any) -> Any:
        """Items like a picture: near-duplicates first, then close in meaning."""
        fields = _form(top_k=top_k, **filters)
        return self._send(_Call("POST", "/v1/search/image", files={"file": _file(source)}, data=fields))

    def near_duplicates(self, max_distance: int | None = None) -> Any:
        params = _form(max_distance=max_distance)
        return self._send(_Call("GET", "/v1/search/duplicates", params=params))

    def list_items(self, *, limit: int = 100, offset: int = 0) -> Any:
        return self._send(_Call("GET", "/v1/items", params={"limit": limit, "offset": offset}))

    def get_item(self, item_id: str) -> Any:
        return self._send(_Call("GET", f"/v1/items/{item_id}"))

    def delete_item(self, item_id: str) -> Any:
        return self._send(_Call("DELETE", f"/v1/items/{item_id}"))

    # keys and operations
    def create_key(self, name: str, role: str = "user") -> Any:
        return self._send(_Call("POST", "/v1/keys", json={"name": name, "role": role}))

    def list_keys(self) -> Any:
        return self._send(_Call("GET", "/v1/keys"))

    def revoke_key(self, key_id: str) -> Any:
        return self._send(_Call("DELETE", f"/v1/keys/{key_id}"))

    def erase_tenant(self) -> Any:
        """Erase the calling key's tenant with everything it owns, this key included (an admin key; cannot be
        undone); returns counts of what was erased."""
        return self._send(_Call("DELETE", "/v1/tenant"))

    def health(self) -> Any:
        return self._send(_Call("GET", "/healthz"))


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _kwargs(call: _Call) -> dict[str, Any]:
    out: dict[str, Any] = {"params": call.params}
    if call.files is not None:
        out["files"] = call.files
        out["data"] = call.data
    elif call.json is not None:
        out["json"] = call.json
    return out


class Client(_Api):
    """Synchronous client: each method returns the response's JSON."""

    def __init__(
        self, base_url: str = "http://127.0.0.1:8000", *, api_key: str | None = None, timeout: float = 120
    ):
        self._http = httpx.Client(base_url=base_url, headers=_headers(api_key), timeout=timeout)

    def _send(self, call: _Call) -> Any:
        try:
            response = self._http.request(call.method, call.path, **_kwargs(call))
        except httpx.TransportError as exc:
            raise ServiceError(f"cannot reach the service at {self._http.base_url}: {exc}") from exc
        _raise_for(response)
        return response.json()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Api):
    """Asynchronous client: the same methods as `Client`, each returning an awaitable."""

    def __init__(
        self, base_url: str = "http://127.0.0.1:8000", *, api_key: str | None = None, timeout: float = 120
    ):
        self._http = httpx.AsyncClient(base_url=base_url, headers=_headers(api_key), timeout=timeout)

    async def _send(self, call: _Call) -> Any:  # type: ignore[override]
        try:
            response = await self._http.request(call.method, call.path, **_kwargs(call))
        except httpx.TransportError as exc:
            raise ServiceError(f"cannot reach the service at {self._http.base_url}: {exc}") from exc
        _raise_for(response)
        return response.json()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

"""A client generated from the live server's /openapi.json type-checks and parses the server's real answers.

datamodel-code-generator writes pydantic models from the schema; a small program uses them to analyse a real
photo, build a gallery, identify, correct, promote a cluster, index and search, delete, and erase its own tenant,
and mypy (strict) checks that program against the generated models. The models refuse unknown fields, so a body
that gains, loses or retypes a field fails the parse.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from _server import Server

pytest.importorskip("datamodel_code_generator")

# The program a client author would write: every call's body parsed into the generated model it is declared as.
PROGRAM = """
from __future__ import annotations

import sys
from pathlib import Path

import httpx

from fsclient import (
    Analysis,
    ApiKey,
    ApiKeyList,
    ClusterList,
    Collection,
    CollectionList,
    CorrectionOutcome,
    CreatedApiKey,
    DocumentFields,
    DuplicateGroups,
    Enrolment,
    Erasure,
    FaceComparison,
    FaceDetection,
    FaceSearch,
    Identification,
    IndexOutcome,
    ItemDeletion,
    ItemDetail,
    ItemList,
    Person,
    PersonList,
    PersonWithFaces,
    SearchResults,
    StoredFace,
    TenantErasure,
)


def ok(response: httpx.Response) -> bytes:
    assert response.is_success, f"{response.request.url}: {response.status_code} {response.text[:300]}"
    return response.content


def main(url: str, key: str, photo: Path, second: Path, probe: Path, stranger: Path, receipt: Path) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as http:
        def upload(path: str, file: Path, **fields: str) -> bytes:
            return ok(http.post(path, files={"file": (file.name, file.read_bytes())}, data=fields))

        analysis = Analysis.model_validate_json(upload("/v1/analyze", photo))
        faces_on_page: int = len(analysis.pages[0].faces or [])
        cpu: float = analysis.receipt.cpu_seconds
        detected = FaceDetection.model_validate_json(upload("/v1/faces/detect", photo))
        read = DocumentFields.model_validate_json(upload("/v1/documents/fields", receipt))
        date = read.pages[0].fields.date
        receipt_date: str | None = date.value if date is not None else None
        pair = {"a": (photo.name, photo.read_bytes()), "b": (probe.name, probe.read_bytes())}
        compared = FaceComparison.model_validate_json(ok(http.post("/v1/faces/compare", files=pair)))
        same: bool = compared.same

        staff = Collection.model_validate_json(ok(http.post("/v1/collections", json={"name": "staff"})))
        listed = CollectionList.model_validate_json(ok(http.get("/v1/collections")))
        ada = Person.model_validate_json(
            ok(http.post(f"/v1/collections/{staff.id}/persons", json={"name": "Ada", "metadata": {"team": "a"}}))
        )
        enrolled = Enrolment.model_validate_json(upload(f"/v1/persons/{ada.id}/faces", photo))
        Enrolment.model_validate_json(upload(f"/v1/persons/{ada.id}/faces", second))
        persons = PersonList.model_validate_json(ok(http.get(f"/v1/collections/{staff.id}/persons")))
        found = Identification.model_validate_json(
            upload(f"/v1/collections/{staff.id}/identify", probe)
        )
        decisions: list[str] = [face.decision for face in found.faces]
        unknown = Identification.model_validate_json(
            upload(f"/v1/collections/{staff.id}/identify", stranger)
        )
        sighting: str | None = unknown.faces[0].face_id
        assert sighting is not None
        face = StoredFace.model_validate_json(ok(http.get(f"/v1/faces/{sighting}")))
        corrected = CorrectionOutcome.model_validate_json(
            ok(http.post(f"/v1/faces/{face.id}/corrections", json={"is_not_person": ada.id}))
        )
        grouped = ClusterList.model_validate_json(ok(http.get("/v1/clusters", params={"min_size": 1})))
        cluster: str = grouped.clusters[0].id
        searched = FaceSearch.model_validate_json(upload("/v1/faces/search", probe))
        detail = PersonWithFaces.model_validate_json(ok(http.get(f"/v1/persons/{ada.id}")))

        made = CreatedApiKey.model_validate_json(ok(http.post("/v1/keys", json={"name": "ci", "role": "user"})))
        keys = ApiKeyList.model_validate_json(ok(http.get("/v1/keys")))

        indexed = IndexOutcome.model_validate_json(
            upload("/v1/index", probe, source="probe.jpg", collection_id=staff.id)
        )
        again = IndexOutcome.model_validate_json(upload("/v1/index", probe, source="probe.jpg"))
        items = ItemList.model_validate_json(ok(http.get("/v1/items")))
        assert indexed.item_id is not None
        item = ItemDetail.model_validate_json(ok(http.get(f"/v1/items/{indexed.item_id}")))
        hits = SearchResults.model_validate_json(ok(http.get("/v1/search", params={"person": ada.id})))
        by_picture = SearchResults.model_validate_json(upload("/v1/search/image", probe))
        DuplicateGroups.model_validate_json(ok(http.get("/v1/search/duplicates")))
        deleted = ItemDeletion.model_validate_json(ok(http.delete(f"/v1/items/{indexed.item_id}")))
        lin = Person.model_validate_json(
            ok(http.post(f"/v1/clusters/{cluster}/promote", json={"collection_id": staff.id, "name": "Lin"}))
        )
        face_gone = Erasure.model_validate_json(ok(http.delete(f"/v1/faces/{face.id}")))
        lin_gone = Erasure.model_validate_json(ok(http.delete(f"/v1/persons/{lin.id}")))
        revoked = ApiKey.model_validate_json(ok(http.delete(f"/v1/keys/{made.id}")))
        erased = Erasure.model_validate_json(ok(http.delete(f"/v1/collections/{staff.id}")))
        tenant = TenantErasure.model_validate_json(ok(http.delete("/v1/tenant")))

        print(f"faces on the photo: {faces_on_page} detected: {len(detected.faces)} cpu>0: {cpu > 0}")
        print(f"compare same: {same}")
        print(f"receipt date: {receipt_date} not found: {sorted(m.field for m in read.pages[0].not_found)}")
        print(f"collections: {[c.name for c in listed.collections]} persons: {[p.name for p in persons.persons]}")
        print(f"enrolled faces: {detail.face_count} found in the photo: {enrolled.faces_found}")
        print(f"identified as ada: {decisions == [ada.id]} stranger: {unknown.faces[0].decision}")
        print(f"corrections: {[c.kind for c in corrected.corrections]} matches: {len(searched.matches) > 0}")
        print(f"key role: {made.role} keys: {len(keys.keys)}")
        print(f"indexed: {indexed.status} again: {again.status} items: {len(items.items)}")
        print(f"item pages: {len(item.result.pages)} faces: {len(item.faces)}")
        print(f"search hits: {[h.url for h in hits.hits] == [f'/v1/items/{item.id}']}")
        print(f"by picture: {[h.item.id for h in by_picture.hits][:1] == [item.id]}")
        print(f"deleted: {deleted.deleted == item.id} erased persons: {erased.persons}")
        print(f"promoted: {lin.name} faces: {lin.face_count} erased: {face_gone.faces} {lin_gone.persons}")
        print(f"revoked: {revoked.revoked_at is not None} tenant erased: {tenant.erased.name} keys: {tenant.keys}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(Path(p) for p in sys.argv[3:8]))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("client"), model_dir, env={"FRUGALSENSE_RATE_PER_KEY": "0"}).start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def generated(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``fsclient.py``: models generated from the running server's schema."""
    folder = tmp_path_factory.mktemp("generated")
    schema = folder / "openapi.json"
    schema.write_bytes(httpx.get(f"{server.url}/openapi.json", timeout=30).content)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "datamodel_code_generator",
            *("--input", str(schema), "--input-file-type", "openapi"),
            *("--output", str(folder / "fsclient.py")),
            *("--output-model-type", "pydantic_v2.BaseModel", "--target-python-version", "3.11"),
            *("--use-standard-collections", "--use-union-operator", "--use-annotated", "--disable-timestamp"),
            # Enums as Literal: a request model's default ("user") then type-checks as the enum's value.
            *("--enum-field-as-literal", "all", "--formatters", "builtin"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return folder


def _module(folder: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The generated models, imported for this test only (pydantic looks their module up while building them)."""
    spec = importlib.util.spec_from_file_location("fsclient", folder / "fsclient.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "fsclient", module)
    spec.loader.exec_module(module)
    return module


def test_generated_models_parse_real_responses_and_type_check(
    server: Server, generated: Path, eval_dir: Path
) -> None:
    train = eval_dir / "faces-gallery/examples/knn_examples/train/obama"
    photos = [
        train / "obama.jpg",
        train / "obama2.jpg",
        eval_dir / "faces-gallery/examples/knn_examples/test/obama1.jpg",
        eval_dir / "faces-gallery/examples/lin-manuel-miranda.png",
        eval_dir / "ocr-sroie/img/018.jpg",
    ]
    program = generated / "story.py"
    program.write_text(PROGRAM)
    (generated / "mypy.ini").write_text("[mypy]\nstrict = True\nplugins = pydantic.mypy\n")
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--no-incremental", "story.py", "fsclient.py"],
        cwd=generated,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    ran = subprocess.run(
        [sys.executable, "story.py", server.url, server.tenant_key("story"), *map(str, photos)],
        cwd=generated,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    said = ran.stdout
    assert "faces on the photo: 1 detected: 1 cpu>0: True" in said
    assert "compare same: True" in said
    # Which fields the receipt model leaves out is the model's business; that they parse as typed models is ours.
    left_out = re.search(r"receipt date: 2017-12-20 not found: (\[.*\])", said)
    assert left_out is not None, said
    assert set(ast.literal_eval(left_out.group(1))) <= {"vendor", "vendor_address", "total", "tax"}
    assert "collections: ['staff'] persons: ['Ada']" in said
    assert "enrolled faces: 2 found in the photo: 1" in said
    assert "identified as ada: True stranger: unknown" in said
    assert "corrections: ['is_not']" in said
    assert "key role: user" in said
    assert "indexed: added again: unchanged items: 1" in said
    assert "item pages: 1 faces: 1" in said
    assert "search hits: True" in said
    assert "by picture: True" in said
    assert "deleted: True erased persons: 1" in said
    assert "promoted: Lin faces: 1 erased: 1 1" in said
    assert "revoked: True tenant erased: story keys: 2" in said


def test_generated_models_refuse_a_body_that_left_its_schema(
    server: Server, generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above can fail: a real body with a field added, dropped or retyped does not parse."""
    from pydantic import ValidationError

    client = _module(generated, monkeypatch)
    key = {"Authorization": f"Bearer {server.admin_key}"}
    body = httpx.get(f"{server.url}/v1/keys", headers=key, timeout=30).json()
    client.ApiKeyList.model_validate(body)
    assert body["keys"], "the admin key is listed"
    changed = [
        {"keys": [{**body["keys"][0], "surprise": 1}]},
        {"keys": [{k: v for k, v in body["keys"][0].items() if k != "prefix"}]},
        {"keys": [{**body["keys"][0], "role": "owner"}]},
    ]
    for wrong in changed:
        with pytest.raises(ValidationError):
            client.ApiKeyList.model_validate(json.loads(json.dumps(wrong)))

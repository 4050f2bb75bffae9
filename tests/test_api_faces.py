"""Face galleries over HTTP and through the Python client: the story a user tells with curl, and tenant walls
route by route, against a real server on SQLite and on PostgreSQL (tests/_backends.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from _server import Server
from frugalsense.client import AsyncClient, Client
from frugalsense.errors import AuthenticationError, InvalidRequestError, NotFoundError


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, server_database: str | None
) -> Iterator[Server]:
    env = {"FRUGALSENSE_RATE_PER_KEY": "0"}
    srv = Server(tmp_path_factory.mktemp("gallery-api"), model_dir, env=env, database_url=server_database).start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def photos(eval_dir: Path) -> dict[str, Path]:
    g = eval_dir / "faces-gallery"
    return {
        "obama": g / "examples/knn_examples/train/obama/obama.jpg",
        "obama2": g / "examples/knn_examples/train/obama/obama2.jpg",
        "obama_probe": g / "examples/knn_examples/test/obama1.jpg",
        "biden": g / "examples/knn_examples/train/biden/biden.jpg",
        "biden2": g / "examples/knn_examples/train/biden/biden2.jpg",
        "stranger": g / "examples/lin-manuel-miranda.png",
        "both": g / "examples/knn_examples/test/obama_and_biden.jpg",
        "alex": g / "examples/knn_examples/train/alex_lacamoire/img1.jpg",
        "alex_probe": g / "examples/knn_examples/test/alex_lacamoire1.jpg",
    }


def test_the_whole_story_through_the_client(server: Server, photos: dict[str, Path]) -> None:
    with Client(server.url, api_key=server.admin_key) as fs:
        staff = fs.create_collection("staff")
        obama = fs.create_person(staff["id"], "Barack")
        biden = fs.create_person(staff["id"], "Joe")
        enrolled = fs.enrol(obama["id"], photos["obama"])
        assert enrolled["receipt"]["cpu_seconds"] > 0
        fs.enrol(obama["id"], photos["obama2"])
        fs.enrol(biden["id"], photos["biden"])

        found = fs.identify(staff["id"], photos["obama_probe"])
        assert [f["decision"] for f in found["faces"]] == [obama["id"]]
        assert found["faces"][0]["candidates"][0]["similarity"] > found["threshold"]

        two = fs.identify(staff["id"], photos["both"])
        decisions = [f["decision"] for f in two["faces"]]  # a third face in the background stays unknown
        assert obama["id"] in decisions and biden["id"] in decisions

        stranger = fs.identify(staff["id"], photos["stranger"])
        assert [f["decision"] for f in stranger["faces"]] == ["unknown"]
        stranger_face = stranger["faces"][0]["face_id"]

        # A mistake, corrected: the stranger is enrolled as a new person from the stored sighting.
        lin = fs.create_person(staff["id"], "Lin")
        fs.correct(stranger_face, is_person=lin["id"])
        again = fs.identify(staff["id"], photos["stranger"], keep=False)
        assert again["faces"][0]["decision"] == lin["id"]
        # ... and "this face is not Lin" takes that back for faces like it.
        fs.correct(
            again_face := fs.identify(staff["id"], photos["stranger"])["faces"][0]["face_id"],
            is_not_person=lin["id"],
        )
        assert again_face
        after = fs.identify(staff["id"], photos["stranger"], keep=False)
        assert after["faces"][0]["decision"] != lin["id"]

        # Search back finds sightings; deleting Biden erases his faces everywhere.
        hits = fs.search_faces(photos["biden2"])
        assert any(m["person_id"] == biden["id"] for m in hits["matches"])
        fs.delete_person(biden["id"])
        with pytest.raises(NotFoundError):
            fs.get_person(biden["id"])
        hits = fs.search_faces(photos["biden2"])
        assert not any(m["person_id"] == biden["id"] for m in hits["matches"])
        who = fs.identify(staff["id"], photos["biden2"], keep=False)
        assert all(f["decision"] != biden["id"] for f in who["faces"])

        compared = fs.compare_faces(photos["obama"], photos["obama_probe"])
        assert compared["same"] is True
        assert fs.compare_faces(photos["obama"], photos["alex"])["same"] is False

        with pytest.raises(InvalidRequestError):
            fs.enrol(obama["id"], photos["both"])  # two faces and no face_index


def test_async_client_does_the_same(server: Server, photos: dict[str, Path]) -> None:
    async def story() -> None:
        async with AsyncClient(server.url, api_key=server.admin_key) as fs:
            col = await fs.create_collection("async-staff")
            alex = await fs.create_person(col["id"], "Alex")
            await fs.enrol(alex["id"], photos["alex"])
            found = await fs.identify(col["id"], photos["alex_probe"])
            assert found["faces"][0]["decision"] == alex["id"]
            with pytest.raises(NotFoundError):
                await fs.get_person("per_doesnotexist")

    asyncio.run(story())


def test_client_raises_typed_errors(server: Server) -> None:
    with Client(server.url, api_key="fs_bad_key") as fs, pytest.raises(AuthenticationError):
        fs.list_collections()


def test_tenants_cannot_see_or_touch_each_other(server: Server, photos: dict[str, Path]) -> None:
    key_b = server.cli("keys", "create", "intruder", "--tenant", "other-shop", "--admin")
    a = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=120)
    b = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key_b}"}, timeout=120)
    col = a.post("/v1/collections", json={"name": "private"}).json()
    person = a.post(f"/v1/collections/{col['id']}/persons", json={"name": "Alex"}).json()
    photo = photos["alex"].read_bytes()
    face = a.post(f"/v1/persons/{person['id']}/faces", files={"file": ("a.jpg", photo)}).json()["face"]
    key_a = a.post("/v1/keys", json={"name": "a-user"}).json()

    upload = {"files": {"file": ("a.jpg", photo)}}
    routes = [
        ("GET", f"/v1/persons/{person['id']}", {}),
        ("DELETE", f"/v1/persons/{person['id']}", {}),
        ("GET", f"/v1/collections/{col['id']}/persons", {}),
        ("POST", f"/v1/collections/{col['id']}/persons", {"json": {"name": "Mallory"}}),
        ("POST", f"/v1/collections/{col['id']}/identify", upload),
        ("DELETE", f"/v1/collections/{col['id']}", {}),
        ("POST", f"/v1/persons/{person['id']}/faces", upload),
        ("GET", f"/v1/faces/{face['id']}", {}),
        ("DELETE", f"/v1/faces/{face['id']}", {}),
        ("POST", f"/v1/faces/{face['id']}/corrections", {"json": {"is_not_person": person["id"]}}),
        ("DELETE", f"/v1/keys/{key_a['id']}", {}),
    ]
    for method, path, kwargs in routes:
        response = b.request(method, path, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 404, (method, path, response.status_code, response.text)
    assert b.get("/v1/collections").json()["collections"] == []
    assert b.get("/v1/clusters", params={"min_size": 1}).json()["clusters"] == []
    assert all(k["name"] != "a-user" for k in b.get("/v1/keys").json()["keys"])
    searched = b.post("/v1/faces/search", **upload).json()  # type: ignore[arg-type]
    assert searched["matches"] == []
    # Tenant A still has everything.
    assert a.get(f"/v1/persons/{person['id']}").status_code == 200
    assert a.get(f"/v1/faces/{face['id']}").status_code == 200

"""Face galleries with the real YuNet + SFace models on real photos and a real SQLite file.

faces-gallery (face_recognition's examples): five people enrolled from the gallery photos, probes of them, and
Lin-Manuel Miranda, who is never enrolled. faces-deepface: recurring strangers for search and clustering.
"""

from __future__ import annotations

import csv
import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _backends import postgres_files
from _faces import random_faces
from frugalsense.analyze import Analyzer
from frugalsense.errors import (
    ConfigurationError,
    CorruptInputError,
    EmptyInputError,
    InputError,
    InvalidRequestError,
    NotFoundError,
    UnsupportedFormatError,
)
from frugalsense.faces import FaceGallery, load_face_profile
from frugalsense.faces import clusters as clusters_module
from frugalsense.faces.clusters import average_linkage
from frugalsense.faces.gallery import SECOND_MODEL
from frugalsense.faces.profile import IDENTIFY_TASK, FaceProfile
from frugalsense.ledger import Meter
from frugalsense.profiles import load_profile
from frugalsense.settings import Settings
from frugalsense.store import DB_FILENAME, SQLiteStore, open_store

STRANGER = "examples/lin-manuel-miranda.png"


@pytest.fixture(scope="module")
def analyzer(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Analyzer:
    """One set of loaded models for the module; every test still gets its own data folder and database."""
    return Analyzer(Settings(data_dir=tmp_path_factory.mktemp("models-only"), model_cache=model_dir))


@pytest.fixture()
def gallery(analyzer: Analyzer, store_settings: Settings) -> FaceGallery:
    """On each backend (tests/_backends.py): SQLite in the test's folder, then a fresh PostgreSQL database."""
    return FaceGallery(open_store(store_settings), _with_settings(analyzer, store_settings))


def _with_settings(analyzer: Analyzer, settings: Settings) -> Analyzer:
    """The module's loaded models, but this test's data folder."""
    clone = Analyzer(settings, pipeline=analyzer.pipeline)
    clone.zoo = analyzer.zoo
    return clone


@dataclass
class Enrolled:
    gallery: FaceGallery
    tenant: str
    collection: str
    persons: dict[str, str]  # identity -> person id
    probes: list[tuple[Path, list[str]]]  # photo, identities on it
    root: Path


@pytest.fixture()
def enrolled(gallery: FaceGallery, eval_dir: Path) -> Enrolled:
    root = eval_dir / "faces-gallery"
    with open(root / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    tenant = gallery.store.create_tenant("acme").id
    collection = gallery.create_collection(tenant, "staff").id
    persons: dict[str, str] = {}
    for row in rows:
        if row["role"] == "gallery":
            identity = row["identities"]
            if identity not in persons:
                persons[identity] = gallery.create_person(tenant, collection, identity).id
            gallery.enrol(tenant, persons[identity], root / row["file"])
    probes = [(root / r["file"], r["identities"].split(";")) for r in rows if r["role"] == "probe"]
    return Enrolled(gallery, tenant, collection, persons, probes, root)


def _deepface(eval_dir: Path, identity: str) -> list[Path]:
    base = eval_dir / "faces-deepface"
    with open(base / "identities.csv") as f:
        return [base / "images" / r["file"] for r in csv.DictReader(f) if r["identity"] == identity]


def _db_bytes(settings: Settings) -> bytes:
    """What the database keeps on disk: SQLite's file and log, or PostgreSQL's table and index files after a
    CHECKPOINT (its write-ahead log is not scanned: docs/postgres.md says how long erased rows stay there)."""
    if settings.database_url:
        return postgres_files(settings.database_url)
    db = settings.data_dir / DB_FILENAME
    wal = db.with_name(DB_FILENAME + "-wal")
    return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_probes_of_enrolled_people_get_their_names(enrolled: Enrolled) -> None:
    g = enrolled.gallery
    names = {v: k for k, v in enrolled.persons.items()}
    right = wrong = total = 0
    for photo, identities in enrolled.probes:
        if "lin_manuel_miranda" in identities:
            continue
        result = g.identify(enrolled.tenant, enrolled.collection, photo)
        decided = {names[f.decision] for f in result.faces if f.known}
        total += len(identities)
        right += len(decided & set(identities))
        wrong += len(decided - set(identities))
    # Measured: every one of the 16 labelled faces named right, none wrong.
    assert wrong == 0
    assert right >= total - 1, f"{right} of {total} labelled faces named"


def test_a_stranger_is_unknown(enrolled: Enrolled) -> None:
    result = enrolled.gallery.identify(enrolled.tenant, enrolled.collection, enrolled.root / STRANGER)
    (face,) = result.faces
    assert face.decision == "unknown" and face.name is None
    assert face.similarity < result.threshold
    assert face.candidates  # the closest people are still shown, with their (low) scores


def test_identify_result_carries_threshold_receipt_and_stored_sighting(enrolled: Enrolled) -> None:
    g = enrolled.gallery
    photo = enrolled.root / "examples/knn_examples/test/obama1.jpg"
    result = g.identify(enrolled.tenant, enrolled.collection, photo)
    (face,) = result.faces
    # the shipped threshold for a gallery this size, counted in enrolled faces (docs/calibration.md, "Open-set")
    faces = sum(p.face_count for p in g.store.list_persons(enrolled.tenant, enrolled.collection))
    assert faces > len(enrolled.persons)  # some people have two enrolled photos
    assert result.threshold == g.profile.identify_threshold_for(faces)
    assert result.threshold >= g.profile.identify_threshold
    stages = [s.stage for s in result.receipt.stages]
    assert {"decode", "face-detection", "face-embedding", "match", "store"} <= set(stages)
    assert face.face_id is not None
    stored = g.get_face(enrolled.tenant, face.face_id)
    assert (stored.person_id, stored.enrolled) == (enrolled.persons["obama"], False)
    assert (g.settings.data_dir / str(stored.crop_path)).is_file()
    data = result.to_dict()
    assert data["faces"][0]["decision"] == enrolled.persons["obama"]

    # keep=False stores nothing.
    before = len(g.list_faces(enrolled.tenant))
    assert g.identify(enrolled.tenant, enrolled.collection, photo, keep=False).faces[0].face_id is None
    assert len(g.list_faces(enrolled.tenant)) == before


def test_a_reopened_gallery_answers_the_same(enrolled: Enrolled, analyzer: Analyzer) -> None:
    settings = enrolled.gallery.settings
    enrolled.gallery.store.close()
    reopened = FaceGallery(open_store(settings), _with_settings(analyzer, settings))
    result = reopened.identify(enrolled.tenant, enrolled.collection, enrolled.root / "examples/obama-480p.jpg")
    assert result.faces[0].decision == enrolled.persons["obama"]


def test_corrections_change_later_answers(enrolled: Enrolled) -> None:
    g, tenant, collection = enrolled.gallery, enrolled.tenant, enrolled.collection
    obama = enrolled.persons["obama"]
    photo = enrolled.root / "examples/obama-720p.jpg"

    # "This face is not X": the same picture (and near-duplicates of it) is no longer answered X.
    first = g.identify(tenant, collection, photo).faces[0]
    assert first.decision == obama and first.face_id is not None
    g.correct(tenant, first.face_id, is_not_person=obama)
    again = g.identify(tenant, collection, enrolled.root / "examples/obama-1080p.jpg").faces[0]
    assert again.decision == "unknown"
    assert again.excluded == [obama]
    assert obama not in [c.person_id for c in again.candidates]
    # Other pictures of the person, far from the corrected face, are still recognised.
    assert g.identify(tenant, collection, enrolled.root / "examples/knn_examples/test/obama1.jpg").faces[0].known

    # "This face is Y": a stranger's sighting becomes Y's reference, and Y is named next time.
    stranger = g.identify(tenant, collection, enrolled.root / STRANGER).faces[0]
    assert stranger.decision == "unknown" and stranger.face_id is not None
    lin = g.create_person(tenant, collection, "Lin-Manuel")
    corrected = g.correct(tenant, stranger.face_id, is_person=lin.id)
    assert corrected.face.enrolled and corrected.face.cluster_id is None
    assert g.get_person(tenant, lin.id).face_count == 1
    assert g.identify(tenant, collection, enrolled.root / STRANGER).faces[0].decision == lin.id
    # Enrolled by correction, the face also gets dlib's embedding (from its stored crop), as enrolment from a
    # picture gives it: close to dlib's embedding of the same face found in the whole picture.
    (from_crop,) = g.store.person_embeddings(tenant, [lin.id], SECOND_MODEL)[lin.id]
    meter = Meter(0.05)
    frame, _, _ = g._decode(enrolled.root / STRANGER, meter, None)
    face = max(g._faces(frame, meter), key=lambda f: f.box.w * f.box.h)
    whole = g._second_embedding(frame, face, meter)
    assert from_crop.shape == whole.shape == (128,)
    cosine = float(from_crop @ whole) / float(np.linalg.norm(from_crop) * np.linalg.norm(whole))
    assert cosine > 0.9, cosine


def test_search_finds_a_face_seen_earlier_and_never_enrolled(enrolled: Enrolled, eval_dir: Path) -> None:
    g, tenant = enrolled.gallery, enrolled.tenant
    first, second = _deepface(eval_dir, "Elon")[:2]
    seen = g.identify(tenant, enrolled.collection, first).faces
    sighting = max(seen, key=lambda f: f.box.w * f.box.h)
    assert sighting.decision == "unknown"

    result = g.search_faces(tenant, second, top_k=5)
    best = result.matches[0]
    assert best.face_id == sighting.face_id
    assert best.same_person and best.person_id is None and not best.enrolled
    assert best.source_name == first.name
    # Enrolled faces only: the sighting is not among them.
    only_enrolled = g.search_faces(tenant, second, include_unenrolled=False).matches
    assert sighting.face_id not in [m.face_id for m in only_enrolled]


def test_recurring_strangers_form_a_cluster_that_can_be_named(enrolled: Enrolled, eval_dir: Path) -> None:
    g, tenant, collection = enrolled.gallery, enrolled.tenant, enrolled.collection
    mark = _deepface(eval_dir, "Mark")
    sightings = []
    for photo in [*mark[:4], *_deepface(eval_dir, "Jeff")[:1]]:
        faces = g.identify(tenant, collection, photo).faces
        sightings.append(max(faces, key=lambda f: f.box.w * f.box.h).face_id)
    clusters = g.clusters(tenant)
    assert len(clusters) == 1
    assert sorted(clusters[0].face_ids) == sorted(sightings[:4])

    # Re-clustering from scratch finds the same group and keeps its id.
    assert [(c.id, sorted(c.face_ids)) for c in g.recluster(tenant)] == [(clusters[0].id, sorted(sightings[:4]))]

    person = g.promote_cluster(tenant, clusters[0].id, collection, "Mark")
    assert person.face_count == 4
    assert g.clusters(tenant) == []
    assert g.identify(tenant, collection, mark[4]).faces[0].decision == person.id


def test_delete_person_erases_faces_crops_and_embedding_bytes(enrolled: Enrolled) -> None:
    g, tenant, collection = enrolled.gallery, enrolled.tenant, enrolled.collection
    obama = enrolled.persons["obama"]
    probe = enrolled.root / "examples/knn_examples/test/obama1.jpg"
    g.identify(tenant, collection, probe)  # a sighting attributed to Obama
    faces = g.list_faces(tenant, person_id=obama)
    assert len(faces) == 3
    crops = [g.settings.data_dir / str(f.crop_path) for f in faces]
    embeddings = [f.embedding.tobytes() for f in faces]
    g.store.checkpoint()
    assert all(c.is_file() for c in crops) and all(e in _db_bytes(g.settings) for e in embeddings)

    erased = g.delete_person(tenant, obama)
    assert sorted(erased.face_ids) == sorted(f.id for f in faces)
    assert not any(c.exists() for c in crops)
    data = _db_bytes(g.settings)
    assert not any(e in data for e in embeddings)
    search = g.search_faces(tenant, enrolled.root / "examples/knn_examples/train/obama/obama.jpg", top_k=50)
    assert not {m.face_id for m in search.matches} & set(erased.face_ids)
    assert not any(m.same_person for m in search.matches)
    with pytest.raises(NotFoundError):
        g.get_person(tenant, obama)
    assert g.identify(tenant, collection, probe).faces[0].decision == "unknown"


def test_delete_face_and_collection(enrolled: Enrolled) -> None:
    g, tenant = enrolled.gallery, enrolled.tenant
    (face,) = g.list_faces(tenant, person_id=enrolled.persons["alex_lacamoire"])
    g.delete_face(tenant, face.id)
    assert not (g.settings.data_dir / str(face.crop_path)).exists()
    result = g.identify(tenant, enrolled.collection, enrolled.root / "examples/alex-lacamoire.png")
    assert result.faces[0].decision == "unknown"

    erased = g.delete_collection(tenant, enrolled.collection)
    assert erased.persons == 5 and len(erased.face_ids) == 9  # 8 enrolled faces left + 1 sighting
    assert g.list_faces(tenant) == [] and g.list_persons(tenant) == []
    assert list((g.settings.data_dir / "crops" / tenant).glob("*.jpg")) == []


def test_tenant_b_cannot_reach_tenant_a(enrolled: Enrolled, eval_dir: Path) -> None:
    g, a = enrolled.gallery, enrolled.tenant
    photo = enrolled.root / "examples/knn_examples/test/obama1.jpg"
    sighting = g.identify(a, enrolled.collection, enrolled.root / STRANGER).faces[0]
    g.identify(a, enrolled.collection, _deepface(eval_dir, "Mark")[0])
    g.identify(a, enrolled.collection, _deepface(eval_dir, "Mark")[1])
    (cluster,) = g.clusters(a)
    b = g.store.create_tenant("globex").id
    b_collection = g.create_collection(b, "staff").id
    b_person = g.create_person(b, b_collection, "Bob").id
    obama = enrolled.persons["obama"]
    assert sighting.face_id is not None
    calls: list[Callable[[], Any]] = [
        lambda: g.get_person(b, obama),
        lambda: g.get_collection(b, enrolled.collection),
        lambda: g.list_persons(b, enrolled.collection),
        lambda: g.list_faces(b, person_id=obama),
        lambda: g.delete_person(b, obama),
        lambda: g.delete_collection(b, enrolled.collection),
        lambda: g.delete_face(b, sighting.face_id),
        lambda: g.get_face(b, sighting.face_id),
        lambda: g.identify(b, enrolled.collection, photo),
        lambda: g.enrol(b, obama, photo),
        lambda: g.create_person(b, enrolled.collection, "Eve"),
        lambda: g.correct(b, sighting.face_id, is_person=b_person),
        lambda: g.correct(a, sighting.face_id, is_person=b_person),
        lambda: g.promote_cluster(b, cluster.id, b_collection, "Eve"),
        lambda: g.search_faces(b, photo, collection_id=enrolled.collection),
    ]
    for call in calls:
        with pytest.raises(NotFoundError):
            call()
    assert g.list_persons(b) == [g.get_person(b, b_person)]
    assert [c.id for c in g.list_collections(b)] == [b_collection]
    assert g.clusters(b) == [] and g.list_faces(b) == []
    assert g.search_faces(b, photo).matches == []
    # B's own identify sees only B's (empty) gallery.
    assert g.identify(b, b_collection, photo).faces[0].candidates == []
    # A is unchanged.
    assert g.get_person(a, obama).face_count == 2
    assert g.identify(a, enrolled.collection, photo).faces[0].decision == obama


def test_compare_two_pictures(gallery: FaceGallery, eval_dir: Path) -> None:
    train = eval_dir / "faces-gallery" / "examples" / "knn_examples" / "train"
    same = gallery.compare(train / "obama" / "obama.jpg", train / "obama" / "obama2.jpg")
    different = gallery.compare(train / "obama" / "obama.jpg", train / "biden" / "biden.jpg")
    assert same.same and not different.same
    # With the verification ladder, SFace decides at the ladder's own 50% point (calibrated with its band).
    assert gallery.fusion is not None
    assert same.threshold == round(gallery.fusion.sface_threshold, 4) != gallery.profile.compare_threshold
    assert same.similarity > different.similarity + 0.3
    assert gallery.store.list_tenants() == []  # nothing stored


def test_enrol_picks_a_face_by_index(enrolled: Enrolled) -> None:
    g = enrolled.gallery
    person = g.create_person(enrolled.tenant, enrolled.collection, "someone")
    photo = enrolled.root / "examples/knn_examples/test/kit_with_rose.jpg"
    result = g.enrol(enrolled.tenant, person.id, photo, face_index=1)
    assert result.faces_found == 2
    assert result.person.face_count == 1


BAD_INPUTS: list[tuple[str, Callable[[Path], Any], dict[str, Any], type[InputError], str]] = [
    ("no face", lambda e: e / "captions-skimage/images/coffee.png", {}, InvalidRequestError, "no face"),
    ("two faces", lambda e: e / "faces-gallery/examples/two_people.jpg", {}, InvalidRequestError, "face_index"),
    (
        "index out of range",
        lambda e: e / "faces-gallery/examples/two_people.jpg",
        {"face_index": 2},
        InvalidRequestError,
        "out of range",
    ),
    ("zero bytes", lambda e: b"", {}, EmptyInputError, "empty"),
    ("text", lambda e: b"not a picture at all", {}, UnsupportedFormatError, "text"),
    (
        "truncated jpeg",
        lambda e: (e / "faces-gallery/examples/obama_small.jpg").read_bytes()[:40],
        {},
        CorruptInputError,
        "truncated or damaged",
    ),
]


@pytest.mark.parametrize(
    ("what", "source", "kwargs", "error", "message"), BAD_INPUTS, ids=[row[0] for row in BAD_INPUTS]
)
def test_bad_input_to_enrol_is_a_typed_error_and_changes_nothing(
    enrolled: Enrolled,
    eval_dir: Path,
    what: str,
    source: Callable[[Path], Any],
    kwargs: dict[str, Any],
    error: type[InputError],
    message: str,
) -> None:
    g, tenant = enrolled.gallery, enrolled.tenant
    person = enrolled.persons["biden"]
    before = sorted((g.settings.data_dir / "crops").rglob("*"))
    with pytest.raises(error, match=message):
        g.enrol(tenant, person, source(eval_dir), **kwargs)
    assert g.get_person(tenant, person).face_count == 2
    assert len(g.list_faces(tenant)) == 9
    assert sorted((g.settings.data_dir / "crops").rglob("*")) == before


def test_bad_options_are_refused(enrolled: Enrolled) -> None:
    g = enrolled.gallery
    photo = enrolled.root / STRANGER
    with pytest.raises(InvalidRequestError):
        g.identify(enrolled.tenant, enrolled.collection, photo, top_k=0)
    with pytest.raises(InvalidRequestError):
        g.identify(enrolled.tenant, enrolled.collection, photo, threshold=2.0)
    with pytest.raises(InvalidRequestError):
        g.correct(enrolled.tenant, "face_whatever")
    with pytest.raises(EmptyInputError):
        g.identify(enrolled.tenant, enrolled.collection, b"")
    assert len(g.list_faces(enrolled.tenant)) == 9


def test_the_shipped_profile_states_its_provenance() -> None:
    profile = load_face_profile()
    assert profile.model == "sface"
    far = {p.far: p for p in profile.operating_points}
    assert far[1e-3].threshold == profile.identify_threshold and far[1e-4].threshold == profile.strict_threshold
    assert far[1e-3].impostor_pairs > 100_000 and far[1e-3].measured_far <= 1e-3
    assert far[1e-3].tar > 0.95
    assert "faces-lfw" in profile.provenance["identify"] and profile.provenance["command"]


def test_threads_identifying_and_deleting_keep_index_and_database_in_step(enrolled: Enrolled) -> None:
    """The HTTP server calls from worker threads: after a burst, the in-memory index holds exactly the stored
    faces, and a reopened gallery (loading from the database) gives the same answers."""
    g, tenant, collection = enrolled.gallery, enrolled.tenant, enrolled.collection
    photos = [photo for photo, _ in enrolled.probes[:6]]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for photo in photos[offset::2]:
                result = g.identify(tenant, collection, photo)
                doomed = [f.face_id for f in result.faces if f.face_id and not f.known]
                for face_id in doomed:
                    g.delete_face(tenant, face_id)
        except BaseException as exc:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i % 2,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stored = {f.id for f in g.list_faces(tenant)}
    index = g._index(tenant)
    assert len(index) == len(stored) and all(face_id in index for face_id in stored)
    assert (
        len(stored)
        == 9 + 2 * sum(len(g.identify(tenant, collection, p, keep=False).faces) for p in photos) - 2 * 1
    )


def _profiles(folder: Path, **identify_params: Any) -> Path:
    """A profile folder holding the shipped faces-identify profile with some of its params changed."""
    shipped = load_profile(IDENTIFY_TASK)
    replace(shipped, params={**shipped.params, **identify_params}).save(folder / f"{IDENTIFY_TASK}.json")
    return folder


def test_a_users_profile_folder_sets_the_identify_threshold(
    analyzer: Analyzer, model_dir: Path, tmp_path: Path, eval_dir: Path
) -> None:
    """The threshold comes from ``Settings.profile_dir`` when it holds faces-identify.json (it was ignored once):
    a probe the shipped 0.364 names is "unknown" at 0.95, and the identification ladder climbs around 0.95 too."""
    train = eval_dir / "faces-gallery" / "examples" / "knn_examples" / "train"
    probe = eval_dir / "faces-gallery" / "examples" / "knn_examples" / "test" / "obama1.jpg"
    answers = {}
    for name, profile_dir in (("shipped", None), ("user", _profiles(tmp_path / "profiles", identify=0.95))):
        settings = Settings(data_dir=tmp_path / name, model_cache=model_dir, profile_dir=profile_dir)
        g = FaceGallery(SQLiteStore.open(settings), _with_settings(analyzer, settings))
        tenant = g.store.create_tenant("acme").id
        collection = g.create_collection(tenant, "staff").id
        obama = g.create_person(tenant, collection, "obama").id
        g.enrol(tenant, obama, train / "obama" / "obama.jpg")
        result = g.identify(tenant, collection, probe, keep=False)
        assert g.identify_ladder is not None and g.identify_ladder.threshold == g.profile.identify_threshold
        assert result.threshold == g.profile.identify_threshold_for(1)
        answers[name] = (result.threshold, result.faces[0].decision == obama, result.faces[0].similarity)
    shipped = load_face_profile().identify_threshold_for(1)
    assert answers["shipped"][:2] == (shipped, True) and answers["user"][:2] == (0.95, False)
    assert answers["shipped"][2] == pytest.approx(answers["user"][2])  # same face, same score: only the rule moved


def _shipped_with(**changes: Any) -> Callable[[], str]:
    """The shipped faces-identify profile as JSON, with top-level fields or (``params__x``) params changed."""

    def text() -> str:
        data = load_profile(IDENTIFY_TASK).to_dict()
        for key, value in changes.items():
            if key.startswith("params__"):
                data["params"][key.removeprefix("params__")] = value
            else:
                data[key] = value
        return json.dumps(data)

    return text


BROKEN_PROFILES: list[tuple[str, Callable[[], str], str]] = [
    ("not JSON", lambda: "{'identify': 0.4", "not valid JSON"),
    ("a list", lambda: "[0.364]", "must hold a JSON object"),
    ("threshold missing", _shipped_with(params={"model": "sface"}), "params lacks 'identify'"),
    ("threshold not a number", _shipped_with(params__identify="high"), "params are malformed"),
    (
        "threshold out of range",
        _shipped_with(params__identify=1.5),
        r"identify_threshold must be a cosine similarity in \[-1, 1\]",
    ),
    ("another task", _shipped_with(task="faces-verify"), "a face profile has task 'faces-identify'"),
    ("unknown field", _shipped_with(thresholds_v0={}), "profile is malformed"),
    ("params not an object", _shipped_with(params=[0.364]), "params and calibration must be JSON objects"),
]


@pytest.mark.parametrize(("what", "text", "message"), BROKEN_PROFILES, ids=[row[0] for row in BROKEN_PROFILES])
def test_a_broken_face_profile_is_a_clear_configuration_error(
    analyzer: Analyzer, model_dir: Path, tmp_path: Path, what: str, text: Callable[[], str], message: str
) -> None:
    folder = tmp_path / "profiles"
    folder.mkdir()
    path = folder / f"{IDENTIFY_TASK}.json"
    path.write_text(text())
    settings = Settings(data_dir=tmp_path / "data", model_cache=model_dir, profile_dir=folder)
    with pytest.raises(ConfigurationError, match=message) as caught:
        FaceGallery(SQLiteStore.open(settings), _with_settings(analyzer, settings))
    assert str(path) in str(caught.value)  # the message says which file to fix


def test_identify_answers_while_a_recluster_runs(
    enrolled: Enrolled, monkeypatch: pytest.MonkeyPatch, eval_dir: Path
) -> None:
    """The clustering itself runs without the gallery's lock: from inside it, another thread identifies a face
    (and stores it), names one of the faces being clustered and erases another. Those two keep what happened to
    them; the rest get their new clusters."""
    g, tenant, collection = enrolled.gallery, enrolled.tenant, enrolled.collection
    stored = g.store.add_faces(tenant, random_faces(120, seed=7, collection_id=collection))
    named, erased = stored[0].id, stored[1].id
    ada = g.create_person(tenant, collection, "Ada").id
    seen: dict[str, Any] = {}

    def meanwhile() -> None:
        seen["decision"] = g.identify(tenant, collection, enrolled.root / "examples/obama-480p.jpg").faces[0]
        g.correct(tenant, named, is_person=ada)
        g.delete_face(tenant, erased)

    def clustering_with_company(vectors: Any, threshold: float) -> Any:
        seen["faces"] = len(vectors)
        other = threading.Thread(target=meanwhile)
        other.start()
        other.join(timeout=120)  # held lock: the other thread would wait for the clustering, which waits here
        seen["answered"] = not other.is_alive()
        return average_linkage(vectors, threshold)

    monkeypatch.setattr(clusters_module, "average_linkage", clustering_with_company)
    g.recluster(tenant)
    assert seen["answered"] and seen["faces"] == 120
    assert seen["decision"].decision == enrolled.persons["obama"]
    ada_face = g.get_face(tenant, named)
    assert (ada_face.person_id, ada_face.cluster_id) == (ada, None)  # not put back into a stranger cluster
    with pytest.raises(NotFoundError):
        g.get_face(tenant, erased)
    others = [g.get_face(tenant, f.id) for f in stored[2:]]
    assert all(f.cluster_id is not None for f in others)  # the others were re-clustered
    index = g._index(tenant)
    assert len(index) == len(g.list_faces(tenant)) and erased not in index


def test_the_identify_threshold_follows_the_gallery_size(
    analyzer: Analyzer, model_dir: Path, tmp_path: Path, eval_dir: Path
) -> None:
    """With a threshold per gallery size in the profile, identify decides with the one for the collection's
    enrolled faces (a stranger is likelier to look like someone in a bigger gallery); a caller's own threshold
    still wins, and persons without enrolled faces do not count."""
    train = eval_dir / "faces-gallery" / "examples" / "knn_examples" / "train"
    probe = eval_dir / "faces-gallery" / "examples" / "knn_examples" / "test" / "obama1.jpg"
    table = [[1, 0.40], [100, 0.60]]
    settings = Settings(
        data_dir=tmp_path / "data",
        model_cache=model_dir,
        profile_dir=_profiles(tmp_path / "profiles", identify_by_gallery_size=table, open_set={"target": 0.01}),
    )
    g = FaceGallery(SQLiteStore.open(settings), _with_settings(analyzer, settings))
    tenant = g.store.create_tenant("acme").id
    collection = g.create_collection(tenant, "staff").id
    obama = g.create_person(tenant, collection, "obama").id
    g.enrol(tenant, obama, train / "obama" / "obama.jpg")
    g.create_person(tenant, collection, "nobody enrolled")
    one = g.identify(tenant, collection, probe, keep=False)
    assert one.threshold == pytest.approx(0.40)
    biden = g.create_person(tenant, collection, "biden").id
    g.enrol(tenant, biden, train / "biden" / "biden.jpg")
    other = g.create_collection(tenant, "elsewhere").id
    for n in range(3):  # persons of another collection do not count
        g.enrol(tenant, g.create_person(tenant, other, f"p{n}").id, train / "biden" / "biden.jpg")
    two = g.identify(tenant, collection, probe, keep=False)
    expected = 0.40 + (0.60 - 0.40) * math.log(2) / math.log(100)
    assert two.threshold == pytest.approx(expected) and two.threshold == g.profile.identify_threshold_for(2)
    assert g.identify(tenant, collection, probe, keep=False, threshold=0.2).threshold == 0.2
    assert FaceProfile.from_profile(load_profile(IDENTIFY_TASK, settings.profile_dir)).by_gallery_size == (
        (1, 0.40),
        (100, 0.60),
    )

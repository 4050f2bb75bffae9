"""Search as a library: real models on real photos, receipts and a recording, in a real SQLite file."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from frugalsense.analyze import Analyzer
from frugalsense.errors import ConfigurationError, InvalidRequestError, NotFoundError
from frugalsense.faces.gallery import FaceGallery
from frugalsense.media.phash import NEAR_RADIUS, hamming, near_duplicate_groups, photo_hash
from frugalsense.search import SearchService, SemanticIndex
from frugalsense.search.index import vector_file
from frugalsense.settings import Settings
from frugalsense.store import SQLiteStore

IMAGENET = ["n01440764_tench", "n01484850_great_white_shark", "n01514859_hen", "n01530575_brambling"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[SearchService]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("search"), model_cache=model_dir)
    with SearchService.open(settings) as svc:
        yield svc


@pytest.fixture(scope="module")
def tenant(service: SearchService, eval_dir: Path) -> str:
    """One tenant holding four ImageNet photos, two receipts and a voice note."""
    tenant_id = service.store.create_tenant("library").id
    images = eval_dir / "zeroshot-imagenet" / "images"
    receipts = eval_dir / "ocr-sroie" / "img"
    voice = Path(__file__).resolve().parents[1] / "src" / "frugalsense" / "data" / "voice-note.ogg"
    paths = [str(images / f"{n}.JPEG") for n in IMAGENET] + [str(receipts / "000.jpg"), str(receipts / "006.jpg")]
    summary = service.index_paths(tenant_id, [*paths, str(voice)], workers=2)
    assert summary.counts["added"] == 7, summary.to_dict()
    return tenant_id


def _sources(results: object) -> list[str]:
    return [Path(h.item.source).name for h in results.hits]  # type: ignore[attr-defined]


@pytest.mark.parametrize("query, expected", [("tench", "n01440764_tench.JPEG"), ("hen", "n01514859_hen.JPEG")])
def test_a_class_name_finds_its_photo_by_meaning_alone(
    service: SearchService, tenant: str, query: str, expected: str
) -> None:
    results = service.search(tenant, query, mode="semantic", top_k=3)
    assert _sources(results)[0] == expected
    meaning = results.hits[0].reasons[0]
    assert meaning.kind == "meaning" and meaning.field == "image" and "looks like" in meaning.detail


def test_a_receipt_is_found_by_its_company_name_and_says_which_words(
    service: SearchService, tenant: str, eval_dir: Path
) -> None:
    company = json.loads((eval_dir / "ocr-sroie" / "key" / "006.json").read_text())["company"]
    results = service.search(tenant, company, top_k=3)
    assert _sources(results)[0] == "006.jpg"
    words = [r for r in results.hits[0].reasons if r.kind == "words"]
    assert words and words[0].field == "text" and words[0].words


def test_speech_is_searchable_by_words_and_meaning(service: SearchService, tenant: str) -> None:
    results = service.search(tenant, "delivery for the hardware shop", top_k=2)
    assert _sources(results)[0] == "voice-note.ogg"
    fields = {r.field for r in results.hits[0].reasons}
    assert "transcript" in fields and any(f.startswith("speech") for f in fields)


def test_filters_restrict_by_modality_label_and_date(service: SearchService, tenant: str) -> None:
    audio = service.search(tenant, "fish", filters=service.filters(tenant, modality="audio"))
    assert _sources(audio) == ["voice-note.ogg"]
    hens = service.search(tenant, "", filters=service.filters(tenant, label="hen"))
    assert _sources(hens) == ["n01514859_hen.JPEG"]
    assert service.search(tenant, "fish", filters=service.filters(tenant, until="1990-01-01")).hits == []
    with pytest.raises(InvalidRequestError):
        service.filters(tenant, modality="hologram")
    with pytest.raises(InvalidRequestError):
        service.search(tenant, "")


def test_an_unchanged_file_is_skipped_and_a_changed_one_replaced(
    service: SearchService, tmp_path: Path, eval_dir: Path
) -> None:
    tenant = service.store.create_tenant("changes").id
    images = eval_dir / "zeroshot-imagenet" / "images"
    photo = tmp_path / "photo.jpg"
    shutil.copy(images / f"{IMAGENET[0]}.JPEG", photo)
    first = service.index(tenant, photo)
    assert first.status == "added" and service.index(tenant, photo).status == "unchanged"
    shutil.copy(images / f"{IMAGENET[2]}.JPEG", photo)
    second = service.index(tenant, photo)
    assert second.status == "updated" and second.item_id != first.item_id
    with pytest.raises(NotFoundError):
        service.get_item(tenant, str(first.item_id))
    assert len(service.cache.get(tenant, service.encoder.name)) == 1
    assert _sources(service.search(tenant, "hen", top_k=5)) == ["photo.jpg"]


def test_people_are_found_and_deleting_an_item_erases_its_faces_text_and_vectors(
    service: SearchService, tmp_path: Path, eval_dir: Path
) -> None:
    tenant = service.store.create_tenant("people").id
    faces = eval_dir / "faces-deepface" / "images"
    identities = {
        r.split(",")[0]: r.split(",")[1] for r in (faces.parent / "identities.csv").read_text().split()[1:]
    }
    by_person: dict[str, list[str]] = {}
    for name, who in identities.items():
        by_person.setdefault(who, []).append(name)
    ada, bob = (sorted(v) for v in list(by_person.values())[:2])
    people = service.gallery.create_collection(tenant, "people")
    person = service.gallery.create_person(tenant, people.id, "Ada")
    service.gallery.enrol(tenant, person.id, faces / ada[0])
    folder = tmp_path / "album"
    folder.mkdir()
    for name in [*ada[1:3], bob[0]]:
        shutil.copy(faces / name, folder / name)
    assert service.index_paths(tenant, [str(folder)]).counts["added"] == 3

    found = service.search(tenant, "", filters=service.filters(tenant, person="ada"))
    assert sorted(_sources(found)) == sorted(ada[1:3])
    face_reason = next(r for r in found.hits[0].reasons if r.kind == "face")
    assert face_reason.person_id == person.id and face_reason.face_id

    item = service.get_item(tenant, found.hits[0].item.id)
    face_ids = [f["face_id"] for f in item["faces"]]
    before = len(service.cache.get(tenant, service.encoder.name))
    assert service.delete_item(tenant, item["id"])["faces"] == len(face_ids) >= 1
    for face_id in face_ids:
        with pytest.raises(NotFoundError):
            service.gallery.get_face(tenant, face_id)
    assert len(service.cache.get(tenant, service.encoder.name)) == before - 1
    with sqlite3.connect(service.items.path) as db:
        assert db.execute("SELECT COUNT(*) FROM item_vectors WHERE item_id = ?", (item["id"],)).fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM item_faces WHERE item_id = ?", (item["id"],)).fetchone()[0] == 0
    remaining = service.search(tenant, "", filters=service.filters(tenant, person=person.id))
    assert len(remaining.hits) == 1


def test_near_duplicates_are_grouped_and_found_by_example(
    service: SearchService, tmp_path: Path, eval_dir: Path
) -> None:
    tenant = service.store.create_tenant("dups").id
    original = eval_dir / "zeroshot-imagenet" / "images" / f"{IMAGENET[1]}.JPEG"
    picture = Image.open(original).convert("RGB")
    picture.save(tmp_path / "a.jpg", quality=95)
    picture.resize((picture.width // 2, picture.height // 2)).save(tmp_path / "b.jpg", quality=60)
    shutil.copy(eval_dir / "zeroshot-imagenet" / "images" / f"{IMAGENET[3]}.JPEG", tmp_path / "c.jpg")
    service.index_paths(tenant, [str(tmp_path)])

    groups = service.near_duplicates(tenant)
    assert [sorted(Path(i.source).name for i in g) for g in groups] == [["a.jpg", "b.jpg"]]
    results = service.search_image(tenant, original, top_k=3)
    assert sorted(_sources(results)[:2]) == ["a.jpg", "b.jpg"]
    assert results.hits[0].reasons[0].kind == "look" and results.receipt is not None


def test_the_vector_file_is_read_back_after_a_restart(service: SearchService, tenant: str) -> None:
    service.cache.flush()
    path = vector_file(service.settings.data_dir, tenant, service.encoder.name)
    snapshot = SemanticIndex.load(path)
    assert snapshot is not None and snapshot.version == service.items.version(tenant, service.encoder.name)
    store = SQLiteStore(service.store.path)
    analyzer = Analyzer(service.settings)
    with SearchService(store, analyzer, FaceGallery(store, analyzer)) as again:
        assert _sources(again.search(tenant, "tench", mode="semantic", top_k=1)) == ["n01440764_tench.JPEG"]
    store.close()


def test_near_duplicate_grouping_is_exact_within_the_distance() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, 200, dtype=np.int64).view(np.uint64)
    flipped = base ^ np.uint64(0b1011_0000_0001)  # 4 bits apart
    hashes = np.concatenate([base, flipped])
    groups = near_duplicate_groups(hashes, max_distance=4)
    assert sorted(tuple(g) for g in groups) == [(i, i + 200) for i in range(200)]
    assert near_duplicate_groups(hashes, max_distance=3) == []
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:, 30:] = 255
    pixels[10:20, 5:15] = 128
    half = photo_hash(np.ascontiguousarray(pixels[::2, ::2]))
    assert int(hamming(np.array([photo_hash(pixels)], np.uint64), half)[0]) <= NEAR_RADIUS


def _colour_encoders(folder: Path) -> tuple[Path, Path, Path]:
    """A real CLIP-style pair in ONNX, built here: the image graph averages each normalised colour channel and
    the text graph sums word vectors, with "red", "green" and "blue" set where those pure colours land."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    from frugalsense.search.encoders import CLIP_MEAN, CLIP_STD

    image = helper.make_graph(
        [helper.make_node("ReduceMean", ["pixel_values"], ["image_embeds"], axes=[2, 3], keepdims=0)],
        "colour-image",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["batch", 3])],
    )
    colours = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0)}
    table = np.zeros((5, 3), np.float32)
    for row, rgb in enumerate(colours.values(), start=1):
        table[row] = (np.array(rgb, np.float32) - CLIP_MEAN) / CLIP_STD
    text = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "input_ids"], ["words"]),
            helper.make_node("ReduceSum", ["words", "axes"], ["text_embeds"], keepdims=0),
        ],
        "colour-text",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", 77])],
        [helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.array([1]), "axes")],
    )
    paths = folder / "image.onnx", folder / "text.onnx", folder / "tokenizer.json"
    for graph, path in ((image, paths[0]), (text, paths[1])):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
    vocab = {"[PAD]": 0, "red": 1, "green": 2, "blue": 3, "[UNK]": 4}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(paths[2]))
    return paths


def test_a_users_own_onnx_clip_encoders_replace_conse(tmp_path: Path, model_dir: Path) -> None:
    image_model, text_model, tokenizer = _colour_encoders(tmp_path)
    settings = Settings(
        data_dir=tmp_path / "data",
        model_cache=model_dir,
        search_encoder="onnx-clip",
        clip_image_model=image_model,
        clip_text_model=text_model,
        clip_tokenizer=tokenizer,
        clip_image_size=32,
    )
    folder = tmp_path / "swatches"
    folder.mkdir()
    for name, rgb in (("tomato", (230, 20, 10)), ("lawn", (10, 200, 30)), ("sea", (20, 30, 220))):
        Image.new("RGB", (64, 48), rgb).save(folder / f"{name}.png")
    with SearchService.open(settings) as service:
        assert service.encoder.name.startswith("onnx-clip-")
        tenant = service.store.create_tenant("plug-in").id
        assert service.index_paths(tenant, [str(folder)]).counts["added"] == 3
        for word, expected in (("red", "tomato.png"), ("green", "lawn.png"), ("Blue", "sea.png")):
            hit = service.search(tenant, word, mode="semantic", top_k=3).hits[0]
            assert Path(hit.item.source).name == expected and hit.reasons[0].score > 0.9
            assert hit.item.encoder == service.encoder.name
    with pytest.raises(ConfigurationError, match="FRUGALSENSE_CLIP_TEXT_MODEL"):
        SearchService.open(settings.model_copy(update={"clip_text_model": None}))


def test_the_vector_index_grows_deletes_and_keeps_each_items_best_part() -> None:
    rng = np.random.default_rng(1)
    index = SemanticIndex()
    matrix = rng.standard_normal((3000, 16)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    items = [i // 2 for i in range(3000)]  # two parts per item
    index.add(items, [f"page {i % 2 + 1}" for i in range(3000)], matrix)
    assert index.search(matrix[7], 1) == [(3, pytest.approx(1.0), "page 2")]
    hits = index.search(matrix[7], 5)
    assert len({item for item, _, _ in hits}) == 5
    index.remove_items([3, 1499])
    assert len(index) == 2996 and all(item != 3 for item, _, _ in index.search(matrix[7], 50))
    only = index.search(matrix[7], 3, allowed={10, 11})
    assert {item for item, _, _ in only} == {10, 11}


def test_erasing_a_tenant_takes_its_items_text_and_vectors(
    service: SearchService, tmp_path: Path, eval_dir: Path
) -> None:
    tenant = service.store.create_tenant("leaving").id
    photo = tmp_path / "leaving.jpg"
    shutil.copy(eval_dir / "zeroshot-imagenet" / "images" / f"{IMAGENET[2]}.JPEG", photo)
    assert service.index(tenant, photo).status == "added"
    service.store.delete_tenant(tenant)
    service.cache.drop_tenant(tenant)
    with sqlite3.connect(service.items.path) as db:
        for table in ("items", "item_text", "item_grams", "item_vectors", "item_labels", "search_state"):
            assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE tenant_id = ?", (tenant,)).fetchone()[0] == 0
    assert not vector_file(service.settings.data_dir, tenant, service.encoder.name).exists()

"""Run every rung once over a labelled data set and keep what calibration needs, cached in a file.

Recording is the slow part of calibration (every model on every item); calibrating from a recording takes
milliseconds, so recordings are cached (``.npz``, keyed by data set and models) under a folder the caller names:
``DATA_DIR/calibration`` for the CLI, ``bench/out`` for the benches. They are never part of the repository.

Data layouts understood (those of ``../shared/eval``):

- labels: ``images.csv`` with ``file`` and ``class_index`` (ImageNet-1k), pictures under ``images/``;
  without ``class_index`` the items are unlabelled and quality becomes agreement with the strongest rung;
- face pairs: ``pairs.csv`` or ``pairs_all.csv`` with ``file_x``, ``file_y``, ``same``, pictures under ``images/``.

    from frugalsense.settings import Settings
    records = record_labels(Settings(), Path("../shared/eval/zeroshot-imagenet"))
    records.probs["efficientnet-lite0-int8"].shape
    # (500, 1000)
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from frugalsense.atomic import atomic_write
from frugalsense.errors import InvalidRequestError
from frugalsense.ledger import Meter
from frugalsense.settings import Settings

__all__ = [
    "LABEL_MODELS",
    "FaceRecords",
    "LabelRecords",
    "Progress",
    "read_face_pairs",
    "read_label_items",
    "record_faces",
    "record_labels",
]

#: every EfficientNet-Lite variant at both precisions: the int8 gate needs both
LABEL_MODELS = tuple(f"efficientnet-lite{v}-{p}" for v in (0, 1, 2) for p in ("int8", "fp32"))
Progress = Callable[[int, int], None]


@dataclass
class LabelRecords:
    """Class probabilities and CPU-seconds of each label model on each picture."""

    files: list[str]
    labels: npt.NDArray[np.int64]  # ImageNet class per picture, -1 when unlabelled
    probs: dict[str, npt.NDArray[np.float32]]  # model -> (items, 1000)
    cpu: dict[str, npt.NDArray[np.float64]]  # model -> (items,)

    @property
    def labelled(self) -> bool:
        return bool(np.all(self.labels >= 0))

    def subset(self, rows: npt.NDArray[np.intp]) -> LabelRecords:
        return LabelRecords(
            [self.files[i] for i in rows],
            self.labels[rows],
            {m: p[rows] for m, p in self.probs.items()},
            {m: c[rows] for m, c in self.cpu.items()},
        )


@dataclass
class FaceRecords:
    """Per picture: both embeddings and what each step cost; per pair: the two pictures and the truth."""

    files: list[str]  # relative to the data set's images folder
    found: npt.NDArray[np.bool_]  # a face was detected
    sface: npt.NDArray[np.float32]  # (pictures, 128) unit vectors, zeros when no face
    dlib: npt.NDArray[np.float32]
    cpu_detect: npt.NDArray[np.float64]
    cpu_sface: npt.NDArray[np.float64]
    cpu_dlib: npt.NDArray[np.float64]
    pair_a: npt.NDArray[np.int64]
    pair_b: npt.NDArray[np.int64]
    same: npt.NDArray[np.bool_]

    def similarities(self, model: str) -> npt.NDArray[np.float64]:
        """Cosine similarity per pair; -1 where either picture shows no face (so the pair reads "different")."""
        vectors = self.sface if model == "sface" else self.dlib
        sims = np.einsum("ij,ij->i", vectors[self.pair_a], vectors[self.pair_b]).astype(np.float64)
        ok = self.found[self.pair_a] & self.found[self.pair_b]
        return np.where(ok, sims, -1.0)

    def pair_cpu(self, step: str) -> npt.NDArray[np.float64]:
        """CPU-seconds of one step ("detect", "sface", "dlib") for both pictures of each pair."""
        per_picture = {"detect": self.cpu_detect, "sface": self.cpu_sface, "dlib": self.cpu_dlib}[step]
        return per_picture[self.pair_a] + per_picture[self.pair_b]


def read_label_items(data: Path) -> tuple[list[Path], npt.NDArray[np.int64]]:
    """Pictures and their classes (-1 where the file gives none)."""
    index = data / "images.csv"
    if not index.is_file():
        raise InvalidRequestError(f"{data} has no images.csv (columns file and, for labelled data, class_index)")
    with open(index, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    paths = [data / "images" / r["file"] for r in rows]
    labels = np.array([int(r["class_index"]) if r.get("class_index") else -1 for r in rows], np.int64)
    return paths, labels


def read_face_pairs(data: Path) -> tuple[list[Path], list[tuple[int, int, bool]]]:
    """Distinct pictures and the pairs over them (indices into the pictures, same person or not)."""
    index = next((data / n for n in ("pairs.csv", "pairs_all.csv") if (data / n).is_file()), None)
    if index is None:
        raise InvalidRequestError(f"{data} has no pairs.csv or pairs_all.csv (columns file_x, file_y, same)")
    with open(index, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    pictures: dict[str, int] = {}
    pairs = []
    for r in rows:
        a = pictures.setdefault(r["file_x"], len(pictures))
        b = pictures.setdefault(r["file_y"], len(pictures))
        pairs.append((a, b, r["same"].strip().lower() in ("1", "true", "yes")))
    return [data / "images" / name for name in pictures], pairs


def record_labels(
    settings: Settings,
    data: Path,
    *,
    models: Sequence[str] = LABEL_MODELS,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> LabelRecords:
    """Every label model once on every picture of `data`, or the cached recording of exactly that."""
    from frugalsense.media import load
    from frugalsense.models.registry import ModelZoo

    paths, labels = read_label_items(data)
    cache = _cache_path(cache_dir, "labels", data, [*models, *(p.name for p in paths)])
    if cache is not None and cache.is_file():
        with np.load(cache) as saved:
            return LabelRecords(
                [str(f) for f in saved["files"]],
                saved["labels"],
                {m: saved[f"probs_{m}"].astype(np.float32) for m in models},
                {m: saved[f"cpu_{m}"] for m in models},
            )
    zoo = ModelZoo(settings)
    probs = {m: np.zeros((len(paths), 1000), np.float32) for m in models}
    cpu = {m: np.zeros(len(paths)) for m in models}
    for model in models:
        zoo.get(model).load()
    for i, path in enumerate(paths):
        frame = load(path, settings).frames[0]
        for model in models:
            meter = Meter(0.0)
            probs[model][i] = zoo.get(model).predict([frame], meter)[0]
            cpu[model][i] = meter.receipt.cpu_seconds
        if progress:
            progress(i + 1, len(paths))
    records = LabelRecords([p.name for p in paths], labels, probs, cpu)
    if cache is not None:
        arrays: dict[str, npt.NDArray[np.generic]] = {"files": np.array(records.files), "labels": labels}
        for m in models:
            # float16 keeps top-1 and the ensemble's average intact to 1e-3 and a tenth of the size.
            arrays[f"probs_{m}"] = probs[m].astype(np.float16)
            arrays[f"cpu_{m}"] = cpu[m]
        _save(cache, arrays)
        return record_labels(settings, data, models=models, cache_dir=cache_dir)
    return records


def record_faces(
    settings: Settings,
    data: Path,
    *,
    centre: bool | None = None,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> FaceRecords:
    """YuNet, SFace and dlib once on every picture of `data`'s pairs (or the cached recording of that).

    The face taken is the one nearest the centre for LFW-style crops (``centre``; by default when every picture
    is at most 256 pixels wide) and the largest one otherwise.
    """
    from frugalsense.analyze import Analyzer
    from frugalsense.media import load

    paths, pairs = read_face_pairs(data)
    cache = _cache_path(cache_dir, "faces", data, [str(centre), *(p.name for p in paths), str(len(pairs))])
    if cache is None or not cache.is_file():
        analyzer = Analyzer(settings)
        detector = analyzer.zoo.get(analyzer.pipeline.face_detector)
        sface_model = analyzer.zoo.get("sface")
        dlib_model = analyzer.zoo.get("dlib-resnet")
        n = len(paths)
        found = np.zeros(n, bool)
        vectors = {"sface": np.zeros((n, 128), np.float32), "dlib": np.zeros((n, 128), np.float32)}
        costs = {"detect": np.zeros(n), "sface": np.zeros(n), "dlib": np.zeros(n)}
        for i, path in enumerate(paths):
            frame = load(path, settings).frames[0]
            meter = Meter(0.0)
            faces = detector.predict([frame], meter)[0]
            costs["detect"][i] = meter.receipt.cpu_seconds
            if faces:
                near_centre = centre if centre is not None else max(frame.width, frame.height) <= 256
                cx, cy = frame.width / 2, frame.height / 2
                face = (
                    min(faces, key=lambda f: abs(f.box.x + f.box.w / 2 - cx) + abs(f.box.y + f.box.h / 2 - cy))
                    if near_centre
                    else max(faces, key=lambda f: f.box.w * f.box.h)
                )
                bgr = frame.bgr()
                found[i] = True
                for name, model in (("sface", sface_model), ("dlib", dlib_model)):
                    meter = Meter(0.0)
                    vectors[name][i] = model.predict([(bgr, face)], meter)[0]
                    costs[name][i] = meter.receipt.cpu_seconds
            if progress:
                progress(i + 1, n)
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "files": np.array([str(p.relative_to(data / "images")) for p in paths]),
            "found": found,
            "sface": vectors["sface"],
            "dlib": vectors["dlib"],
            "cpu_detect": costs["detect"],
            "cpu_sface": costs["sface"],
            "cpu_dlib": costs["dlib"],
            "pair_a": np.array([a for a, _, _ in pairs], np.int64),
            "pair_b": np.array([b for _, b, _ in pairs], np.int64),
            "same": np.array([s for _, _, s in pairs], bool),
        }
        if cache is None:
            return _face_records(arrays)
        _save(cache, arrays)
    with np.load(cache) as saved:
        return _face_records({k: saved[k] for k in saved.files})


def _face_records(a: dict[str, npt.NDArray[np.generic]]) -> FaceRecords:
    return FaceRecords(
        files=[str(f) for f in a["files"]],
        found=a["found"].astype(bool),
        sface=a["sface"].astype(np.float32),
        dlib=a["dlib"].astype(np.float32),
        cpu_detect=a["cpu_detect"].astype(np.float64),
        cpu_sface=a["cpu_sface"].astype(np.float64),
        cpu_dlib=a["cpu_dlib"].astype(np.float64),
        pair_a=a["pair_a"].astype(np.int64),
        pair_b=a["pair_b"].astype(np.int64),
        same=a["same"].astype(bool),
    )


def _cache_path(cache_dir: Path | None, kind: str, data: Path, key: Sequence[str]) -> Path | None:
    if cache_dir is None:
        return None
    digest = hashlib.sha256("\n".join(key).encode()).hexdigest()[:12]
    return cache_dir / f"{kind}-{data.resolve().name}-{digest}.npz"


def _save(path: Path, arrays: dict[str, npt.NDArray[np.generic]]) -> None:
    with atomic_write(path) as handle:
        np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]

"""Recording the cost-quality tables `frugalsense bench` reads, straight from an evaluation folder.

`frugalsense bench --record --eval-dir ../shared/eval` runs every rung once on each task's data with the product's
own recorders (the same ones `frugalsense calibrate` uses, cached in ``DATA_DIR/calibration``), turns each into
a :class:`~frugalsense.calibration.report.TaskData` and saves it where the report reads it. The report then
calibrates on one half and measures on the other (:func:`~frugalsense.calibration.report.cost_quality`); so that
nothing is chosen on the measured half, what the tables themselves fit (the int8 gate, the face scores' logistic
fits) is fitted on that same calibration half.

Tasks and the folders they read (the layout of ``../shared/eval``):

- ``labels``: ``zeroshot-imagenet`` (``images.csv``), top-1 against ImageNet's labels;
- ``faces-lfw`` / ``faces-deepface``: the pairs of ``faces-lfw`` and ``faces-deepface``, pair accuracy;
- ``text-gate``: the photos of ``zeroshot-imagenet``, ``detect-coco-tiny``, ``ocr-icdar2015/det_images``,
  ``captions-skimage`` and ``faces-deepface``, judged by full PP-OCR (:mod:`frugalsense.calibration.text_gate`).

The document OCR and face-detection tables need labelled boxes per page and are recorded by the scripts in
``bench/`` (``bench/_record_text.py``, ``bench/_record_detect.py``, then ``bench/cost_quality.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from frugalsense.calibration.faces import faces_table, fit_fusion, fit_logistic
from frugalsense.calibration.labels import gated_rungs, int8_gate, labels_table
from frugalsense.calibration.record import Progress, record_faces, record_labels
from frugalsense.calibration.report import TaskData, save_task, split_rows
from frugalsense.calibration.text_gate import GateRecords, gate_table, photo_files, record_gate
from frugalsense.errors import InvalidRequestError
from frugalsense.ladder.labels import ENSEMBLE
from frugalsense.profiles import load_profile
from frugalsense.settings import Settings

__all__ = ["BENCH_TASKS", "faces_task", "gate_task", "gate_task_data", "labels_task", "record_tables"]

#: the half `cost_quality` calibrates on (its defaults): tables fit their own scores on the same half
FRACTION = 0.5
SEED = 0
GATE_FOLDERS = (
    "zeroshot-imagenet/images",
    "detect-coco-tiny",
    "ocr-icdar2015/det_images",
    "captions-skimage/images",
    "faces-deepface/images",
)
Floats = npt.NDArray[np.float64]


def labels_task(settings: Settings, data: Path, *, cache_dir: Path | None, progress: Progress | None) -> TaskData:
    """Every EfficientNet-Lite variant alone, and the ladder of the int8-gated variants up to their ensemble."""
    records = record_labels(settings, data, cache_dir=cache_dir, progress=progress)
    cal, _ = split_rows(len(records.files), FRACTION, SEED)
    rungs = gated_rungs(int8_gate(records.subset(cal)))
    table = labels_table(records, rungs)
    truth = records.labels if records.labelled else table.quality[:, -1]
    singles: dict[str, tuple[Floats, Floats]] = {}
    for model in sorted(records.probs):
        right = (records.probs[model].argmax(1) == truth).astype(np.float64)
        singles[model] = (right, records.cpu[model].astype(np.float64))
    strongest = f"always {ENSEMBLE} ({'+'.join(r.removeprefix('efficientnet-') for r in rungs[:-1])})"
    singles[strongest] = (table.quality[:, -1], table.cpu.sum(axis=1))
    return TaskData("labels", table, singles, strongest, "top-1")


def faces_task(settings: Settings, data: Path, *, cache_dir: Path | None, progress: Progress | None) -> TaskData:
    """SFace alone, dlib alone, both fused on every pair, and the band ladder; scores fitted on the calibration
    half of the pairs."""
    records = record_faces(settings, data, cache_dir=cache_dir, progress=progress)
    fit, _ = split_rows(len(records.same), FRACTION, SEED)
    s1, s2, same = records.similarities("sface"), records.similarities("dlib"), records.same
    detect = records.pair_cpu("detect")
    singles: dict[str, tuple[Floats, Floats]] = {}
    for name, scores, cpu in (
        ("sface alone", s1, detect + records.pair_cpu("sface")),
        ("dlib-resnet alone", s2, detect + records.pair_cpu("dlib")),
    ):
        a, b = fit_logistic(scores[fit], same[fit])
        singles[name] = (((a * scores + b >= 0) == same).astype(np.float64), cpu)
    fusion = fit_fusion(s1[fit], s2[fit], same[fit])
    table = faces_table(records, fusion)
    singles["both fused, every pair"] = (table.quality[:, 1], table.cpu.sum(axis=1))
    return TaskData(f"faces-verify ({data.name})", table, singles, "both fused, every pair", "pair accuracy")


def gate_task(
    settings: Settings, folders: Sequence[Path], *, cache_dir: Path | None, progress: Progress | None
) -> TaskData:
    """The text gate against OCR on every photo, full PP-OCR judging which photos have text; scans left out."""
    records = record_gate(settings, photo_files(folders), cache_dir=cache_dir, progress=progress)
    line_confidence = float(load_profile("text", settings.profile_dir).params.get("line_confidence", 0.9))
    return gate_task_data(records, line_confidence)


def gate_task_data(records: GateRecords, line_confidence: float) -> TaskData:
    """The gate's task from a recording: its photos (scans left out), the gate alone, and OCR on every photo."""
    kept = records.subset(np.flatnonzero(~records.scan))
    table = gate_table(kept, kept.has_text(line_confidence))
    singles = {
        "no gate (OCR every photo)": (table.quality[:, 1], table.cpu[:, 1]),
        "text-gate alone": (table.quality[:, 0], table.cpu[:, 0]),
    }
    return TaskData(
        "text: gate (photo handled as full OCR would)", table, singles, "no gate (OCR every photo)", "photos right"
    )


def _tasks(eval_dir: Path) -> dict[str, Callable[..., TaskData]]:
    return {
        "labels": lambda **kw: labels_task(data=eval_dir / "zeroshot-imagenet", **kw),
        "faces-lfw": lambda **kw: faces_task(data=eval_dir / "faces-lfw", **kw),
        "faces-deepface": lambda **kw: faces_task(data=eval_dir / "faces-deepface", **kw),
        "text-gate": lambda **kw: gate_task(
            folders=[eval_dir / f for f in GATE_FOLDERS if (eval_dir / f).is_dir()], **kw
        ),
    }


BENCH_TASKS = ("labels", "faces-lfw", "faces-deepface", "text-gate")


def record_tables(
    settings: Settings,
    eval_dir: Path,
    out: Path,
    *,
    tasks: Sequence[str] = BENCH_TASKS,
    progress: Callable[[str], Progress] | None = None,
) -> list[Path]:
    """Record each task of `tasks` from `eval_dir` and save its table under `out` (one ``.npz`` per task).

    `progress(task)` gives the per-item progress callback of one task's recording."""
    if not eval_dir.is_dir():
        raise InvalidRequestError(f"no evaluation folder at {eval_dir}: pass --eval-dir (../shared/eval)")
    makers = _tasks(eval_dir)
    unknown = [t for t in tasks if t not in makers]
    if unknown:
        raise InvalidRequestError(f"unknown bench tasks {unknown}; choose from {', '.join(BENCH_TASKS)}")
    written = []
    for task in tasks:
        data = makers[task](
            settings=settings,
            cache_dir=settings.data_dir / "calibration",
            progress=progress(task) if progress else None,
        )
        written.append(save_task(data, out / f"{task}.npz"))
    return written

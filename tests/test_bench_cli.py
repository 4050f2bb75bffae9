"""`frugalsense bench --record` from a fresh checkout: it records the labels, face-verification and text-gate
tables from an evaluation folder laid out as ../shared/eval (here a small slice of it) and prints the report."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from frugalsense.calibration.report import load_task
from frugalsense.cli import main


def _mini_eval(eval_dir: Path, root: Path) -> Path:
    """60 ImageNet photos, 40 same and 40 different LFW pairs, the ICDAR scene photos: real files, linked."""
    imagenet = root / "zeroshot-imagenet"
    (imagenet / "images").mkdir(parents=True)
    with open(eval_dir / "zeroshot-imagenet" / "images.csv", newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)[::8][:60]
    assert fields is not None
    with open(imagenet / "images.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        (imagenet / "images" / row["file"]).symlink_to(eval_dir / "zeroshot-imagenet" / "images" / row["file"])
    lfw = root / "faces-lfw"
    lfw.mkdir()
    (lfw / "images").symlink_to(eval_dir / "faces-lfw" / "images")
    with open(eval_dir / "faces-lfw" / "pairs.csv", newline="") as f:
        reader = csv.DictReader(f)
        fields, pairs = reader.fieldnames, list(reader)
    assert fields is not None
    chosen = [r for r in pairs if r["same"] == "1"][:40] + [r for r in pairs if r["same"] == "0"][:40]
    with open(lfw / "pairs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(chosen)
    (root / "ocr-icdar2015").mkdir()
    (root / "ocr-icdar2015" / "det_images").symlink_to(eval_dir / "ocr-icdar2015" / "det_images")
    return root


def test_bench_records_its_tables_and_reports(
    eval_dir: Path, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mini = _mini_eval(eval_dir, tmp_path / "eval")
    tables, plot = tmp_path / "tables", tmp_path / "plot.png"
    base = [
        "--data-dir",
        str(tmp_path / "data"),
        "--model-cache",
        str(model_dir),
        "bench",
        "--tables",
        str(tables),
    ]
    # Without tables and without --record, the error says what to do.
    assert main(base) == 2
    assert "--record" in capsys.readouterr().err
    tasks = "labels,faces-lfw,text-gate"
    args = [*base, "--record", "--eval-dir", str(mini), "--tasks", tasks, "--plot", str(plot)]
    assert main(args) == 0
    out = capsys.readouterr().out
    for heading in ("### labels", "### faces-verify (faces-lfw)", "### text: gate"):
        assert heading in out
    assert "ladder @0.95" in out and "always strongest" in out and plot.stat().st_size > 10_000
    labels = load_task(tables / "labels.npz")
    assert len(labels.table) == 60 and labels.table.rungs[-1] == "ensemble"
    faces = load_task(tables / "faces-lfw.npz")
    assert len(faces.table) == 80 and set(faces.singles) >= {"sface alone", "dlib-resnet alone"}
    gate = load_task(tables / "text-gate.npz")
    assert 60 <= len(gate.table) <= 70  # the photos that are not scans
    # The recordings are cached where `frugalsense calibrate` keeps its own; the report alone needs no models.
    assert len(list((tmp_path / "data" / "calibration").glob("*.npz"))) == 3
    assert main(base) == 0
    assert "### labels" in capsys.readouterr().out


def test_bench_refuses_an_unknown_task(model_dir: Path, tmp_path: Path, eval_dir: Path) -> None:
    args = ["--data-dir", str(tmp_path / "data"), "--model-cache", str(model_dir), "bench", "--tables"]
    args += [str(tmp_path / "t"), "--record", "--eval-dir", str(eval_dir), "--tasks", "labels,speech"]
    assert main(args) == 2
    assert not (tmp_path / "t").exists()

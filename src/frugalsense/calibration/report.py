"""Cost-quality reports: single rungs, always-strongest and calibrated ladders, on items kept out of calibration.

A `TaskData` holds one task's recorded `CalibrationTable` plus the quality and CPU of each single model run on
its own. `cost_quality` splits the items once, calibrates the ladder on one part at each quality target and
measures everything on the other part; `markdown` prints the rows, `plot` draws quality against CPU.

    >>> import numpy as np
    >>> from frugalsense.calibration.ltt import CalibrationTable
    >>> rng = np.random.default_rng(0)
    >>> conf = np.column_stack([rng.uniform(size=400), np.ones(400)])
    >>> right = (rng.uniform(size=400) < conf[:, 0]).astype(float)
    >>> table = CalibrationTable(["cheap", "strong"], conf, np.column_stack([right, np.ones(400)]),
    ...                          np.tile([0.01, 0.1], (400, 1)))
    >>> data = TaskData("demo", table, {"cheap": (right, table.cpu[:, 0]),
    ...                                 "strong": (np.ones(400), table.cpu[:, 1])}, strongest="strong")
    >>> rows = cost_quality(data, targets=(0.95,), price_per_cpu_hour=0.05)
    >>> [r.config for r in rows]
    ['cheap', 'strong', 'always strongest', 'ladder @0.95']
    >>> rows[-1].cpu_s < rows[1].cpu_s
    True
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalsense.calibration.ltt import CalibrationTable, calibrate, simulate

__all__ = [
    "CLOUD_PRICES",
    "CostRow",
    "TaskData",
    "cloud_ratio",
    "cost_quality",
    "floor_thresholds",
    "load_task",
    "markdown",
    "plot",
    "report",
    "save_task",
    "split_rows",
    "usd_per_1000",
]

#: list prices per 1,000 images for one feature (first pricing tier), as published by the providers
CLOUD_PRICES: dict[str, float] = {"AWS Rekognition": 1.00, "Google Cloud Vision": 1.50}
TARGETS = (0.95, 0.98, 0.99, 1.0)
Floats = npt.NDArray[np.float64]


def usd_per_1000(cpu_s: float, price_per_cpu_hour: float) -> float:
    """Dollars for 1,000 items at `cpu_s` CPU-seconds each.

    >>> round(usd_per_1000(0.036, 0.05), 6)
    0.0005
    """
    return cpu_s * 1000.0 / 3600.0 * price_per_cpu_hour


def cloud_ratio(cpu_s: float, features: int, price_per_cpu_hour: float, cloud_per_1000: float) -> float:
    """How many times cheaper than a cloud API billing `cloud_per_1000` per feature for `features` features.

    >>> round(cloud_ratio(0.072, 4, 0.05, 1.0))
    4000
    """
    ours = usd_per_1000(cpu_s, price_per_cpu_hour)
    return float("inf") if ours <= 0 else features * cloud_per_1000 / ours


@dataclass(frozen=True)
class TaskData:
    """One task's recorded table and, per single model run alone, (quality, CPU-seconds) per item."""

    task: str
    table: CalibrationTable
    singles: Mapping[str, tuple[Floats, Floats]]
    strongest: str
    quality_name: str = "quality"
    #: when calibration certifies nothing, the ladder is shipped as this single model alone (rungs dropped)
    fallback_single: str | None = None


def save_task(data: TaskData, path: Path) -> Path:
    """Write a task's table and single-model columns to one ``.npz`` file (what `frugalsense bench` reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {
        "task": np.array(data.task),
        "rungs": np.array(data.table.rungs),
        "confidence": data.table.confidence,
        "quality": data.table.quality,
        "cpu": data.table.cpu,
        "singles": np.array(list(data.singles)),
        "strongest": np.array(data.strongest),
        "quality_name": np.array(data.quality_name),
        "fallback_single": np.array(data.fallback_single or ""),
    }
    for i, (q, c) in enumerate(data.singles.values()):
        arrays[f"single_q_{i}"] = np.asarray(q, np.float64)
        arrays[f"single_c_{i}"] = np.asarray(c, np.float64)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def load_task(path: Path) -> TaskData:
    """Read what `save_task` wrote."""
    with np.load(path) as a:
        table = CalibrationTable([str(r) for r in a["rungs"]], a["confidence"], a["quality"], a["cpu"])
        singles = {str(n): (a[f"single_q_{i}"], a[f"single_c_{i}"]) for i, n in enumerate(a["singles"])}
        fallback = str(a["fallback_single"]) if "fallback_single" in a.files else ""
        return TaskData(
            str(a["task"]), table, singles, str(a["strongest"]), str(a["quality_name"]), fallback or None
        )


def report(
    table_dir: Path,
    *,
    price_per_cpu_hour: float,
    plot_path: Path | None = None,
    risk: float = 0.1,
    min_threshold: float = 1e-6,
) -> str:
    """Markdown cost-quality tables for every task saved in `table_dir` (and a plot when `plot_path` is set)."""
    files = sorted(table_dir.glob("*.npz"))
    if not files:
        from frugalsense.errors import InvalidRequestError

        raise InvalidRequestError(
            f"no recorded tables in {table_dir}: add --record (labels, face verification and the text gate "
            "from ../shared/eval, a few minutes), or run python bench/cost_quality.py after the bench/_record_* "
            "scripts for every task"
        )
    parts = []
    rows_by_task: dict[str, list[CostRow]] = {}
    names: dict[str, str] = {}
    for path in files:
        data = load_task(path)
        rows = cost_quality(data, price_per_cpu_hour=price_per_cpu_hour, risk=risk, min_threshold=min_threshold)
        rows_by_task[data.task] = rows
        names[data.task] = data.quality_name
        parts.append(
            f"### {data.task}\n\n" + markdown(rows, quality_name=data.quality_name, rungs=data.table.rungs)
        )
    cloud = ", ".join(f"{k} ${v:.2f}" for k, v in CLOUD_PRICES.items())
    parts.append(f"Cloud list prices per 1,000 images per feature: {cloud}; here ${price_per_cpu_hour}/CPU-hour.")
    if plot_path is not None:
        plot(rows_by_task, plot_path, quality_names=names)
        parts.append(f"plot: {plot_path}")
    return "\n\n".join(parts)


@dataclass(frozen=True)
class CostRow:
    """One configuration measured on the held-out items."""

    task: str
    config: str
    quality: float
    cpu_s: float  # mean CPU-seconds per item
    usd_per_1000: float
    items: int
    share_per_rung: list[float] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    fallback: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "config": self.config,
            "quality": round(self.quality, 4),
            "cpu_s": round(self.cpu_s, 4),
            "usd_per_1000": round(self.usd_per_1000, 6),
            "items": self.items,
            "share_per_rung": [round(s, 3) for s in self.share_per_rung],
            "thresholds": [round(t, 4) for t in self.thresholds],
            "fallback": self.fallback,
        }


def floor_thresholds(thresholds: Sequence[float], minimum: float) -> list[float]:
    """Every threshold raised to at least `minimum`.

    >>> floor_thresholds([0.0, 0.7], 1e-6)
    [1e-06, 0.7]
    """
    return [max(float(minimum), float(t)) for t in thresholds]


def split_rows(n: int, fraction: float, seed: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Calibration rows and held-out rows: a seeded random `fraction` and the rest."""
    order = np.random.default_rng(seed).permutation(n)
    cut = round(fraction * n)
    return np.sort(order[:cut]), np.sort(order[cut:])


def cost_quality(
    data: TaskData,
    *,
    targets: Sequence[float] = TARGETS,
    risk: float = 0.1,
    price_per_cpu_hour: float,
    fraction: float = 0.5,
    seed: int = 0,
    min_threshold: float = 0.0,
) -> list[CostRow]:
    """Single models, always-strongest, and the ladder calibrated at each target, all on the held-out items.

    `min_threshold` raises every calibrated threshold to at least that value, as the shipped ladders do so that
    a rung reporting confidence 0 (it did not run, or found nothing) never answers; where quality does not fall
    as the ladder climbs, this only adds CPU and keeps the calibrated guarantee.
    """
    cal_rows, test_rows = split_rows(len(data.table), fraction, seed)
    test = data.table.subset(test_rows)
    rows: list[CostRow] = []
    for name, (item_q, item_c) in data.singles.items():
        q, c = float(np.mean(item_q[test_rows])), float(np.mean(item_c[test_rows]))
        rows.append(CostRow(data.task, name, q, c, usd_per_1000(c, price_per_cpu_hour), len(test_rows)))
    strong_q, strong_c = data.singles[data.strongest]
    q_mean, c_mean = float(np.mean(strong_q[test_rows])), float(np.mean(strong_c[test_rows]))
    rows.append(
        CostRow(data.task, "always strongest", q_mean, c_mean, usd_per_1000(c_mean, price_per_cpu_hour), len(test))
    )
    calibration_part = data.table.subset(cal_rows)
    for target in targets:
        result = calibrate(calibration_part, target=target, risk=risk, seed=seed)
        thresholds = floor_thresholds(result.thresholds, min_threshold)
        run = simulate(test, thresholds)
        quality, cpu, shares = run.quality, run.cpu, run.share_per_rung
        if result.fallback and data.fallback_single is not None:
            fq, fc = data.singles[data.fallback_single]
            quality, cpu = float(np.mean(fq[test_rows])), float(np.mean(fc[test_rows]))
        rows.append(
            CostRow(
                data.task,
                f"ladder @{target:g}",
                quality,
                cpu,
                usd_per_1000(cpu, price_per_cpu_hour),
                len(test),
                share_per_rung=shares,
                thresholds=thresholds,
                fallback=result.fallback,
            )
        )
    return rows


def markdown(rows: Sequence[CostRow], *, quality_name: str = "quality", rungs: Sequence[str] = ()) -> str:
    """A markdown table of `rows` (the share of items answered per rung when `rungs` names them)."""
    head = f"| config | {quality_name} | CPU-s / item | $ / 1,000 | items | answered at |"
    lines = [head, "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        shares = ""
        if r.share_per_rung and rungs:
            shares = ", ".join(f"{n} {s:.0%}" for n, s in zip(rungs, r.share_per_rung, strict=True) if s > 0)
        if r.fallback:
            shares = (shares + " (no thresholds certified: always strongest)").strip()
        items = r.items or "-"
        lines.append(
            f"| {r.config} | {r.quality:.4f} | {r.cpu_s:.4f} | {r.usd_per_1000:.5f} | {items} | {shares} |"
        )
    return "\n".join(lines)


def _short(config: str) -> str:
    """A configuration's name, short enough to label a point."""
    return config.removeprefix("efficientnet-").split(" (")[0].split(":")[0]


def plot(
    rows_by_task: Mapping[str, Sequence[CostRow]],
    path: Path,
    *,
    quality_names: Mapping[str, str] | None = None,
    dpi: int = 80,
) -> Path:
    """Quality against CPU-seconds per item, one panel per task, written as a small PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError as exc:  # plots are optional: the tables are the result
        from frugalsense.errors import ModelUnavailableError

        raise ModelUnavailableError("plots need matplotlib: pip install matplotlib") from exc
    tasks = list(rows_by_task)
    columns = min(3, len(tasks))
    lines = -(-len(tasks) // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(5.2 * columns, 3.8 * lines), squeeze=False)
    for ax in axes.flat[len(tasks) :]:
        ax.axis("off")
    for ax, task in zip(axes.flat, tasks, strict=False):
        rows = rows_by_task[task]
        singles = [r for r in rows if not r.config.startswith(("ladder", "always"))]
        always = [r for r in rows if r.config.startswith("always")]
        ladders = [r for r in rows if r.config.startswith("ladder") and not r.fallback]
        ax.scatter([r.cpu_s for r in singles], [r.quality for r in singles], marker="s", color="tab:gray")
        for r in singles:
            ax.annotate(
                _short(r.config), (r.cpu_s, r.quality), fontsize=7, xytext=(3, -8), textcoords="offset points"
            )
        ax.scatter([r.cpu_s for r in always], [r.quality for r in always], marker="*", s=90, color="tab:red")
        for r in always:
            ax.annotate(
                "always strongest", (r.cpu_s, r.quality), fontsize=7, xytext=(3, 4), textcoords="offset points"
            )
        ax.plot([r.cpu_s for r in ladders], [r.quality for r in ladders], "o-", color="tab:blue", label="ladder")
        for r in ladders:
            target = re.search(r"(?:@|target )(\d(?:\.\d+)?)", r.config)
            label = f"target {target.group(1)}" if target else _short(r.config)
            ax.annotate(label, (r.cpu_s, r.quality), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor log labels overlap at this size
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("CPU-seconds per item (log)", fontsize=8)
        ax.set_ylabel((quality_names or {}).get(task, "quality"), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path

"""A batch job's report: files by outcome, CPU-seconds and dollars per feature, and the same work at two clouds'
list prices (`frugalsense.console.prices`, the table the console's usage page uses).

Built from the job's journal (`frugalsense.store.jobs`), so a job stopped and continued reports every file once,
whichever attempt did it. A feature's units are the pictures it analysed (photos, PDF pages, sampled frames),
what a cloud bills one by one; "shared" is the decoding, storing and glue every file needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from frugalsense.console.prices import PRICES_AS_OF, cloud_usd

__all__ = ["format_report", "job_report"]

_CLOUDS = ("aws_rekognition", "google_vision")


def job_report(
    totals: Mapping[str, Any],
    *,
    price_per_cpu_hour: float,
    wall_s: float,
    workers: int,
    attempts: int = 1,
) -> dict[str, Any]:
    """The report of a job whose journal sums to ``totals`` (`JobTotals.to_dict()`); ``wall_s`` and
    ``workers`` are the last attempt's."""
    per_second = price_per_cpu_hour / 3600.0
    features: dict[str, dict[str, Any]] = {}
    cloud = dict.fromkeys(_CLOUDS, 0.0)
    for feature, (cpu_s, units) in sorted(totals.get("features", {}).items()):
        prices = cloud_usd(feature, int(units))
        features[feature] = {
            "cpu_seconds": round(float(cpu_s), 3),
            "units": int(units),
            "usd": round(float(cpu_s) * per_second, 6),
            **{f"{name}_usd": prices.get(name) for name in _CLOUDS},
        }
        for name in _CLOUDS:
            cloud[name] += prices.get(name) or 0.0
    counts = dict(totals.get("counts", {}))
    done = sum(n for status, n in counts.items() if status != "failed")
    return {
        "files": int(totals.get("files", 0)),
        "counts": counts,
        "pictures": int(totals.get("pictures", 0)),
        "cpu_seconds": round(float(totals.get("cpu_s", 0.0)), 3),
        "usd": round(float(totals.get("usd", 0.0)), 6),
        "price_per_cpu_hour": price_per_cpu_hour,
        "features": features,
        "cloud_usd": {name: round(value, 6) for name, value in cloud.items()},
        "cloud_prices_as_of": PRICES_AS_OF,
        "wall_seconds": round(wall_s, 3),
        "workers": workers,
        "attempts": attempts,
        "files_per_second": round(done / wall_s, 3) if wall_s > 0 else None,
    }


def format_report(report: Mapping[str, Any]) -> str:
    """The report as the CLI prints it: counts, then a table per feature."""
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report["counts"].items()) if n) or "no files"
    lines = [
        f"{report['files']} files: {counts}; {report['pictures']} pictures",
        f"{report['cpu_seconds']:.1f} CPU-s = ${report['usd']:.4f} at ${report['price_per_cpu_hour']}/CPU-hour;"
        f" {report['wall_seconds']:.1f} s on {report['workers']} workers (attempt {report['attempts']})",
        f"{'feature':<12} {'CPU-s':>9} {'units':>8} {'own $':>10} {'AWS $':>10} {'Google $':>10}",
    ]
    for feature, row in report["features"].items():
        aws, google = row["aws_rekognition_usd"], row["google_vision_usd"]
        lines.append(
            f"{feature:<12} {row['cpu_seconds']:>9.1f} {row['units']:>8} {row['usd']:>10.4f}"
            f" {'-' if aws is None else f'{aws:.2f}':>10} {'-' if google is None else f'{google:.2f}':>10}"
        )
    cloud = report["cloud_usd"]
    lines.append(
        f"{'total':<12} {report['cpu_seconds']:>9.1f} {'':>8} {report['usd']:>10.4f}"
        f" {cloud['aws_rekognition']:>10.2f} {cloud['google_vision']:>10.2f}"
        f"   (cloud list prices as of {report['cloud_prices_as_of']})"
    )
    return "\n".join(lines)

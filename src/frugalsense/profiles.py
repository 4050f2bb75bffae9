"""Calibrated profiles: versioned JSON files holding every calibrated number, and how it was chosen.

One format for all: a ladder's rungs and the thresholds between them, or no rungs at all (``faces-identify``: the
gallery's thresholds, ``int8-gate``: which models run int8), with task-specific numbers in ``params`` and their
provenance in ``calibration``. The shipped defaults live in `frugalsense/data/profiles/<task>.json`;
`Settings.profile_dir` may point at a folder of the user's own (written by `frugalsense calibrate` or the bench
scripts), which wins over the shipped ones.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from frugalsense.errors import ConfigurationError

__all__ = ["PROFILE_VERSION", "Profile", "load_profile", "profile_location"]

PROFILE_VERSION = 1


@dataclass(frozen=True)
class Profile:
    task: str
    rungs: list[str]
    thresholds: list[float]
    target: float | None = None  # quality target relative to the strongest rung, e.g. 0.99
    risk: float | None = None  # allowed probability that the target is missed
    params: dict[str, Any] = field(default_factory=dict)  # task-specific numbers (bands, fusion weights, ...)
    calibration: dict[str, Any] = field(default_factory=dict)  # provenance: data, method, size, date, command
    version: int = PROFILE_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.params, dict) or not isinstance(self.calibration, dict):
            raise ConfigurationError(f"profile for {self.task!r}: params and calibration must be JSON objects")
        if not isinstance(self.rungs, list) or not isinstance(self.thresholds, list):
            raise ConfigurationError(f"profile for {self.task!r}: rungs and thresholds must be JSON lists")
        if len(self.thresholds) != max(0, len(self.rungs) - 1):
            raise ConfigurationError(
                f"profile for {self.task!r}: {len(self.rungs)} rungs need {len(self.rungs) - 1} thresholds"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        version = data.get("version", PROFILE_VERSION)
        if version != PROFILE_VERSION:
            raise ConfigurationError(f"profile version {version} is not supported (expected {PROFILE_VERSION})")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigurationError(f"profile is malformed: {exc}") from exc


def load_profile(task: str, profile_dir: Path | None = None) -> Profile:
    """The user's profile for `task` if `profile_dir` holds one, else the shipped default.

    Every calibrated number frugalsense uses is read here, whatever its task: ladders (``labels``, ``text``,
    ``face-detect``, ``faces-verify``), thresholds without rungs (``faces-identify``), decisions (``int8-gate``).

        >>> load_profile("faces-identify").params["identify"]
        0.364
    """
    if profile_dir is not None:
        path = profile_dir / f"{task}.json"
        if path.is_file():
            return _read(path.read_text(encoding="utf-8"), str(path))
    shipped = resources.files("frugalsense.data").joinpath("profiles", f"{task}.json")
    if not shipped.is_file():
        raise ConfigurationError(f"no profile for task {task!r}; run `frugalsense calibrate {task}`")
    return _read(shipped.read_text(encoding="utf-8"), profile_location(task, None))


def profile_location(task: str, profile_dir: Path | None = None) -> str:
    """Where `load_profile` reads `task`'s profile from, for messages about its contents."""
    if profile_dir is not None and (profile_dir / f"{task}.json").is_file():
        return str(profile_dir / f"{task}.json")
    return f"shipped {task}.json"


def _read(text: str, where: str) -> Profile:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{where} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"{where} must hold a JSON object")
    try:
        return Profile.from_dict(data)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from exc

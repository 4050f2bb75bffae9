"""Shared fixtures: real evaluation data from ``../shared/eval`` (or ``FRUGALSENSE_EVAL_DIR``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from frugalsense.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
#: the store backends (SQLite, a real PostgreSQL) every store test runs against
pytest_plugins = ["_backends", "_ray"]


def _eval_dir() -> Path:
    configured = os.environ.get("FRUGALSENSE_EVAL_DIR")
    return Path(configured) if configured else ROOT.parent / "shared" / "eval"


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    path = _eval_dir()
    if not path.is_dir():
        pytest.fail(f"evaluation data not found at {path}; set FRUGALSENSE_EVAL_DIR")
    return path


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """Converted models: the same cache the set-up script fills, so tests never convert twice."""
    return Settings().model_dir


@pytest.fixture()
def settings(tmp_path: Path, model_dir: Path) -> Settings:
    """Fresh data folder per test, shared model cache."""
    return Settings(data_dir=tmp_path / "data", model_cache=model_dir)

"""Every calibrated number is in one profile format, read by one loader; the user's profile folder wins."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from frugalsense.errors import ConfigurationError
from frugalsense.models.text import int8_gate_choice
from frugalsense.profiles import load_profile


def _shipped_tasks() -> list[str]:
    folder = resources.files("frugalsense.data").joinpath("profiles")
    return sorted(entry.name.removesuffix(".json") for entry in folder.iterdir() if entry.name.endswith(".json"))


@pytest.mark.parametrize("task", _shipped_tasks())
def test_every_shipped_profile_loads_in_the_one_format(task: str) -> None:
    profile = load_profile(task)
    assert profile.task == task and profile.version == 1
    assert len(profile.thresholds) == max(0, len(profile.rungs) - 1)
    assert profile.calibration.get("command") or profile.calibration.get("created")  # it says how it was made


def test_the_int8_gate_of_the_users_profile_folder_wins(tmp_path: Path) -> None:
    shipped = load_profile("int8-gate")
    chosen = int8_gate_choice("minilm-l6-v2")
    other = "int8" if chosen == "fp32" else "fp32"
    shipped.params["models"]["minilm-l6-v2"]["use"] = other
    shipped.save(tmp_path / "int8-gate.json")
    assert int8_gate_choice("minilm-l6-v2", tmp_path) == other
    assert int8_gate_choice("minilm-l6-v2", tmp_path / "elsewhere") == chosen


def test_a_broken_int8_gate_names_its_file(tmp_path: Path) -> None:
    (tmp_path / "int8-gate.json").write_text('{"rule": "the format before profiles", "models": {}}')
    with pytest.raises(ConfigurationError, match=r"int8-gate\.json: profile is malformed"):
        int8_gate_choice("minilm-l6-v2", tmp_path)

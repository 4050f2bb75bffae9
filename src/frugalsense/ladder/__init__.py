"""Run-time ladders: rungs, the climb, calibrated profiles, and one ladder per task (labels, text).

The face ladders live with the face pipeline (`frugalsense.faces.detect`, `frugalsense.faces.fusion`); choosing
thresholds is offline work in `frugalsense.calibration`, which nothing here imports.
"""

from frugalsense.ladder.core import Ladder, LadderResult, Outcome, Rung
from frugalsense.ladder.profiles import Profile, load_profile

__all__ = ["Ladder", "LadderResult", "Outcome", "Profile", "Rung", "load_profile"]

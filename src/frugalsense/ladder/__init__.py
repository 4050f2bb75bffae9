"""Run-time ladders: rungs, the climb, and one ladder per task (labels, text); their thresholds come from
`frugalsense.profiles`.

The face ladders live with the face pipeline (`frugalsense.faces.detect`, `frugalsense.faces.fusion`); choosing
thresholds is offline work in `frugalsense.calibration`, which nothing here imports.
"""

from frugalsense.ladder.core import Ladder, LadderResult, Outcome, Rung

__all__ = ["Ladder", "LadderResult", "Outcome", "Rung"]

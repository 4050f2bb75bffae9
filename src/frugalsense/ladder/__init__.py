"""Rungs, ladders, calibration, profiles, the cost ledger and the result cache."""

from frugalsense.ladder.ledger import CostReceipt, Meter, StageCost

__all__ = ["CostReceipt", "Meter", "StageCost"]

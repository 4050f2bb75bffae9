"""The cost ledger: stages add up, clocks measure CPU rather than waiting."""

from __future__ import annotations

import time

import pytest

from frugalsense.ledger import CostReceipt, Meter, StageCost


def test_receipt_adds_up_its_stages() -> None:
    receipt = CostReceipt(price_per_cpu_hour=0.10)
    receipt.stages += [StageCost("decode", None, 0.5, 10), StageCost("labels", "m", 1.3, 20)]
    assert receipt.cpu_seconds == pytest.approx(1.8)
    assert receipt.cost_usd == pytest.approx(1.8 / 3600 * 0.10)
    assert receipt.to_dict()["stages"][1]["model"] == "m"
    assert receipt.models == ["m"]


def test_sleeping_costs_no_cpu_but_work_does() -> None:
    meter = Meter(price_per_cpu_hour=0.05)
    with meter.stage("wait"):
        time.sleep(0.2)
    with meter.stage("work"):
        total = 0
        for i in range(2_000_000):
            total += i
    wait, work = meter.receipt.stages
    assert wait.wall_ms >= 190 and wait.cpu_s < 0.02
    assert work.cpu_s > 0.02


def test_a_stage_that_raises_is_still_billed() -> None:
    meter = Meter(price_per_cpu_hour=0.05)
    with pytest.raises(ValueError), meter.stage("decode"):
        raise ValueError("broken")
    assert [s.stage for s in meter.receipt.stages] == ["decode"]

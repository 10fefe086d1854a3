"""The run-time/memory model behind the app's estimate and ZeroGPU's duration request."""

from __future__ import annotations

import pytest

from dvlt.estimate import Estimator, network_flops


def test_flop_count_matches_the_paper():
    """The paper reports 75.9 TFLOPs for 24 views (504x504, K=16); our analytic count agrees."""
    assert network_flops(24, 504, 504, 16) / 1e12 == pytest.approx(75.9, rel=0.005)


def test_flops_grow_with_steps_views_and_pixels():
    base = network_flops(4, 378, 504, 12)
    assert network_flops(4, 378, 504, 16) > base > network_flops(4, 378, 504, 8)
    assert network_flops(8, 378, 504, 12) > 2 * base  # global attention is quadratic in views
    assert network_flops(4, 182, 252, 12) < base / 3


def test_estimator_learns_from_observed_runs():
    estimator = Estimator()
    before = estimator.estimate(4, 378, 504, 12, "cpu", "bf16").seconds
    for _ in range(6):
        estimator.observe(4, 378, 504, 12, "cpu", "bf16", model_seconds=2 * before)
    after = estimator.estimate(4, 378, 504, 12, "cpu", "bf16")
    assert after.seconds > 1.8 * before
    text = after.describe(4, 378, 504, 12, "CPU, bf16")
    assert "4 views at 504×378, K=12" in text and "GB" in text

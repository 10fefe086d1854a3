"""The run-time/memory model behind the app's estimate and ZeroGPU's duration request."""

from __future__ import annotations

import pytest
from conftest import BOX

from dvlt.estimate import Estimator, flop_terms, network_flops
from dvlt.studio import Sampling, compare_plan, decode_uploads, estimate_for, frame_budget, sampling_note


def test_flop_count_matches_the_paper():
    """The paper reports 75.9 TFLOPs for 24 views (504x504, K=16); our analytic count agrees."""
    assert network_flops(24, 504, 504, 16) / 1e12 == pytest.approx(75.9, rel=0.005)


def test_flops_grow_with_steps_views_and_pixels():
    base = network_flops(4, 378, 504, 12)
    assert network_flops(4, 378, 504, 16) > base > network_flops(4, 378, 504, 8)
    assert network_flops(8, 378, 504, 12) > 2 * base  # global attention is quadratic in views
    assert network_flops(4, 182, 252, 12) < base / 3


def test_estimator_learns_from_observed_runs():
    estimator = fixed_estimator(1.0)
    before = estimator.estimate(4, 378, 504, 12, "cpu", "fp32").seconds
    for _ in range(6):
        estimator.observe(4, 378, 504, 12, "cpu", "fp32", model_seconds=2 * before)
    after = estimator.estimate(4, 378, 504, 12, "cpu", "fp32")
    assert after.seconds > 1.8 * before
    text = after.describe(4, 378, 504, 12, "CPU, fp32")
    assert "4 views at 504×378, K=12" in text and "GB" in text


def fixed_estimator(seconds_per_tflop: float) -> Estimator:
    """An estimator whose kernel rates are set (no probe): 1 TFLOP of any kind takes `seconds_per_tflop`."""
    rate = 1e12 / seconds_per_tflop
    return Estimator(rates={("cpu", "fp32"): {"dense": rate, "attention": rate, "conv": rate}}, scale={})


def test_flop_terms_add_up_and_attention_grows_quadratically():
    terms = flop_terms(8, 378, 504, 12)
    assert sum(terms.values()) == pytest.approx(network_flops(8, 378, 504, 12))
    double = flop_terms(16, 378, 504, 12)
    assert double["attention"] > 3 * terms["attention"] and double["conv"] == pytest.approx(2 * terms["conv"])


def test_calibration_follows_measured_runs_whatever_the_start():
    """Observed runs of one size re-calibrate the factor: a run of another size is then predicted from them."""
    truth = fixed_estimator(3.0)  # a machine 'three times slower' than the estimator below thinks
    estimator = fixed_estimator(1.0)
    for views in (2, 4, 8):
        measured = truth.model_seconds(views, 378, 504, 12, "cpu", "fp32")
        estimator.observe(views, 378, 504, 12, "cpu", "fp32", measured)
    predicted = estimator.model_seconds(16, 182, 252, 8, "cpu", "fp32")
    assert predicted == pytest.approx(truth.model_seconds(16, 182, 252, 8, "cpu", "fp32"), rel=1e-6)


def test_probe_learns_factor_and_fixed_cost_until_real_runs_exist():
    """A machine whose passes take 2.5 x kernel time + 0.2 s: the two probe passes recover both, so a large run
    (8 views at 504 px, K=16) is predicted exactly; the factor learnt from the small pass alone would overshoot."""
    estimator = fixed_estimator(1.0)

    def machine(views: int, height: int, width: int, steps: int) -> float:
        return 2.5 * estimator.kernel_seconds(views, height, width, steps, "cpu", "fp32") + 0.2

    estimator.probe("cpu", "fp32", run_model=machine)
    assert estimator.model_seconds(8, 378, 504, 16, "cpu", "fp32") == pytest.approx(machine(8, 378, 504, 16))
    assert estimator.model_seconds(1, 42, 56, 8, "cpu", "fp32") == pytest.approx(machine(1, 42, 56, 8))
    estimator.observe(8, 378, 504, 16, "cpu", "fp32", 2 * machine(8, 378, 504, 16))
    estimator.probe("cpu", "fp32", run_model=lambda *shape: 100 * machine(*shape))  # real runs are not undone
    assert estimator.model_seconds(8, 378, 504, 16, "cpu", "fp32") == pytest.approx(2 * machine(8, 378, 504, 16))


def test_probe_waits_out_a_runtime_that_warms_up_per_shape():
    """A runtime 30 % slow on the first pass of a shape and 15 % on the second (OpenVINO compiling as it goes): the
    probe's estimate is that of the steady third pass, not of a warm-up."""
    estimator = fixed_estimator(1.0)
    seen: dict[tuple, int] = {}

    def steady(views: int, height: int, width: int, steps: int) -> float:
        return 2.5 * estimator.kernel_seconds(views, height, width, steps, "cpu", "fp32") + 0.2

    def warming(*shape: int) -> float:
        seen[shape] = seen.get(shape, 0) + 1
        return steady(*shape) * {1: 1.3, 2: 1.15}.get(seen[shape], 1.0)

    estimator.probe("cpu", "fp32", run_model=warming)
    assert estimator.model_seconds(8, 378, 504, 16, "cpu", "fp32") == pytest.approx(steady(8, 378, 504, 16))


def test_views_within_a_budget():
    estimator = fixed_estimator(1.0)
    fits = estimator.views_within(60, 378, 504, 12, "cpu", "fp32", 64)
    assert estimator.estimate(fits, 378, 504, 12, "cpu", "fp32").seconds <= 60
    assert fits == 64 or estimator.estimate(fits + 1, 378, 504, 12, "cpu", "fp32").seconds > 60
    assert estimator.views_within(1e9, 378, 504, 12, "cpu", "fp32", 16) == 16  # everything fits: the cap itself
    assert estimator.views_within(1e-9, 378, 504, 12, "cpu", "fp32", 16) == 1  # nothing fits: one view


def test_slow_runs_are_announced_with_a_cheaper_setting():
    estimator = fixed_estimator(6.0)
    sizes = [(480, 640)] * 16
    estimate, text = estimate_for(estimator, sizes, 504, 12, "cpu", "fp32", where="CPU (test) · fp32 · 2 threads")
    assert estimate.seconds > 120 and "Over 2 minutes" in text and "CPU (test) · fp32 · 2 threads" in text
    fewer = int(text.split("Faster: ")[1].split(" view")[0])
    assert 1 <= fewer < 16 and estimator.estimate(fewer, 378, 504, 12, "cpu", "fp32").seconds <= 60
    assert " px (≈" in text
    _, quick = estimate_for(estimator, sizes[:2], 252, 8, "cpu", "fp32")
    assert "Over" not in quick


def test_video_frame_budget_and_the_note_that_explains_it():
    """A 15 s clip at 2 fps gives ~30 frames; on a slow CPU fewer are kept and the note says why."""
    estimator = fixed_estimator(6.0)
    budget = frame_budget(estimator, [str(BOX)], 504, 12, "cpu", "fp32", 16)
    assert 2 <= budget < 16
    frames = decode_uploads([str(BOX)], Sampling("fps", 2.0, 8), 16, budget=budget)
    assert len(frames) == budget
    note = sampling_note([str(BOX)], Sampling("fps", 2.0, 8), len(frames), budget, 16)
    assert "about 30 frames at 2 fps" in note and f"{budget} evenly spaced are used" in note and "CPU" in note
    assert frame_budget(estimator, [str(BOX)], 504, 12, "cuda", "bf16", 64) == 64  # GPUs keep the view limit
    assert sampling_note([str(BOX)], Sampling("count", 2.0, 8), 8, budget, 16) == ""


def test_compare_plan_reuses_the_matching_result():
    estimator = fixed_estimator(1.0)
    seconds, line = compare_plan(estimator, [(480, 640)] * 2, 252, (8, 16), 8, "cpu", "fp32")
    assert seconds[0] == 0 and seconds[1] > 0 and "K=8: your current result" in line
    seconds, line = compare_plan(estimator, [(480, 640)] * 2, 252, (8, 16), None, "cpu", "fp32")
    assert all(s > 0 for s in seconds) and "your current result" not in line

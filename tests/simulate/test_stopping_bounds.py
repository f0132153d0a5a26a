"""The stopping rules' lower bounds on a box of outputs (simulate/stopping.py, ``StopRule.lower_bound``), which the
flow engine's output screen reads (simulate/flow/output_screen.py; docs/flow.md, "Cost"): each is at most the
rule's value at every output inside the box, and it is that value at the box's best corner (the end of each
interval with the larger margin, or the squared loss's minimizer clipped to the interval), so it is no looser
than it has to be."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.stopping import PositiveClassLoss, TargetRisk, TrainAccuracy
from fls.theory.losses import LOSSES

#: loss, rule, seed, n, weighted, eps, level, the box's scale
CASES = (
    st.sampled_from(LOSSES), st.sampled_from(["risk", "positive", "accuracy"]), st.integers(0, 10_000),
    st.integers(1, 12), st.booleans(), st.floats(1e-3, 2.0), st.floats(0.05, 1.0), st.floats(1e-3, 10.0),
)  # fmt: skip


def _problem(loss: str, rule_name: str, seed: int, n: int, weighted: bool, eps: float, level: float):
    """Labels (binary, with at least one positive; real for the squared loss with the risk rule), the
    arithmetic with normalized sample weights (mean 1, some of them 0) or none, and the rule."""
    rng = np.random.default_rng(seed)
    if loss == "squared" and rule_name == "risk":
        y = rng.normal(0.0, 2.0, n)
    else:
        y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
        y[0] = 1.0
    weights = None
    if weighted:
        raw = rng.uniform(0.0, 3.0, n) * (rng.random(n) < 0.8)
        raw[0] = 1.0
        weights = raw * n / raw.sum()
    rule = {"risk": TargetRisk(eps), "positive": PositiveClassLoss(eps), "accuracy": TrainAccuracy(level)}[rule_name]
    return y, float_arithmetic(loss, weights), rule


def _box(seed: int, n: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    centre = rng.normal(0.0, scale, n)
    half = rng.uniform(0.0, scale, n) * (rng.random(n) < 0.8)  # some intervals a single point
    return centre - half, centre + half


@settings(max_examples=300, deadline=None)
@given(*CASES)
def test_the_bound_is_at_most_the_value_everywhere_in_the_box(loss, rule_name, seed, n, weighted, eps, level, scale):
    """At 64 random outputs inside a random box (and its corners), every loss, labels, sample weights: the
    rule's lower bound is <= its value, up to the value's own rounding (a relative 1e-12)."""
    y, arith, rule = _problem(loss, rule_name, seed, n, weighted, eps, level)
    low, high = _box(seed, n, scale)
    bound = rule.lower_bound(low, high, y, arith)
    rng = np.random.default_rng(seed + 2)
    inside = low + rng.random((64, n)) * (high - low)
    f = np.concatenate([inside, low[None], high[None], np.where(rng.random((8, n)) < 0.5, low, high)])
    values = rule.value(f, y, arith)
    size = np.abs(arith.losses(f, y)).max() + abs(getattr(rule, "eps", 0.0)) + np.abs(f).max()
    assert np.all(bound <= values + 1e-12 * size), (bound, values.min())


@settings(max_examples=200, deadline=None)
@given(*CASES)
def test_the_bound_is_the_value_at_the_boxs_best_corner(loss, rule_name, seed, n, weighted, eps, level, scale):
    """The bound is attained: each sample's output put at the end of its interval with the larger margin y f
    (binary labels), or at its target clipped to the interval (squared loss, real targets), gives the rule's
    value equal to the bound (to roundoff), so the screen loses nothing to a loose bound."""
    y, arith, rule = _problem(loss, rule_name, seed, n, weighted, eps, level)
    low, high = _box(seed, n, scale)
    if loss == "squared" and rule_name != "accuracy":
        best = np.clip(y, low, high)
    else:
        best = np.where(y > 0, high, low)
    value = float(rule.value(best[None], y, arith)[0])
    bound = rule.lower_bound(low, high, y, arith)
    size = np.abs(arith.losses(best, y)).max() + abs(getattr(rule, "eps", 0.0)) + np.abs(best).max()
    assert abs(bound - value) <= 1e-12 * size, (bound, value)

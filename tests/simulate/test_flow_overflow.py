"""Overflowing stages are rejected steps, not divergence (docs/flow.md, "Robustness").

The problem (found by the stress suite, tests/simulate/test_flow_stress.py): exponential loss, antisymmetric
init with alpha ~ 20, m = 40, d = 28, n = 18, f = 0 on every sample at t = 0. The field is stiff (Lipschitz
constant ~ 1e6): an Euler trial step of the initial step guess, an RK stage, or the DOP853 dense output inside
an accepted step lands where exp(-y f) overflows, although the risk of the true flow never exceeds R(0) = 1.
Every method and coordinate system must integrate it and agree with the 100x tighter DOP853 run. The stages
overshoot while the risk falls from 1 to 0.65, so the runs stop at TARGET_RISK (the problem's own target,
0.243, is not reached by its t_max = 1.74, which takes 10-40 s a run).
"""

from pathlib import Path

import numpy as np
import pytest

from fls.simulate.flow.step_control import initial_step
from tests.simulate.test_flow_stress import METHODS, Problem, check

DATA = Path(__file__).parent / "data" / "overflowing_stages.npz"
TARGET_RISK = 0.5


def overflowing_problem(method: str, coords: str) -> Problem:
    arrays = np.load(DATA)
    return Problem(
        W=arrays["W"],
        v=arrays["v"],
        X=arrays["X"],
        y=arrays["y"],
        loss="exponential",
        target_risk=TARGET_RISK,
        t_max=float(arrays["t_max"]),
        rtol=float(arrays["rtol"]),
        atol=float(arrays["atol"]),
        method=method,
        coords=coords,
    )


@pytest.mark.slow  # 20-60 s a case: the tight DOP853 run of a stiff problem
@pytest.mark.parametrize("coords", ["plain", "log"])
@pytest.mark.parametrize("method", METHODS)
def test_overflowing_stages_are_retried_smaller(method, coords):
    check(overflowing_problem(method, coords))


def test_initial_step_is_scipys_without_overflow():
    """On a smooth linear field the guess is exactly scipy's select_initial_step, for every method's order."""
    from scipy.integrate._ivp.common import select_initial_step

    rng = np.random.default_rng(3)
    A = rng.normal(size=(6, 6))
    y0 = rng.normal(size=6)

    def fun(t, y):
        return A @ y

    for order in (1, 2, 3, 4, 7):
        expected = select_initial_step(fun, 0.5, y0, 2.0, np.inf, fun(0.5, y0), 1, order, 1e-6, 1e-9)
        assert initial_step(fun, 0.5, y0, fun(0.5, y0), 2.0, order, 1e-9 + 1e-6 * np.abs(y0)) == expected


def test_initial_step_shrinks_the_trial_step_below_overflow():
    """A field that is 1 up to y = 1.001 and infinite beyond, from y0 = 1 at rtol 1e-6: the scaled sizes of
    y0 and f0 are both ~1e6, so the Euler trial step is h0 = 0.01, which lands at 1.01 (not finite); so does
    1e-3; 1e-4 is finite with a zero second derivative, and the guess is min(100 h0, (0.01 / 1e6)^(1/5)) =
    0.01, where without the retries it would be 0."""
    trials = []

    def fun(t, y):
        trials.append(t)
        return np.where(y < 1.001, 1.0, np.inf)

    y0 = np.ones(1)
    h = initial_step(fun, 0.0, y0, fun(0.0, y0), 1.0, 4, 1e-9 + 1e-6 * np.abs(y0))
    assert np.allclose(trials, [0.0, 1e-2, 1e-3, 1e-4], rtol=1e-9)
    assert h == pytest.approx(1e-2, rel=1e-9)


def test_initial_step_is_zero_when_the_field_overflows_beside_the_start():
    """A field that is finite only at y0 itself: no trial step is small enough, the guess is 0."""

    def fun(t, y):
        return np.where(y == 0, 1.0, np.inf)

    y0 = np.zeros(1)
    assert initial_step(fun, 0.0, y0, fun(0.0, y0), 1.0, 4, 1e-9 + 1e-6 * np.abs(y0)) == 0.0

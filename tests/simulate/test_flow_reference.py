"""The float engine against the mpmath reference (same hybrid logic, 30-digit pieces) and plain solvers."""

import mpmath
import numpy as np
import pytest

from fls.simulate.flow import integrate_flow
from fls.simulate.flow.baselines import plain_ode_flow
from fls.simulate.flow.problems import switching_problem
from fls.simulate.flow.reference import reference_flow


def state(result) -> np.ndarray:
    return np.concatenate([result.W.ravel(), result.v])


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_reference_agrees_on_a_short_run_through_one_crossing():
    W, v, X, y = switching_problem()
    engine = integrate_flow(W, v, X, y, t_max=3.0, rtol=1e-11)
    reference = reference_flow(W, v, X, y, t_max=3.0, dps=30)
    assert engine.switches == reference.switches == 1
    assert relative_error(state(engine), state(reference)) < 1e-10
    assert reference.invariant_drift < 1e-20


@pytest.mark.slow
def test_engine_matches_the_mpmath_reference_through_crossings_and_sliding():
    """Final state and stop time to 1e-9 relative at rtol = 1e-11; plain DOP853 stalls or errs more."""
    W, v, X, y = switching_problem()
    engine = integrate_flow(W, v, X, y, target_risk=0.1, t_max=200.0, rtol=1e-11)
    reference = reference_flow(W, v, X, y, target_risk=0.1, t_max=200.0, dps=30)
    assert engine.status == reference.status == "target_reached"
    assert engine.switches >= 2 and engine.sliding_entries >= 2 and engine.info["sliding_exits"] >= 1
    assert (engine.switches, engine.sliding_entries) == (reference.switches, reference.sliding_entries)
    state_error = relative_error(state(engine), state(reference))
    time_error = abs(engine.t_stop - reference.t_stop) / reference.t_stop
    assert state_error < 1e-9 and time_error < 1e-9
    assert engine.invariant_drift < 1e-10
    plain = plain_ode_flow(
        W, v, X, y, target_risk=0.1, t_max=200.0, rtol=1e-11, atol=1e-13, max_evals=20 * engine.rhs_evals
    )
    print(
        f"\nengine: t_stop = {engine.t_stop:.15g}, state error {state_error:.2e}, "
        f"time error {time_error:.2e}, {engine.rhs_evals} RHS evaluations"
    )
    if plain.status == "stalled":
        print(f"plain DOP853: stalled at t = {plain.t:.4g} after {plain.rhs_evals} evaluations")
    else:
        plain_error = relative_error(np.concatenate([plain.W.ravel(), plain.v]), state(reference))
        print(
            f"plain DOP853: t_stop = {plain.t:.15g}, state error {plain_error:.2e}, "
            f"{plain.rhs_evals} evaluations"
        )
        assert plain_error > state_error


def test_reference_integrates_a_field_of_1e141():
    """One neuron in d = 1, one sample (x = 1, y = 1), exponential loss, w = -v = sqrt(u0) with u0 = 323: the
    field is w e^{w^2} = 3.4e141 at t = 0 (the size of the stored problem ``dop853_error_norm_overflow``'s).
    Here u = w^2 obeys u' = -2 u e^u, so E1(u(t)) = E1(u0) + 2 t (E1 the exponential integral,
    dE1/du = -e^{-u} / u): an independent solution, found by mpmath's root finder at 50 digits. The reference's
    default first step (0.05) moved w by 1e140, and exp of the outputs could not be formed (MemoryError here,
    OverflowError on the stored problem)."""
    u0, t_max = 323, 1e-135
    a = float(np.sqrt(u0))
    W, v, X, y = np.array([[a]]), np.array([-a]), np.array([[1.0]]), np.array([1.0])
    reference = reference_flow(W, v, X, y, loss="exponential", t_max=t_max, dps=30)
    assert reference.status == "t_max"
    with mpmath.workdps(50):
        level = mpmath.e1(mpmath.mpf(a) ** 2) + 2 * mpmath.mpf(t_max)
        u = mpmath.findroot(lambda u: mpmath.e1(u) - level, mpmath.mpf(300))
        exact = mpmath.sqrt(u)
        w, v = reference.info["W_mp"][0, 0], reference.info["v_mp"][0]
        assert abs(w - exact) < mpmath.mpf(10) ** -20 * exact
        assert abs(v + exact) < mpmath.mpf(10) ** -20 * exact

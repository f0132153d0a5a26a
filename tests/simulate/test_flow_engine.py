"""integrate_flow: input checks, statuses, diagnostics, coordinates, simultaneous events, dense output."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from fls.simulate.flow import ZERO_TRAIN_ERROR, PositiveClassLoss, SaveSchedule, TrainAccuracy, integrate_flow
from fls.simulate.flow.problems import stall_problem, switching_problem
from fls.theory import vector_field
from fls.theory.compiled import compile_field
from fls.theory.validation import ParameterError

FIELD = compile_field("logistic")


def test_bad_input_gets_clear_errors():
    W, v, X, y = switching_problem()

    def run(**overrides):
        return integrate_flow(**{"W0": W, "v0": v, "X": X, "y": y, "t_max": 1.0, **overrides})

    cases = [
        ({"W0": W[:, :2]}, "W has shape"),
        ({"v0": v[:3]}, "v has shape"),
        ({"y": y[:4]}, "y has shape"),
        ({"y": np.where(y > 0, 1.0, 0.0)}, "y must contain only -1 and \\+1"),
        ({"X": np.where(X > 0.5, np.nan, X)}, "X contains non-finite"),
        ({"target_risk": 0.0}, "target_risk = 0.0 is out of range"),
        ({"target_risk": -0.1}, "target_risk = -0.1 is out of range"),
        ({"rtol": 1e-15}, "rtol = 1e-15 is out of range; allowed: \\[1e-14, 0.01\\]"),
        ({"rtol": 0.1}, "rtol = 0.1 is out of range"),
        ({"atol": 0.0}, "atol = 0.0 is out of range"),
        ({"t_max": -1.0}, "t_max = -1.0 is out of range"),
        ({"c": 0.0}, "c = 0.0 is out of range"),
        ({"method": "Euler"}, "method = 'Euler' is not supported"),
        ({"coords": "polar"}, "coords = 'polar' is not supported"),
        ({"coords": "log", "v0": 2 * v}, "needs a balanced initialization"),
        ({"target_risk": 0.1, "stop_rule": TrainAccuracy(0.9)}, "either target_risk or stop_rule"),
        ({"stop_rule": 0.1}, "stop_rule must be a StopRule"),
        ({"stop_rule": PositiveClassLoss(0.1), "y": -np.ones(5)}, "at least one sample with y = \\+1"),
        ({"save_at": [1.0, 0.5]}, "save_at must be non-negative and non-decreasing"),
        ({"loss": "hinge"}, "loss = 'hinge' is not supported"),
    ]
    for overrides, message in cases:
        with pytest.raises(ParameterError, match=message):
            run(**overrides)


def test_without_events_it_is_the_smooth_flow_to_the_tolerance():
    """All pairs active for all time (one class, neurons inside the data cone): a plain ODE, no events."""
    rng = np.random.default_rng(0)
    X = np.abs(rng.standard_normal((6, 3))) + 0.5
    y = np.ones(6)
    W = np.abs(rng.standard_normal((3, 3))) + 0.2
    v = np.linalg.norm(W, axis=1)
    result = integrate_flow(W, v, X, y, t_max=10.0, rtol=1e-12, atol=1e-14)
    m, d = W.shape

    def field(t, z):
        dW, dv = vector_field(z[: m * d].reshape(m, d), z[m * d :], X, y)
        return np.concatenate([dW.ravel(), dv])

    exact = solve_ivp(
        field, (0, 10), np.concatenate([W.ravel(), v]), method="DOP853", rtol=1e-13, atol=1e-15
    ).y[:, -1]
    assert result.status == "t_max" and result.t_stop == 10.0
    assert result.switches == 0 and result.sliding_entries == 0 and result.info["events"] == 0
    assert np.allclose(np.concatenate([result.W.ravel(), result.v]), exact, rtol=1e-10, atol=0)
    assert result.invariant_drift < 1e-10


def test_stall_problem_run_carries_its_diagnostics_and_descends():
    W, v, X, y = stall_problem(1.0)
    result = integrate_flow(W, v, X, y, target_risk=1e-2, t_max=500.0, coords="plain")
    assert result.status == "target_reached" and result.ok
    assert result.risk[-1] == pytest.approx(1e-2, rel=1e-9)
    assert np.all(result.risk[:-1] > 1e-2)
    assert np.all(np.diff(result.risk) <= 1e-13)  # gradient flow descends the risk (Filippov selection too)
    assert result.switches > 20 and result.sliding_entries > 0
    assert result.rhs_evals > 0 and result.wall_time > 0 and result.invariant_drift < 1e-9
    assert result.engine == "flow" and result.info["coords"] == "plain"
    assert FIELD.risk(result.W, result.v, X, y) == pytest.approx(1e-2, rel=1e-9)


def test_duplicate_neurons_hit_their_surfaces_together_and_stay_duplicates():
    """Each neuron split into two copies (w, v) / sqrt(2): the same function and flow, every event doubled."""
    W, v, X, y = switching_problem()
    single = integrate_flow(W, v, X, y, target_risk=0.1, t_max=200.0, rtol=1e-11)
    W2, v2 = np.repeat(W, 2, axis=0) / np.sqrt(2), np.repeat(v, 2) / np.sqrt(2)
    double = integrate_flow(W2, v2, X, y, target_risk=0.1, t_max=200.0, rtol=1e-11)
    assert double.status == single.status == "target_reached"
    assert double.t_stop == pytest.approx(single.t_stop, rel=1e-9)
    assert np.array_equal(double.W[0::2], double.W[1::2]) and np.array_equal(double.v[0::2], double.v[1::2])
    assert np.allclose(double.W[0::2] * np.sqrt(2), single.W, rtol=1e-8, atol=1e-10)
    assert double.switches == 2 * single.switches and double.sliding_entries == 2 * single.sliding_entries
    assert double.info["events"] == single.info["events"]  # the copies' events are handled as one group


def test_log_and_plain_coordinates_agree():
    W, v, X, y = stall_problem(0.05)
    kwargs = {"target_risk": 0.05, "t_max": 500.0, "rtol": 1e-11}
    plain = integrate_flow(W, v, X, y, coords="plain", **kwargs)
    log = integrate_flow(W, v, X, y, coords="log", **kwargs)
    assert log.engine == "flow-logcoords" and log.invariant_drift == 0.0
    assert integrate_flow(W, v, X, y, t_max=1.0).engine == "flow-logcoords"  # auto: balanced, small alpha
    assert log.t_stop == pytest.approx(plain.t_stop, rel=1e-7)
    assert np.allclose(log.W, plain.W, rtol=1e-6, atol=1e-9 * np.abs(plain.W).max())
    assert (log.switches, log.sliding_entries) == (plain.switches, plain.sliding_entries)


def wide_problem():
    """(W0, v0, X, y): n = 6 samples in d = 10, m = 8 balanced neurons (crossings and sliding)."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((6, 10)) / np.sqrt(10)
    y = np.where(X[:, 0] + 0.3 * rng.standard_normal(6) > 0, 1.0, -1.0)
    W = rng.standard_normal((8, 10)) / np.sqrt(10)
    v = np.where(rng.random(8) < 0.5, -1.0, 1.0) * np.linalg.norm(W, axis=1)
    return W, v, X, y


@pytest.mark.parametrize("method", ["RK23", "DOP853"])
def test_span_and_plain_coordinates_agree_when_n_is_below_d(method):
    """n = 6 samples in d = 10: 'auto' integrates W - W(0) in the span of the samples; same flow as plain."""
    W, v, X, y = wide_problem()
    kwargs = {"target_risk": 0.05, "t_max": 500.0, "rtol": 1e-11, "atol": 1e-13, "method": method}
    span = integrate_flow(W, v, X, y, **kwargs)
    plain = integrate_flow(W, v, X, y, coords="plain", **kwargs)
    assert (span.info["coords"], plain.info["coords"]) == ("span", "plain")
    assert span.status == plain.status == "target_reached" and span.switches > 3 and span.sliding_entries > 0
    assert (span.switches, span.sliding_entries) == (plain.switches, plain.sliding_entries)
    assert span.t_stop == pytest.approx(plain.t_stop, rel=1e-8)
    assert np.allclose(span.W, plain.W, rtol=1e-7, atol=1e-9) and np.allclose(span.v, plain.v, rtol=1e-7)
    assert span.invariant_drift < 1e-10
    W_t, v_t = span.dense(span.t_stop / 2)
    W_p, v_p = plain.dense(span.t_stop / 2)
    assert np.allclose(W_t, W_p, rtol=1e-7, atol=1e-9) and np.allclose(v_t, v_p, rtol=1e-7, atol=1e-9)
    implicit = integrate_flow(W, v, X, y, target_risk=0.05, t_max=500.0, rtol=1e-8, method="Radau")
    assert implicit.info["coords"] == "plain" and implicit.info["jac_evals"] > 0  # the analytic Jacobian


def test_span_coordinates_with_another_loss_multiplier_and_stop_rule():
    W, v, X, y = wide_problem()
    kwargs = {"loss": "squared", "c": 2.0, "stop_rule": TrainAccuracy(1.0), "t_max": 100.0, "rtol": 1e-10}
    span = integrate_flow(W, v, X, y, method="RK45", **kwargs)
    plain = integrate_flow(W, v, X, y, method="RK45", coords="plain", **kwargs)
    assert span.info["coords"] == "span" and span.status == plain.status == "target_reached"
    assert span.t_stop == pytest.approx(plain.t_stop, rel=1e-7)
    assert np.allclose(span.W, plain.W, rtol=1e-6, atol=1e-8)


def test_dense_output_reproduces_saved_states():
    W, v, X, y = stall_problem(1.0)
    times = np.linspace(0.0, 20.0, 9)
    result = integrate_flow(W, v, X, y, t_max=20.0, save_at=times)
    assert np.array_equal(result.t, times) and result.W_t.shape == (9, 20, 3)
    for k in (0, 3, 8):
        W_k, v_k = result.dense(times[k])
        assert np.allclose(W_k, result.W_t[k], rtol=1e-8, atol=1e-10)
        assert np.allclose(v_k, result.v_t[k], rtol=1e-8, atol=1e-10)
    with pytest.raises(ParameterError, match="t = 21.0 is out of range"):
        result.dense(21.0)
    only_risk = integrate_flow(W, v, X, y, t_max=5.0, save_at=SaveSchedule.at([1.0, 2.0], keep_states=False))
    assert only_risk.W_t is None and np.array_equal(only_risk.t, [1.0, 2.0, 5.0])


def test_implicit_method_with_the_analytic_jacobian_agrees():
    W, v, X, y = switching_problem()
    explicit = integrate_flow(W, v, X, y, target_risk=0.1, t_max=200.0, rtol=1e-11)
    implicit = integrate_flow(W, v, X, y, target_risk=0.1, t_max=200.0, rtol=1e-9, method="Radau")
    assert implicit.info["jac_evals"] > 0
    assert implicit.t_stop == pytest.approx(explicit.t_stop, rel=1e-6)
    assert np.allclose(implicit.W, explicit.W, rtol=1e-6, atol=1e-8)


def test_statuses_not_reached_t_max_and_diverged():
    W, v, X, y = switching_problem()
    unreachable = integrate_flow(W, v, X, y, target_risk=1e-8, t_max=50.0)
    assert unreachable.status == "not_reached" and not unreachable.ok and unreachable.t_stop == 50.0
    assert "not reached by t_max = 50" in unreachable.message
    assert integrate_flow(W, v, X, y, t_max=5.0).status == "t_max"
    exploding = integrate_flow(1e120 * W, 1e120 * v, X, y, loss="squared", t_max=1.0, coords="plain")
    assert exploding.status == "diverged" and "not finite" in exploding.message


@pytest.mark.parametrize(
    "rule, measure",
    [
        (PositiveClassLoss(0.05), lambda f, y: FIELD.losses(f, y)[y > 0].mean() - 0.05),
        (TrainAccuracy(0.9), lambda f, y: -np.sort(y * f)[2]),
        (ZERO_TRAIN_ERROR, lambda f, y: -np.min(y * f)),
    ],
)
def test_stop_rules_are_located_on_the_dense_output(rule, measure):
    W, v, X, y = stall_problem(1.0)
    result = integrate_flow(W, v, X, y, stop_rule=rule, t_max=500.0)
    assert result.status == "target_reached"
    f = FIELD.output(result.W, result.v, X)
    assert abs(measure(f, y)) <= 1e-9
    assert measure(FIELD.output(*result.dense(0.999 * result.t_stop), X), y) > 0


def test_output_multiplier_is_a_time_and_scale_change():
    """docs/design.md section 2: the run with (alpha, c) at time t is the run with (sqrt(c) alpha, 1) at c t, divided by sqrt(c)."""
    W, v, X, y = switching_problem()
    c = 4.0
    with_c = integrate_flow(W, v, X, y, c=c, t_max=5.0, rtol=1e-11)
    rescaled = integrate_flow(np.sqrt(c) * W, np.sqrt(c) * v, X, y, t_max=c * 5.0, rtol=1e-11)
    assert np.allclose(with_c.W, rescaled.W / np.sqrt(c), rtol=1e-9, atol=1e-11)
    assert np.allclose(with_c.v, rescaled.v / np.sqrt(c), rtol=1e-9, atol=1e-11)
    assert with_c.switches == rescaled.switches and with_c.sliding_entries == rescaled.sliding_entries


def test_plain_solver_baseline_returns_its_end_state():
    """Without activation changes the plain solve_ivp baseline is the flow: its end state (at t_max, or at the
    target as a terminal event) equals the engine's to the tolerance."""
    from fls.simulate.flow.baselines import plain_ode_flow

    rng = np.random.default_rng(0)
    X = np.abs(rng.standard_normal((6, 3))) + 0.5
    y = np.ones(6)
    W = np.abs(rng.standard_normal((3, 3))) + 0.2
    v = np.linalg.norm(W, axis=1)
    free = integrate_flow(W, v, X, y, t_max=3.0, rtol=1e-12, atol=1e-14)
    for target in (None, (free.risk[0] + free.risk[-1]) / 2):  # a target reached on the way
        engine = integrate_flow(W, v, X, y, t_max=3.0, target_risk=target, rtol=1e-12, atol=1e-14)
        plain = plain_ode_flow(W, v, X, y, t_max=3.0, target_risk=target, rtol=1e-12, atol=1e-14)
        assert plain.status == engine.status
        assert plain.t == pytest.approx(engine.t_stop, rel=1e-9)
        assert np.allclose(plain.W, engine.W, rtol=1e-9, atol=1e-12)

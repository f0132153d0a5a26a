"""The screen of the sliding weights' guards (simulate/flow/output_screen.py; docs/flow.md, "Cost"): a step is
skipped only where no weight can come near 0 or 1, checked against the guards formed from every sample's
outputs along the step, and a run with the screen equals the run without it."""

from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.simulate.flow import integrate_flow, output_screen, polynomial_guards
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.coords import PlainCoordinates
from fls.simulate.flow.logcoords import LogCoordinates
from fls.simulate.flow.problems import stall_problem
from fls.simulate.flow.spancoords import SpanCoordinates
from fls.simulate.initialization import init_params
from fls.simulate.stopping import TargetRisk, TrainAccuracy

THETAS = np.linspace(0.0, 1.0, 201)


def _assert_excursion_bounds_the_movement(coords, C: np.ndarray) -> None:
    """coords.contribution_excursion(C) bounds max over theta of ||v_j w_j (theta) - v_j w_j (0)||, with v_j w_j
    from the coordinates' own map to the network at 201 states sum_k C_k theta^k (an independent computation);
    the row blocks' norms given by the caller (the step's pair screen forms them) give the same bound."""
    bound = coords.contribution_excursion(C)
    row_sizes = output_screen.bound_norms(coords.row_blocks(C)[0])
    np.testing.assert_array_equal(coords.contribution_excursion(C, row_sizes), bound)
    W, v = coords.network((THETAS[:, None] ** np.arange(len(C))) @ C)
    g = v[..., None] * W  # (K, m, d)
    moved = np.sqrt(((g - g[0]) ** 2).sum(axis=-1)).max(axis=0)
    assert np.all(moved <= bound * (1 + 1e-9) + 1e-300), (moved, bound)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 5), st.integers(1, 4), st.integers(1, 4), st.floats(1e-6, 0.3))
def test_log_contribution_excursion_bounds_the_movement_of_v_w_along_a_step(seed, m, d, degree, size):
    """E_j bounds max over theta of ||v_j w_j (theta) - v_j w_j (0)||, v_j w_j from the coordinates' own map to
    the network at the states sum_k C_k theta^k (an independent computation)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((4, d))
    coords = LogCoordinates(X, np.array([1.0, -1.0, 1.0, -1.0]), 1.0, np.sign(rng.standard_normal(m) + 0.1),
                            float_arithmetic("logistic", None))  # fmt: skip
    C = np.empty((degree + 1, coords.size))
    C[0] = np.concatenate([rng.standard_normal(m * d), rng.uniform(-20.0, 3.0, m)])
    C[1:] = size * rng.standard_normal((degree, coords.size)) / np.arange(1, degree + 1)[:, None]
    _assert_excursion_bounds_the_movement(coords, C)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["plain", "span"]), st.integers(0, 10_000), st.integers(1, 5), st.integers(1, 5),
    st.integers(1, 4), st.floats(1e-6, 3.0),
)  # fmt: skip
def test_polynomial_contribution_excursion_bounds_the_movement_of_v_w_along_a_step(name, seed, m, d, degree, size):
    """Plain and data-span coordinates: E_j bounds max over theta of ||v_j w_j (theta) - v_j w_j (0)||, with
    (W, v) from the coordinates' own map to the network at the states sum_k C_k theta^k (an independent
    computation), where v_j and w_j are polynomials of degree p in theta."""
    rng = np.random.default_rng(seed)
    X, y, arith = rng.standard_normal((4, d)), np.array([1.0, -1.0, 1.0, -1.0]), float_arithmetic("logistic", None)
    if name == "plain":
        coords = PlainCoordinates(X, y, 1.0, m, arith)
    else:
        coords = SpanCoordinates(X, y, 1.0, rng.standard_normal((m, d)), arith)
    C = np.empty((degree + 1, coords.size))
    C[0] = rng.standard_normal(coords.size)
    C[1:] = size * rng.standard_normal((degree, coords.size)) / np.arange(1, degree + 1)[:, None]
    _assert_excursion_bounds_the_movement(coords, C)


def _checked_screen(screened: list, guards, coefficients, t_a, h, row_sizes) -> bool:
    """The screen's decision on a step, appended to ``screened``; where it skips the step, every output guard
    formed from the outputs of 201 states along the step's dense output is off its surface: both guards of
    every sliding weight above the touching tolerance, the stopping rule's value above 0."""
    off = output_screen.output_guards_stay_off(guards, coefficients, t_a, h, row_sizes)
    screened.append(off)
    if off:
        coords = guards.coords
        states = (THETAS[:, None] ** np.arange(len(coefficients))) @ coefficients
        f = coords.output(states, guards.weights)
        if guards.n_sliding:
            low, high = guards.weight_guards(*coords.sample_factors(f))
            assert low.min() > coords.arith.touch_tol and high.min() > coords.arith.touch_tol
        if guards.stop_rule is not None:
            assert guards.stop_rule.value(f, coords.y, coords.arith).min() > 0
    return off


def _stall_run(m: int, t_max: float, coords: str = "auto"):
    _, _, X, y = stall_problem(1.0)
    W, v = init_params(m, 3, alpha=1e-3 / np.sqrt(m), scheme="random_sign", seed=0)
    return integrate_flow(
        W, v, X, y, t_max=t_max, method="RK23", rtol=1e-7, atol=1e-10, save_at=[t_max], coords=coords
    )


@pytest.mark.parametrize("coords", ["auto", "plain"])
def test_a_screened_step_has_every_weight_guard_above_the_touching_tolerance_and_the_run_is_unchanged(
    monkeypatch, coords
):
    """Stall data, m = 100, log (1152 events, 178 sliding entries, 142 exits) and plain coordinates (screened
    here with its threshold of pairs lifted), to t = 70: at every
    step the screen skips, both guards of every sliding weight, formed from the outputs of 201 states along
    the step's dense output, stay above the touching tolerance; most steps with sliding pairs are skipped; the
    run has the same events and final state as the run with every step's outputs formed."""
    screened = []
    monkeypatch.setattr(PlainCoordinates, "screen_min_pairs", 0)  # screened from 20 000 pairs on: here too
    monkeypatch.setattr(polynomial_guards, "output_guards_stay_off", partial(_checked_screen, screened))
    run = _stall_run(100, 70.0, coords)
    assert sum(screened) > 0.5 * len(screened) > 100
    monkeypatch.setattr(polynomial_guards, "output_guards_stay_off", lambda *args: False)
    full = _stall_run(100, 70.0, coords)
    for name in ("rhs_evals", "switches", "sliding_entries"):
        assert getattr(run, name) == getattr(full, name)
    assert run.info["sliding_exits"] == full.info["sliding_exits"] > 100
    np.testing.assert_allclose(run.W, full.W, rtol=0, atol=1e-12 * np.abs(full.W).max())
    np.testing.assert_allclose(run.v, full.v, rtol=0, atol=1e-12 * np.abs(full.v).max())


def test_excursions_add_up_over_consecutive_steps_and_a_step_that_does_not_continue_ends_the_screen():
    """A piece's bound is the sum of its steps' excursions only while each step starts where the last ended;
    a step that starts elsewhere (a step retried from its start) breaks the chain for the rest of the piece."""
    reach = output_screen.OutputReach(2, 1.0)
    assert reach.advance(np.array([1.0, 2.0]), 1.0, 0.5)
    assert reach.advance(np.array([0.5, 0.25]), 1.5, 0.25)
    np.testing.assert_array_equal(reach.moved, [1.5, 2.25])
    assert not reach.advance(np.array([1.0, 1.0]), 1.5, 0.25)  # the last step again, from its start
    assert not reach.advance(np.array([0.0, 0.0]), 1.75, 0.25)


def test_the_ungated_bound_decides_as_the_gated_one_where_it_decides():
    """The screen tries sum_j E_j, which bounds every gated sum sum_j A_ji E_j, before forming the (m, n)
    product: a step it keeps inside is one the gated bound keeps inside too, so every decision is the gated
    bound's (stall data, m = 100, log coordinates, to t = 30), and most are made without the product."""
    decisions = []
    gated_screen = output_screen._guards_stay_off

    def compared(guards, coefficients, t_a, h, row_sizes):
        inside = output_screen.output_guards_stay_off(guards, coefficients, t_a, h, row_sizes)
        reach = getattr(guards, "output_reach", None)
        if reach is not None and reach.t_end == t_a + h:  # the screen applied to this step
            moved = abs(float(guards.coords.c)) * guards.coords.x_norms
            ungated = gated_screen(guards, moved * reach.moved.sum())
            decisions.append(
                (inside, gated_screen(guards, moved * (reach.moved @ guards.weights.active)), ungated)
            )
        return inside

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(polynomial_guards, "output_guards_stay_off", compared)
        _stall_run(100, 30.0, "auto")
    assert len(decisions) > 100
    assert all(inside == gated for inside, gated, _ in decisions)
    assert all(gated for _, gated, ungated in decisions if ungated)
    assert sum(ungated for *_, ungated in decisions) > 0.5 * len(decisions)


def _stall_run_to(rule, m: int = 100):
    """Stall data to ``rule``'s target (t <= 70), log coordinates: the stop comes after hundreds of events."""
    _, _, X, y = stall_problem(1.0)
    W, v = init_params(m, 3, alpha=1e-3 / np.sqrt(m), scheme="random_sign", seed=0)
    return integrate_flow(W, v, X, y, stop_rule=rule, t_max=70.0, method="RK23", rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("rule", [TargetRisk(0.3), TrainAccuracy(0.9)], ids=["risk", "accuracy"])
def test_a_run_to_a_target_with_the_screen_stops_where_the_run_without_it_stops(monkeypatch, rule):
    """Stall data, m = 100, to training risk 0.3 (1151 events, t = 50.03) and to train accuracy 0.9 (128 events,
    t = 1.13): at every step the screen skips, the stopping value and every sliding weight's guards, formed
    from the outputs of 201 states along the step's dense output, stay off their surfaces; most steps of
    pieces with a stopping rule are skipped (no outputs formed); the stop time, events, evaluations and final
    state are those of the run with every step's outputs formed (the event's outputs, formed once at the
    event instead of along the step, agree to roundoff)."""
    screened = []
    monkeypatch.setattr(polynomial_guards, "output_guards_stay_off", partial(_checked_screen, screened))
    run = _stall_run_to(rule)
    assert sum(screened) > 0.8 * len(screened) > 100
    monkeypatch.setattr(polynomial_guards, "output_guards_stay_off", lambda *args: False)
    full = _stall_run_to(rule)
    assert run.status == full.status == "target_reached"
    for name in ("rhs_evals", "switches", "sliding_entries"):
        assert getattr(run, name) == getattr(full, name)
    assert run.info["events"] == full.info["events"]
    assert abs(run.t_stop - full.t_stop) <= 1e-13 * full.t_stop
    np.testing.assert_allclose(run.W, full.W, rtol=0, atol=1e-12 * np.abs(full.W).max())
    np.testing.assert_allclose(run.v, full.v, rtol=0, atol=1e-12 * np.abs(full.v).max())


def test_a_target_reached_between_two_events_inside_a_screened_stretch_is_located(monkeypatch):
    """The last piece of a run to training risk 0.3 (stall data, m = 100) has screened steps before the step in
    which the risk reaches 0.3: the bound stops screening as the box of outputs comes to hold the target, the
    sampled stopping guard brackets its zero, and the stop is located where the run without the screen
    locates it (to roundoff), after the piece's last event."""
    steps = []

    def recorded(guards, coefficients, t_a, h, row_sizes):
        off = output_screen.output_guards_stay_off(guards, coefficients, t_a, h, row_sizes)
        steps.append((guards, t_a, h, off))
        return off

    monkeypatch.setattr(polynomial_guards, "output_guards_stay_off", recorded)
    run = _stall_run_to(TargetRisk(0.3))
    last_piece = [step for step in steps if step[0] is steps[-1][0]]
    *before, (_, t_a, h, off) = last_piece
    assert not off and t_a <= run.t_stop <= t_a + h
    assert sum(step[3] for step in before) >= 2
    monkeypatch.setattr(polynomial_guards, "output_guards_stay_off", lambda *args: False)
    full = _stall_run_to(TargetRisk(0.3))
    assert abs(run.t_stop - full.t_stop) <= 1e-13 * full.t_stop

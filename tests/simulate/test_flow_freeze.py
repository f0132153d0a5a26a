"""A neuron frozen at its origin where it stays and cannot leave, the flow continued without it
(simulate/flow/freeze.py; docs/flow.md, "A neuron at its origin").

The hand-made problems: six unit samples in d = 2 with squared loss and targets -1. Neuron 0 (v_0 > 0) starts
inside the sector of the samples at 0, 60 and 120 degrees of the hexagon (or the axes and a diagonal): every
output it makes is >= 0 > -1, so every sample factor s_i = y_i - f_i it sees is < 0 and it shrinks, sliding
into w_0 = 0 in finite time, where its events repeat. Neuron 1 (v_1 < 0) sits in the opposite sector.

- On the hexagon the two neurons never share a sample, so neuron 1 moves exactly as a network of neuron 1
  alone, which has no event up to t_max: its reference is scipy's DOP853 on the smooth field at rtol 1e-13.
  The invariant v_j^2 - |w_j|^2 of a neuron is conserved by the flow, so neuron 0 arrives with
  v_0 = sqrt(v_0(0)^2 - |w_0(0)|^2), exactly what it keeps.
- On the axes and the diagonal, neuron 1 cannot fit its three samples at once (f = v_1 p, v_1 q and
  v_1 (p + q) / sqrt(2)): the factor of the diagonal sample turns positive, and at t = 4.5553 a descent
  direction opens at neuron 0's origin (the largest -phi over 200 001 directions crosses 0): the stay stops
  being unique, and the run ends ``failed`` there, naming the time and the neuron.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

from fls.simulate.flow import integrate_flow
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.freeze import STAY, RunData, StayWatch, continue_past_stays
from fls.simulate.stopping import Evaluation, TargetRisk
from fls.theory import compile_field, vector_field
from fls.theory.losses import LOSSES
from tests.simulate.origin_escape import failed_neuron
from tests.simulate.test_flow_stress import Problem as Problem_
from tests.simulate.test_flow_stress import check

HEXAGON = np.array([[np.cos(a), np.sin(a)] for a in np.arange(6) * np.pi / 3])
DIAGONAL = np.sqrt(0.5)
AXES_AND_DIAGONAL = np.array(
    [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [DIAGONAL, DIAGONAL], [-DIAGONAL, -DIAGONAL]]
)
TARGETS = -np.ones(6)
W0 = np.array([[0.3, 0.2], [-0.5, -0.6]])
V0 = np.array([1.0, -1.0])
T_MAX = 5.0
#: the time the stay on the axes and the diagonal stops being unique (the module docstring)
LEAVE_TIME = 4.555343329989911


def flow(W, v, X, **options):
    return integrate_flow(W, v, X, TARGETS, loss="squared", t_max=T_MAX, rtol=1e-10, atol=1e-12, **options)


def smooth_reference(W, v, X, t0: float, t1: float) -> np.ndarray:
    """(W, v) at t1 from (W, v) at t0 by scipy's DOP853 at rtol 1e-13 on the network's field (smooth where no
    pre-activation changes sign), one vector."""

    def field(_, theta):
        dW, dv = vector_field(theta[: -len(v)].reshape(W.shape), theta[-len(v) :], X, TARGETS, loss="squared")
        return np.concatenate([dW.ravel(), dv])

    solution = solve_ivp(
        field, (t0, t1), np.concatenate([W.ravel(), v]), method="DOP853", rtol=1e-13, atol=1e-15
    )
    return solution.y[:, -1]


@pytest.mark.parametrize(("coords", "method"), [("plain", "DOP853"), ("plain", "Radau"), ("span", "RK45")])
def test_a_neuron_frozen_at_its_origin_and_the_rest_against_a_reference(coords, method):
    """Neuron 0 freezes with w_0 = 0 exactly and v_0 its conserved value, and stays so on the dense output;
    neuron 1 agrees with the smooth reference of neuron 1 alone; the event log and ``info`` say so."""
    result = flow(W0, V0, HEXAGON, coords=coords, method=method, record_events=True)
    assert result.status == "t_max", result.message
    assert result.info["frozen_neurons"] == 1 and result.info["stays"]["neuron"].tolist() == [0]
    frozen_at = float(result.info["stays"]["t"][0])
    assert (
        0.5 < frozen_at < T_MAX
        and f"neuron 0 stays at its origin w = 0 from t = {frozen_at:.10g}" in result.message
    )
    v_frozen = np.sqrt(V0[0] ** 2 - W0[0] @ W0[0])  # the conserved invariant at w_0 = 0
    assert np.all(result.W[0] == 0.0) and abs(result.v[0] - v_frozen) <= 1e-9
    for t in np.linspace(frozen_at, T_MAX, 5)[1:]:
        W, v = result.dense(t)
        assert np.all(W[0] == 0.0) and v[0] == result.v[0]
    reference = smooth_reference(W0[1:], V0[1:], HEXAGON, 0.0, T_MAX)
    assert np.abs(np.r_[result.W[1], result.v[1]] - reference).max() <= 1e-8
    log = result.info["event_log"]
    stay = np.flatnonzero(log["kind"] == STAY)
    assert stay.tolist() == [len(log["t"][log["t"] <= frozen_at]) - 1]  # after every event up to it
    assert log["neuron"][stay[0]] == 0 and log["sample"][stay[0]] == -1 and log["t"][stay[0]] == frozen_at
    assert result.invariant_drift <= 1e-9


def test_the_last_neuron_frozen_holds_until_t_max():
    """A run whose last moving neuron freezes: nothing moves from then on (the outputs are 0), and the stitched
    result holds the frozen network up to t_max, where it is saved, reached (no target) or not reached (a
    target the frozen network misses). Neuron 0 alone nears its origin without repeated events (to 1e-66 by
    t = 5), so its stay is handed to the continuation by hand."""
    first = flow(W0[:1], V0[:1], HEXAGON)
    assert first.status == "t_max" and np.abs(first.W).max() < 1e-60, first.message

    def no_segment(*_, **__):
        raise AssertionError("no neuron is left to run")

    problem = RunData(HEXAGON, TARGETS, 1.0, float_arithmetic("squared"), 8.0)
    for target, status in ((None, "t_max"), (TargetRisk(0.1), "not_reached")):
        result = continue_past_stays(no_segment, first, 0, target, problem)
        assert result.status == status and result.t_stop == 8.0, result.message
        assert "neuron 0 stays at its origin w = 0 from t = 5" in result.message
        assert np.all(result.W == 0.0) and result.v[0] == first.v[0] and result.info["frozen_neurons"] == 1
        assert result.t[-2:].tolist() == [T_MAX, 8.0] and result.risk[-1] == pytest.approx(0.5)
        assert np.all(result.dense(6.0)[0] == 0.0) and result.dense(6.0)[1][0] == first.v[0]


def test_a_stay_that_stops_being_unique_ends_failed_naming_the_time_and_the_neuron():
    """On the axes and the diagonal the run ends ``failed`` where a descent opens at neuron 0's origin: at the
    largest -phi over the sampled directions reaching 0, at most 2e-3 after the exact time (the directions'
    spacing, docs/flow.md), which 200 001 directions on the run's own dense output find again here."""
    result = flow(W0, V0, AXES_AND_DIAGONAL)
    assert result.status == "failed", result.message
    assert (
        failed_neuron(result.message) == 0 and "may leave it: the flow is not unique there" in result.message
    )
    assert f"at t = {result.t_stop:.10g}" in result.message
    assert LEAVE_TIME <= result.t_stop <= LEAVE_TIME + 2e-3
    network = compile_field("squared")
    angles = np.linspace(0.0, 2 * np.pi, 200_001)
    ramps = np.maximum(np.stack([np.cos(angles), np.sin(angles)], 1) @ AXES_AND_DIAGONAL.T, 0.0)

    def descent(t: float) -> float:
        W, v = result.dense(t)
        return float(
            (v[0] * ramps @ network.sample_factor(network.output(W, v, AXES_AND_DIAGONAL), TARGETS)).max()
        )

    assert abs(brentq(descent, 4.0, result.t_stop, xtol=1e-12) - LEAVE_TIME) <= 1e-9
    frozen_at = float(result.info["stays"]["t"][0])
    assert np.all(result.W[0] == 0.0) and np.all(result.dense(0.5 * (frozen_at + result.t_stop))[0][0] == 0.0)


@settings(max_examples=12, deadline=None)
@given(st.floats(0.0, 2 * np.pi), st.floats(0.1, 0.5), st.floats(0.2, 1.4), st.floats(0.5, 2.0))
def test_a_frozen_neuron_never_moves_and_the_rest_is_the_network_without_it(turn, size, direction, scale):
    """Over rotated and scaled hexagons and starts of neuron 0 inside its sector: wherever neuron 0 freezes, its
    parameters never move after, and the rest of the run agrees with a run of the network without it from
    the stay's state and time (to 100 tolerances), up to t_max or to where the stay stops being unique."""
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    X = scale * HEXAGON @ rotation.T
    W = np.array([size * np.array([np.cos(direction), np.sin(direction)]), [-0.5, -0.6]]) @ rotation.T
    result = flow(W, V0, X, coords="plain")
    if not result.info.get("frozen_neurons"):  # about half of them: neuron 0 nears its origin without a stay
        return
    assert result.status in ("t_max", "failed"), result.message  # failed: the stay stops being unique
    frozen_at = float(result.info["stays"]["t"][0])
    for t in np.linspace(frozen_at, result.t_stop, 4)[1:]:
        W_t, v_t = result.dense(t)
        assert np.all(W_t[0] == 0.0) and v_t[0] == result.v[0]
    W_f, v_f = result.dense(frozen_at)
    rest = integrate_flow(
        W_f[1:], v_f[1:], X, TARGETS, loss="squared", t_max=T_MAX - frozen_at, rtol=1e-10, atol=1e-12,
        coords="plain",
    )  # fmt: skip
    W_r, v_r = rest.dense(min(result.t_stop - frozen_at, rest.t_stop))
    assert np.abs(np.r_[result.W[1:].ravel(), result.v[1:]] - np.r_[W_r.ravel(), v_r]).max() <= 1e-8


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(LOSSES), st.integers(0, 10_000), st.integers(1, 12), st.integers(1, 3), st.booleans())
def test_the_watchs_bound_is_at_most_its_value_in_the_box(loss, seed, n, frozen, with_rule):
    """The watch's lower bound on a box of outputs (the output screen's) is at most its value at 64 random
    outputs inside the box and its corners, for every loss, with and without a rule of its own."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    y = rng.normal(0.0, 2.0, n) if loss == "squared" else np.where(rng.random(n) < 0.5, 1.0, -1.0)
    watch = StayWatch(TargetRisk(0.1) if with_rule else None, rng.normal(size=frozen), np.arange(frozen), X)
    arith = float_arithmetic(loss)
    centre, half = rng.normal(0.0, 2.0, n), rng.uniform(0.0, 1.0, n)
    low, high = centre - half, centre + half
    f = np.concatenate([low + rng.random((64, n)) * (high - low), low[None], high[None]])
    assert watch.lower_bound(low, high, y, arith) <= watch.value(f, y, arith).min() + 1e-12


@pytest.mark.parametrize("X", [HEXAGON, AXES_AND_DIAGONAL], ids=["stays", "may_leave"])
def test_the_stress_check_compares_runs_that_freeze_a_neuron(X):
    """The stress suite's check of a run against its 100x tighter reference: both freeze neuron 0 (at times
    that differ, while it sits within roundoff of w_0 = 0) and agree to t_max, or both end ``failed`` where it
    may leave, certified there by the independent test at the origin, and agree up to that time."""
    check(
        Problem_(
            W0,
            V0,
            X,
            TARGETS,
            "squared",
            None,
            T_MAX,
            rtol=1e-10,
            atol=1e-12,
            method="DOP853",
            coords="plain",
        )
    )


def test_the_watchs_discrete_face_is_its_rules():
    """The discrete engines freeze no neuron: the watch's discrete face is its rule's, or never reached."""
    losses = torch.tensor([[0.05, 0.05], [1.0, 1.0]])
    evaluation = Evaluation(losses=losses, correct=torch.ones_like(losses, dtype=torch.bool))
    watch = StayWatch(TargetRisk(0.1), np.ones(1), np.zeros(1, dtype=np.int64), HEXAGON)
    assert watch.reached(evaluation).tolist() == [True, False]
    assert (
        StayWatch(None, np.ones(1), np.zeros(1, dtype=np.int64), HEXAGON).reached(evaluation).tolist()
        == [False] * 2
    )

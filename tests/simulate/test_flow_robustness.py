"""The exact flow gets through what used to stop it: grazing returns, fitted samples, repeated and collinear
samples, at any tolerance; and it keeps an event log on request (docs/flow.md, "Robustness")."""

from functools import cache

import numpy as np
import pytest

from fls.simulate import init_params, make_data
from fls.simulate.flow import SWEEP_ATOL_PER_RTOL, SWEEP_METHOD, SWEEP_RTOL, integrate_flow
from fls.simulate.flow.hybrid import TRANSITIONS, InstantMemory
from fls.simulate.flow.modes import ACTIVE, INACTIVE, SLIDING, select_neuron_mode
from fls.simulate.flow.problems import repeated_sample_problem, switching_problem

#: The stop time of the reproducer below, from the tightest run (rtol 1e-12): an independent piecewise
#: integrator reaches the target at t = 0.916 as well.
REPRODUCER_STOP = 0.91604533


@pytest.mark.parametrize("rtol", [1e-7, 1e-8, 1e-9, 1e-10])
def test_the_sweep_reproducer_reaches_its_target_at_the_sweep_tolerances(rtol):
    """gaussian_mixture, d = 20, n = 10, m = 20, alpha = 10, seed 1, random_sign, atol = rtol * 1e-3 (what the
    sweep runner passes): it used to repeat one event 201 times at t = 0.3718 (a pair turned back at once,
    inside one sample interval) and, with n = 40, at a sample fitted to s ~ 1e-31."""
    data = make_data("gaussian_mixture", d=20, n=10, n_test=500, kappa=2.0, sigma=1.0, balanced=True, seed=1)
    W, v = init_params(20, 20, alpha=10.0, scheme="random_sign", seed=1)
    run = integrate_flow(W, v, data.X, data.y, target_risk=0.05, t_max=1e4, rtol=rtol, atol=rtol * 1e-3)
    assert run.status == "target_reached", run.message
    assert run.t_stop == pytest.approx(REPRODUCER_STOP, rel=3e-6)


def test_the_reproducer_at_n_40_reaches_its_target():
    data = make_data("gaussian_mixture", d=20, n=40, n_test=500, kappa=2.0, sigma=1.0, balanced=True, seed=1)
    W, v = init_params(20, 20, alpha=10.0, scheme="random_sign", seed=1)
    run = integrate_flow(W, v, data.X, data.y, target_risk=0.05, t_max=1e4, rtol=1e-8, atol=1e-11)
    assert run.status == "target_reached", run.message


@cache
def wide_reference_stop() -> float:
    W, v, X, y = repeated_sample_problem(1000, 1.0)
    return integrate_flow(
        W, v, X, y, target_risk=0.1, t_max=1e3, rtol=1e-12, atol=1e-15, method="RK45"
    ).t_stop


@pytest.mark.parametrize("rtol", [1e-6, 1e-8, 1e-10])
def test_a_wide_network_on_repeated_and_collinear_samples_reaches_its_target(rtol):
    """m = 1000, 186 samples in d = 2 on 31 surfaces: it used to fail at t = 0 (a singular Gram matrix) and,
    with that patched, repeat events at t ~ 7 (each copy's Filippov weight was slid on by itself)."""
    W, v, X, y = repeated_sample_problem(1000, 1.0)
    run = integrate_flow(W, v, X, y, target_risk=0.1, t_max=1e3, rtol=rtol, atol=rtol * 1e-3, method="RK45")
    assert run.status == "target_reached", run.message
    assert run.t_stop == pytest.approx(wide_reference_stop(), rel=1e3 * rtol)


def test_repeated_samples_give_the_flow_of_the_distinct_samples_weighted():
    """Doubling every sample changes nothing (the risk is a mean); a copy is one surface, not two."""
    W, v, X, y = switching_problem()
    single = integrate_flow(
        W, v, X, y, target_risk=0.1, t_max=200.0, rtol=1e-11, atol=1e-13, record_events=True
    )
    double = integrate_flow(
        W,
        v,
        np.concatenate([X, X]),
        np.concatenate([y, y]),
        target_risk=0.1,
        t_max=200.0,
        rtol=1e-11,
        atol=1e-13,
        record_events=True,
    )
    assert double.status == single.status == "target_reached"
    assert double.t_stop == pytest.approx(single.t_stop, rel=1e-9)
    assert np.allclose(double.W, single.W, rtol=1e-8, atol=1e-10)
    assert (double.switches, double.sliding_entries) == (single.switches, single.sliding_entries)
    assert np.array_equal(double.info["event_log"]["sample"], single.info["event_log"]["sample"])


def test_the_event_log_lists_every_transition_with_its_time_neuron_sample_and_kind():
    W, v, X, y = switching_problem()
    run = integrate_flow(W, v, X, y, target_risk=0.1, t_max=200.0, record_events=True)
    log = run.info["event_log"]
    kinds = log["kind"].tolist()
    assert set(kinds) == set(TRANSITIONS)  # this problem crosses, enters and leaves sliding
    assert (kinds.count("cross"), kinds.count("enter_sliding")) == (run.switches, run.sliding_entries)
    assert kinds.count("leave_sliding") == run.info["sliding_exits"]
    assert np.all(np.diff(log["t"]) >= 0) and 0 <= log["t"].min() and log["t"].max() <= run.t_stop
    assert set(log["neuron"].tolist()) <= set(range(len(v))) and set(log["sample"].tolist()) <= set(
        range(len(y))
    )
    for t, j, i, kind in zip(log["t"], log["neuron"], log["sample"], kinds, strict=True):
        W_t, _ = run.dense(t)  # on its surface at its event
        assert abs(W_t[j] @ X[i]) <= 1e-7 * np.linalg.norm(W_t[j]) * np.linalg.norm(X[i]), (t, j, i, kind)
    assert "event_log" not in integrate_flow(W, v, X, y, target_risk=0.1, t_max=200.0).info


def test_the_sweep_defaults_meet_the_sweep_accuracy_on_low_signal():
    """SWEEP_METHOD at SWEEP_RTOL (atol = rtol * SWEEP_ATOL_PER_RTOL): 1e-6 relative in the state at the time of
    R = 0.05 on low_signal at alpha = 3 (274 events), against DOP853 at rtol 1e-12."""
    data = make_data("gaussian_mixture", preset="low_signal", n_test=100, seed=0)
    W, v = init_params(100, 100, alpha=3.0, scheme="random_sign", seed=0)
    T = 1.6689897711
    reference = integrate_flow(W, v, data.X, data.y, t_max=T, rtol=1e-12, atol=1e-15, save_at=[0.0])
    run = integrate_flow(
        W, v, data.X, data.y, t_max=T, rtol=SWEEP_RTOL, atol=SWEEP_RTOL * SWEEP_ATOL_PER_RTOL,
        method=SWEEP_METHOD, save_at=[0.0],
    )
    state, exact = (np.concatenate([r.W.ravel(), r.v]) for r in (run, reference))
    assert np.abs(state - exact).max() <= 1e-6 * np.abs(exact).max()


def test_the_events_of_one_instant_keep_what_earlier_ones_decided():
    """A pair's wrong-way exit and another neuron's weight exit at one instant: the slow tier found them undoing
    each other's selection in turn until ``failed`` (each event re-selected every touched neuron and forgot the
    side the pair had left, the dip already tolerated and the weight's exit side). The instant's memory keeps
    them until time advances."""
    memory = InstantMemory()
    side = np.array([[ACTIVE, INACTIVE], [SLIDING, ACTIVE]], dtype=np.int8)
    memory.left_wrong_way([0], 1, side, n=2)  # neuron 0 left the inactive side of sample 1 at once
    assert memory.with_hints({1: {0: INACTIVE}}) == {1: {0: INACTIVE}}  # neuron 1's weight left through 0
    assert memory.stuck == {0: {1: INACTIVE}} and not memory.grazing
    assert memory.with_hints({}) == {1: {0: INACTIVE}}  # a later event of the instant still has the hint
    memory.left_wrong_way([0], 1, side, n=2)  # again: below the resolution, the pair keeps its side
    assert memory.stuck == {0: {}} and memory.grazing == {1}
    memory.clear()
    assert not (memory.repeats or memory.stuck or memory.grazing or memory.hints)


def test_a_side_left_the_wrong_way_is_not_given_again_after_another_event_of_the_instant():
    """Sample 0 is non-attracting (sign(v) s_0 > 0) and its one-sided rates point to the active side; it left the
    active side the wrong way earlier in the instant, took the inactive side and is re-selected at a later event:
    it must not go back to the active side (it did, when only the side at the current event was forbidden)."""
    X = np.array([[1.0, 0.0], [1.0, 1.0]])  # the active sample 1 pushes <w, x_0> up
    s = np.array([1.0, 0.5])
    side = np.array([INACTIVE, ACTIVE], dtype=np.int8)
    touching = np.array([0])
    fresh = select_neuron_mode(X, s, 1.0, side, touching, side.copy())
    assert fresh[0] == ACTIVE
    kept = select_neuron_mode(X, s, 1.0, side, touching, side.copy(), stuck={0: ACTIVE})
    assert kept[0] == INACTIVE


#: Two problems of the stress suite's fast tier (exponential loss, all labels -1, three copies of one sample).
SHARED_INSTANT = {
    "W": [[2.44698628, -4.83902333, 1.05928151], [2.15035640, -0.0319530174, 0.00121504512],
          [-1.80180620, -0.509869964, 0.715250997], [-1.56467495, -0.368560049, 2.72778485]],
    "v": [5.52503085, 2.15059413, 2.00450915, 3.16620505],
    "X": [[0.34558419, 0.82161814, 0.33043708], [-1.30315723, 0.90535587, 0.44637457],
          [-0.53695324, 0.5811181, 0.3645724], [0.2941325, 0.02842224, 0.54671299],
          [-0.73645409, -0.16290995, -0.48211931], [0.59884621, 0.03972211, -0.29245675],
          [-0.78190846, -0.25719224, 0.00814218], [-0.27560291, 1.29406381, 1.00672432],
          [-2.71116248, -1.88901325, -0.17477209], [0.34558419, 0.82161814, 0.33043708],
          [0.34558419, 0.82161814, 0.33043708], [2.04277161, 0.646703, 0.66306337]],
}  # fmt: skip
TURNED_BACK_NEAR_0 = {
    "W": [[2.99693389, -5.92656901], [1.29734960, 2.63363797], [-0.0391342941, 0.00148812028],
          [-2.20675290, -0.624460623], [0.875999991, -1.91632762]],
    "v": [6.64122225, 2.93584144, 0.03916258, 2.29340564, 2.1070566],
    "X": [[0.34558419, 0.82161814], [0.33043708, -1.30315723], [0.90535587, 0.44637457],
          [-0.53695324, 0.5811181], [0.3645724, 0.2941325], [0.02842224, 0.54671299],
          [-0.73645409, -0.16290995], [-0.48211931, 0.59884621], [0.03972211, -0.29245675],
          [0.34558419, 0.82161814], [0.34558419, 0.82161814], [1.29406381, 1.00672432]],
}  # fmt: skip


def stress_runs(problem: dict, method: str, rtol: float, atol: float):
    """The problem's run with ``method`` and the DOP853 run at 100x tighter tolerances, to t = 1."""
    W, v, X = (np.array(problem[key]) for key in ("W", "v", "X"))
    options = {"loss": "exponential", "t_max": 1.0, "save_at": [0.0]}
    y = -np.ones(len(X))
    run = integrate_flow(W, v, X, y, rtol=rtol, atol=atol, method=method, **options)
    tight = integrate_flow(W, v, X, y, rtol=rtol / 100, atol=atol / 100, method="DOP853", **options)
    return run, tight


def test_two_sliding_weights_leaving_at_one_instant_do_not_repeat_until_failed():
    """Neurons 2 and 3 slide on one surface; at t = 0.0111 both weights leave through a bound and the pairs
    come back at once: with the instant's memory but the weight's second exit not counted as the pair's,
    they re-entered sliding 201 times."""
    run, tight = stress_runs(SHARED_INSTANT, "RK23", 1e-5, 1e-4)
    assert run.status == tight.status == "t_max", run.message
    assert np.abs(run.W - tight.W).max() <= 1e3 * (1e-5 * np.abs(tight.W).max() + 1e-4)


def test_a_pair_that_drifts_back_through_its_surface_in_tiny_steps_is_not_missed():
    """Pair (3, 1) crosses at t = 4e-28 onto its inactive side, its guard rises to 2.4e-14 (cosine units) and
    comes back at t ~ 3e-13. RK23 steps of ~5e-24 there take it through 0 without reaching -threshold in
    any one step; it used to stay inactive while its cosine grew positive (a different mode sequence to
    t = 1); now it slides, as with DOP853, Radau and RK45."""
    run, tight = stress_runs(TURNED_BACK_NEAR_0, "RK23", 1e-5, 1e-4)
    assert run.sliding_entries == tight.sliding_entries
    assert np.abs(run.W - tight.W).max() <= 1e3 * (1e-5 * np.abs(tight.W).max() + 1e-4)

"""Stress: the exact flow on random problems never fails and agrees with itself at a 100x tighter tolerance.

Problems (docs/flow.md, "Robustness"): n in 2..30 samples with repeated and collinear ones (same or opposite
direction), d in 1..30 (d = 1, where every surface is {w = 0}, in a quarter of the examples), m in 1..40,
alpha log-uniform in [1e-4, 100], every init scheme and loss, rtol log-uniform in [1e-11, 1e-5] with atol drawn independently in [1e-14, 1e-4], every
coordinate system the init allows and every method (the implicit ones, whose dense Jacobian is m (d + 1)
square, on problems with m (d + 1) <= 120). Every run must end ``target_reached``, ``t_max`` or
``not_reached`` (``diverged`` only where the field overflows float64 at the start, ``failed`` only where a
neuron reached its origin and the flow is certified not unique there: :func:`first_not_unique`) and agree with a reference run (DOP853 at rtol / 100 and atol / 100, in plain coordinates where the run's are data-span ones: :func:`reference_coordinates`): stop time and final state to
``AGREEMENT`` times the tolerance it was given (the tolerances bound the error per step, the agreement is a
global one over the run, through every event; a stop time also agrees as a root of R(t) = target, where the
risk levels off at the target: :func:`stop_time_agrees`). Where the run, its reference or the amplification's
perturbed run reaches or passes through a neuron's origin at which the flow is certified not unique, the runs
may follow different solutions after it: they are compared, and the amplification measured, at the first such
instant (:func:`agrees_before_passage`; docs/flow.md, "A neuron at its origin"). The fast tier (CI) draws
smaller problems (n <= 12, d <= 8, m <= 8), t_max <= 3 and rtol >= 1e-9 (200 examples with d >= 2 and 100
with d = 1); the slow tier the full ranges.

Why the bound is scaled by the problem's own amplification (docs/flow.md, "Robustness"). The tolerances bound
the local error of each step; the global error is the sum of those errors, each carried to the end by the
flow's sensitivity to a perturbation at its time. No method's global error is the tolerance times a constant
that does not depend on the problem: the escape from a small initialization (weights ~1e-4) multiplies an
error made early by about the ratio of the final to the initial weights (~1e4). So when the fixed bound
``AGREEMENT`` x tolerance fails, the check measures the amplification A: the reference integrator run again from
the initial state perturbed by a known relative amount (:func:`perturbation_size`, fixed random signs) gives
A = max |state change at the end| / max |state change at the start| and the same for the stop time, and the run
must then agree to ``AGREEMENT`` x tolerance x max(1, A). A wrong run is still caught: on a problem that does
not amplify errors, A ~ 1 and the bound is the fixed one; where A is large, the bound grows by what was
measured, never by a guess.
"""

import math
from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fls.simulate.flow import integrate_flow
from fls.simulate.flow.api import is_balanced, make_coordinates
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.initialization import INIT_SCHEMES, init_params
from fls.theory import compile_field, vector_field
from fls.theory.symbolic import LOSSES
from tests.simulate.origin_escape import (
    arrival_at_the_origin,
    failed_at_the_origin,
    failed_neuron,
    first_passage,
    passage_radius,
)

METHODS = ("DOP853", "RK45", "RK23", "RK12", "Radau", "BDF")
IMPLICIT_SIZE = 120
#: Global agreement with the 100x tighter run, in units of the run's tolerance (rtol relative to the state's
#: scale, plus atol): errors per step add up over the steps and events of a run.
AGREEMENT = 1e3
OK = ("target_reached", "t_max", "not_reached")
#: A field beyond about this size has no float64 square: the error norms of every method overflow.
REPRESENTABLE = 1e150
#: The amplification's initial perturbation, relative to each component, in units of the run's rtol (1e3
#: times the reference's own tolerance, so the reference's error does not mask it), at most
#: MAX_PERTURBATION (small enough that the flow responds linearly).
PERTURBATION_PER_RTOL = 1e5
MAX_PERTURBATION = 1e-4
EPS = float(np.finfo(np.float64).eps)


@dataclass
class Problem:
    W: np.ndarray
    v: np.ndarray
    X: np.ndarray
    y: np.ndarray
    loss: str
    target_risk: float | None
    t_max: float
    rtol: float
    atol: float
    method: str
    coords: str


def log_uniform(low: float, high: float):
    return st.floats(math.log10(low), math.log10(high)).map(lambda e: 10.0**e)


@st.composite
def samples(draw, n: int, d: int) -> np.ndarray:
    """n samples in d dimensions, some repeated and some collinear with earlier ones (either direction)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.standard_normal((n, d))
    for i in range(1, n):
        kind = draw(st.sampled_from(("fresh", "fresh", "repeat", "collinear")))
        if kind == "repeat":
            X[i] = X[draw(st.integers(0, i - 1))]
        elif kind == "collinear":
            X[i] = draw(st.sampled_from((-2.0, -0.5, 0.5, 3.0))) * X[draw(st.integers(0, i - 1))]
    return X


def dimensions(max_d: int = 30) -> st.SearchStrategy[int]:
    """d in 1..max_d, d = 1 (every surface is {w = 0}) in about a quarter of the draws."""
    return st.integers(0, 3).flatmap(lambda k: st.just(1) if k == 0 else st.integers(2, max_d))


@st.composite
def problems(
    draw,
    max_n: int = 30,
    dims: st.SearchStrategy[int] | None = None,
    max_m: int = 40,
    max_t: float = 30.0,
    min_rtol: float = 1e-11,
) -> Problem:
    """A random problem; ``dims`` draws d (default :func:`dimensions`)."""
    n, d, m = (
        draw(st.integers(2, max_n)),
        draw(dimensions() if dims is None else dims),
        draw(st.integers(1, max_m)),
    )
    X = draw(samples(n, d))
    y = np.array(draw(st.lists(st.sampled_from((-1.0, 1.0)), min_size=n, max_size=n)))
    scheme = draw(st.sampled_from(INIT_SCHEMES))
    if scheme == "antisymmetric" and m % 2:
        m += 1
    alpha = draw(log_uniform(1e-4, 100.0))
    W, v = init_params(m, d, alpha=alpha, scheme=scheme, seed=draw(st.integers(0, 2**16)))
    method = draw(st.sampled_from(METHODS if m * (d + 1) <= IMPLICIT_SIZE else METHODS[:4]))
    coords = ("auto", "plain", "span") + (("log",) if is_balanced(W, v) else ())
    return Problem(
        W,
        v,
        X,
        y,
        loss=draw(st.sampled_from(LOSSES)),
        target_risk=draw(st.none() | st.floats(0.05, 0.6)),
        t_max=draw(log_uniform(0.1, max_t)),
        rtol=draw(log_uniform(min_rtol, 1e-5)),
        atol=draw(log_uniform(1e-14, 1e-4)),
        method=method,
        coords=draw(st.sampled_from(coords)),
    )


def reference_coordinates(problem: Problem) -> str:
    """The reference run's coordinates: the run's, but plain where those are data-span ones (asked for, or
    chosen by 'auto' for DOP853). A data-span state starts at 0, so its tolerance is atol alone, and at the
    reference's atol / 100 (down to 1e-16) that is below the roundoff of w = w(0) + sum lambda x: Radau's
    Newton iteration fails there and DOP853 is held at its stability boundary (a stored problem, n = 25,
    d = 29, m = 34: 121 s, against 14 s in plain coordinates). Plain coordinates integrate the same flow,
    with the analytic Jacobian, and are independent of the run's coordinates."""
    arithmetic = float_arithmetic(problem.loss)
    coordinates = make_coordinates(
        problem.coords, problem.W, problem.v, problem.X, problem.y, 1.0, arithmetic
    )
    return "plain" if coordinates.name == "span" else problem.coords


def reference_atol(problem: Problem) -> float:
    """The reference run's atol: the run's / 100, but not below the roundoff of the largest initial weight,
    eps max |(W(0), v(0))| (docs/flow.md, "Robustness", "A reference tighter than the weights' roundoff").

    A weight of that state is not represented more finely, and the field, a sum of terms of that size and
    more, is not computed more finely either: an error per step below it is below what the field resolves.
    Radau's Newton iteration then converges only at steps of about 1e-7 (a stored problem with weights of 160,
    atol 1e-16), so the stiffness test's trial rightly keeps DOP853, held at its stability boundary: about
    5e5 evaluations per time unit. The floor is at most 2.2e-8 max |(W(0), v(0))| times the run's bound
    (1000 (rtol scale + atol) with rtol >= 1e-11): about 1e-5 of it at the largest initial weights drawn (about
    500), so it takes nothing from the check."""
    largest = max(float(np.abs(problem.W).max(initial=0.0)), float(np.abs(problem.v).max(initial=0.0)))
    return max(problem.atol / 100, float(np.finfo(np.float64).eps) * largest)


def run(problem: Problem, reference: bool = False, **options):
    """The problem's run, or its reference: DOP853 at 100x tighter tolerances (rtol at least 1e-14, atol at
    least :func:`reference_atol`), in :func:`reference_coordinates`; ``options`` go to :func:`integrate_flow`
    as they are (``record_events=True``, for one; ``save_at`` replaces the start)."""
    return integrate_flow(
        problem.W,
        problem.v,
        problem.X,
        problem.y,
        loss=problem.loss,
        target_risk=problem.target_risk,
        t_max=problem.t_max,
        rtol=max(problem.rtol / 100, 1e-14) if reference else problem.rtol,
        atol=reference_atol(problem) if reference else problem.atol,
        method="DOP853" if reference else problem.method,
        coords=reference_coordinates(problem) if reference else problem.coords,
        **{"save_at": [0.0], **options},
    )


def state_of(result) -> np.ndarray:
    """The final (W, v) of a run as one vector."""
    return np.concatenate([result.W.ravel(), result.v])


def states_at_one_time(result, other) -> tuple[np.ndarray, np.ndarray]:
    """The states of two runs of one problem at the same time: their final states, or, where their stop times
    differ (a target located to the tolerance), the later run's dense output at the earlier stop time. The
    stop times are compared on their own; a state read at a stop time that is off by dt also differs by
    |field| dt, which says nothing more about the state (DOP853, squared loss: 1.7 times the bound from
    dt = 2.1e-6, and 1e-5 of it at one time)."""
    if result.t_stop == other.t_stop:
        return state_of(result), state_of(other)
    early, late = (result, other) if result.t_stop < other.t_stop else (other, result)
    W, v = late.dense(early.t_stop)
    pair = (state_of(early), np.concatenate([W.ravel(), v]))
    return pair if early is result else pair[::-1]


def perturbation_size(problem: Problem) -> float:
    """The relative size of the amplification's initial perturbation (:data:`PERTURBATION_PER_RTOL`)."""
    return min(MAX_PERTURBATION, PERTURBATION_PER_RTOL * problem.rtol)


def perturbed(problem: Problem) -> Problem:
    """The problem from an initial state whose every component is changed by +-perturbation_size relative
    (fixed random signs); a balanced init stays balanced (v_j = +-||w_j||), as log coordinates need."""
    signs = np.random.default_rng(0).choice((-1.0, 1.0), size=problem.W.size + problem.v.size)
    delta = perturbation_size(problem)
    W = problem.W * (1.0 + delta * signs[: problem.W.size].reshape(problem.W.shape))
    if is_balanced(problem.W, problem.v):
        v = np.sign(problem.v) * np.linalg.norm(W, axis=1)
    else:
        v = problem.v * (1.0 + delta * signs[problem.W.size :])
    return replace(problem, W=W, v=v)


def perturbed_run(problem: Problem):
    """The :func:`perturbed` problem and its run by the reference integrator, with its event log (for its
    passages through an origin: :func:`first_not_unique`)."""
    changed = perturbed(problem)
    return changed, run(changed, reference=True, record_events=True)


def initial_change(problem: Problem, changed: Problem) -> float:
    """The largest change of an initial weight from ``problem`` to ``changed`` (:func:`perturbed`)."""
    return float(max(np.abs(changed.W - problem.W).max(), np.abs(changed.v - problem.v).max()))


def amplification(problem: Problem, tight, moving=None) -> tuple[float, float]:
    """(A, A_t): how much the reference run's final state and stop time move per unit of a change of the
    initial state (max norms), measured with the reference integrator from :func:`perturbed` initial state
    (``moving``: that problem and its run, from :func:`perturbed_run`, where already made)."""
    changed, moved = perturbed_run(problem) if moving is None else moving
    assert moved.status in OK, moved.message
    start = initial_change(problem, changed)
    final, reference = states_at_one_time(moved, tight)
    return float(np.abs(final - reference).max() / start), abs(moved.t_stop - tight.t_stop) / start


def risk_gap(problem: Problem, late, t: float) -> tuple[float, float]:
    """(R(t) - target, ||grad R(t)||_1) on the dense output of the run ``late`` at a time t at or before its
    stop: how far that run was from the target at t, and how much a state error of 1 (max norm) moves R."""
    W, v = late.dense(t)
    risk = float(compile_field(problem.loss).risk(W, v, problem.X, problem.y))
    dW, dv = vector_field(W, v, problem.X, problem.y, loss=problem.loss)  # -grad R
    return risk - problem.target_risk, float(np.abs(dW).sum() + np.abs(dv).sum())


def stop_time_agrees(problem: Problem, result, tight, tolerance: float, growth: float) -> bool:
    """Where the stop times differ by more than the time bound, whether they still agree as roots of
    R(t) = target: the later run's risk at the earlier stop time is within what a state error of
    ``tolerance`` x max(1, growth) moves R (||grad R||_1 times it, first order) and 1000 roundoffs of the target,
    on either side (a later run already well below the target at the earlier stop missed its crossing).

    That is the root's backward error. Its forward error, the stop time itself, is that divided by |dR/dt| =
    ||grad R||_2^2, which is unbounded where the risk levels off at the target: a risk that decays to a floor
    equal to the target (to 1e-12 from t = 0.0095 on a stored problem, squared loss) is met at a time set by
    the state's last digits, and tight runs stop anywhere in [0.0114, 0.0119]."""
    if not (result.status == tight.status == "target_reached"):
        return False
    early, late = (result, tight) if result.t_stop < tight.t_stop else (tight, result)
    gap, slope = risk_gap(problem, late, early.t_stop)
    return abs(gap) <= slope * tolerance * max(1.0, growth) + AGREEMENT * EPS * problem.target_risk


def fixed_bound(problem: Problem, reference: np.ndarray) -> float:
    """``AGREEMENT`` x the run's tolerance, rtol relative to the reference state's scale (at least 1) plus atol."""
    return AGREEMENT * (problem.rtol * max(1.0, float(np.abs(reference).max())) + problem.atol)


def errors_at_the_end(problem: Problem, result, tight) -> tuple[float, float, float, float]:
    """(state error, its fixed bound, stop time error, its fixed bound) of the run against its reference, the
    states at one time (:func:`states_at_one_time`)."""
    state, reference = states_at_one_time(result, tight)
    tolerance = fixed_bound(problem, reference)
    time_tolerance = AGREEMENT * problem.rtol * max(1.0, tight.t_stop)
    return (
        float(np.abs(state - reference).max()),
        tolerance,
        abs(result.t_stop - tight.t_stop),
        time_tolerance,
    )


def agrees_to_the_fixed_bound(problem: Problem, result, tight) -> bool:
    """Whether the run agrees with its reference in state and stop time to ``AGREEMENT`` x its tolerance."""
    error, tolerance, time_error, time_tolerance = errors_at_the_end(problem, result, tight)
    return error <= tolerance and time_error <= time_tolerance + tolerance


def agreement(problem: Problem, result, tight, moving=None) -> None:
    """The run agrees with its 100x tighter reference run: state (at one time, :func:`states_at_one_time`) and
    stop time to ``AGREEMENT`` times the tolerance, or, where that fails, to that times max(1, the problem's
    measured amplification), the stop time either so or as a root of R(t) = target
    (:func:`stop_time_agrees`) (module docstring); ``moving`` as for :func:`amplification`."""
    if agrees_to_the_fixed_bound(problem, result, tight):
        return
    error, tolerance, time_error, time_tolerance = errors_at_the_end(problem, result, tight)
    growth, time_growth = amplification(problem, tight, moving)
    assert error <= tolerance * max(1.0, growth), (
        f"state {error / tolerance:.3g} x the bound; amplification {growth:.3g}"
    )
    assert time_error <= time_tolerance + tolerance * max(1.0, time_growth) or stop_time_agrees(
        problem, result, tight, tolerance, growth
    ), f"stop time {time_error:.3g} off; amplification {time_growth:.3g}"


def first_not_unique(problem: Problem, runs) -> float:
    """The first time any of ``runs`` has a neuron at its origin, to the precision that run was given, where
    the flow is not unique there (the independent certificate of ``tests/simulate/origin_escape.py``):
    beyond it runs may follow different solutions. A run that passes through such an origin has a burst of
    the neuron's events there (:func:`first_passage`); one that ends ``failed`` must be at the origin of the
    neuron its message names, with both solutions certified, and arrived there at the first instant its
    neuron was within its precision of w_j = 0; or, where the engine froze that neuron there (a unique stay,
    simulate/flow/freeze.py), its run ended where the neuron may leave (a descent certified at the origin),
    the time the stay stopped being unique. Infinity where no run has such an instant."""
    first = math.inf
    for each in runs:
        first = min(first, first_passage(each, problem.X, problem.y, problem.loss))
        if each.status != "failed":
            continue
        contact = failed_at_the_origin(problem.W, problem.v, problem.X, problem.y, problem.loss, each)
        j = failed_neuron(each.message)
        if j in each.info.get("stays", {}).get("neuron", ()):  # frozen there, unique until it may leave
            assert contact.at_origin and contact.leaves, f"{each.message}; at the origin of its neuron: {contact}"
            first = min(first, each.t_stop)
            continue
        assert contact.not_unique, f"{each.message}; at the origin of its neuron: {contact}"
        radius = max(contact.radius, passage_radius(each, each.W, each.v))
        first = min(first, arrival_at_the_origin(each, j, radius))
    return first


def fixed_error_at(problem: Problem, result, tight, t: float) -> tuple[float, float]:
    """(state error, fixed bound) of the run against its reference at a time t before both stop."""
    state, reference = (np.concatenate([W.ravel(), v]) for W, v in (result.dense(t), tight.dense(t)))
    return float(np.abs(state - reference).max()), fixed_bound(problem, reference)


def agrees_before_passage(problem: Problem, result, tight, moving, t: float) -> None:
    """The run agrees with its reference at the time t of a passage through a neuron's origin where the flow
    is not unique (:func:`first_not_unique`): to the fixed bound, or to it times max(1, A) with the
    amplification A measured at t as well (``moving`` from :func:`perturbed_run`, read at t or at its stop
    if earlier). Stop times are not compared: after t the runs may follow different solutions."""
    error, tolerance = fixed_error_at(problem, result, tight, t)
    if error <= tolerance:
        return
    changed, moved = moving
    growth = fixed_error_at(problem, moved, tight, min(t, moved.t_stop))[0] / initial_change(problem, changed)
    assert error <= tolerance * max(1.0, growth), (
        f"state {error / tolerance:.3g} x the bound at t = {t:.10g}, a neuron at w = 0; amplification {growth:.3g}"
    )


def check(problem: Problem) -> None:
    """The run ends in a usable or honest status and agrees with the 100x tighter run (:func:`agreement`).

    The one exception: a problem whose field overflows float64 at the start, or whose square does (an
    exponential loss at margins beyond about -350), cannot be integrated in float64 (every error norm
    squares it) may say so ('diverged' at t = 0) and is not compared.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        dW, dv = vector_field(problem.W, problem.v, problem.X, problem.y, loss=problem.loss)
        size = max(np.abs(dW).max(), np.abs(dv).max())
    if not size < REPRESENTABLE:
        result = run(problem)
        assert result.status in OK or (result.status == "diverged" and result.t_stop == 0.0), result.message
        return
    result = run(problem, record_events=True)
    assert result.status in OK + ("failed",), result.message
    tight = run(problem, reference=True, record_events=True)
    assert tight.status in OK + ("failed",), tight.message
    if "failed" not in (result.status, tight.status):
        if result.status != tight.status:  # only a stop time that sits at t_max to the tolerance may differ
            assert {result.status, tight.status} == {"target_reached", "not_reached"}
        if agrees_to_the_fixed_bound(problem, result, tight):
            return
    horizon = min(result.t_stop, tight.t_stop)
    passage = first_not_unique(problem, (result, tight))
    if passage <= horizon:
        error, tolerance = fixed_error_at(problem, result, tight, passage)
        if error <= tolerance:
            return
    moving = perturbed_run(problem)
    passage = min(passage, first_not_unique(problem, (moving[1],)))
    if passage <= horizon:
        agrees_before_passage(problem, result, tight, moving, passage)
        return
    assert result.status in OK and tight.status in OK, f"{result.message}; {tight.message}"
    agreement(problem, result, tight, moving)


def escape_problem(alpha: float, t_max: float) -> Problem:
    """6 samples in 3-d, 4 neurons, logistic loss, RK45 at rtol 1e-8: from alpha = 1e-4 the weights grow to
    0.68 by t = 20 (an escape from a small init); from alpha = 1 they stay of order 1."""
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((6, 3)), np.sign(rng.standard_normal(6))
    W, v = init_params(4, 3, alpha=alpha, scheme="random_sign", seed=2)
    return Problem(W, v, X, y, "logistic", None, t_max, rtol=1e-8, atol=1e-10, method="RK45", coords="plain")


def test_the_amplification_of_an_escape_from_a_small_init_is_measured():
    small = escape_problem(1e-4, 20.0)
    growth, _ = amplification(small, run(small, reference=True))
    assert 1e3 < growth < 1e5  # about the ratio of the final weights (0.68) to the initial ones (~1e-4)
    steady = escape_problem(1.0, 3.0)
    assert amplification(steady, run(steady, reference=True))[0] < 2


@pytest.mark.parametrize(("alpha", "t_max"), [(1e-4, 20.0), (1.0, 3.0)])
def test_the_agreement_check_rejects_a_wrong_final_state(alpha, t_max):
    problem = escape_problem(alpha, t_max)
    result, tight = run(problem), run(problem, reference=True)
    agreement(problem, result, tight)
    fixed = AGREEMENT * (problem.rtol * max(1.0, np.abs(state_of(tight)).max()) + problem.atol)
    growth, _ = amplification(problem, tight)
    if growth > 10:  # beyond the fixed bound, within the measured amplification's
        agreement(problem, replace(result, W=result.W + 2 * fixed), tight)
    with pytest.raises(AssertionError, match="x the bound"):
        agreement(problem, replace(result, W=result.W + 2 * fixed * max(1.0, growth)), tight)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(problems(max_n=12, dims=st.integers(2, 8), max_m=8, max_t=3.0, min_rtol=1e-9))
def test_the_flow_never_fails_on_small_random_problems(problem):
    check(problem)


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(problems(max_n=12, dims=st.just(1), max_m=8, max_t=3.0, min_rtol=1e-9))
def test_the_flow_never_fails_on_small_one_dimensional_problems(problem):
    """d = 1: neurons pass through w = 0 (and swap their active samples) or slide there."""
    check(problem)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(problems())
def test_the_flow_never_fails_on_random_problems(problem):
    check(problem)

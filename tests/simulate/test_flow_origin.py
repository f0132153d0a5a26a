"""A neuron whose first layer reaches w_j = 0, where the flow is not unique (docs/flow.md, "Robustness" and
"Limits").

``neuron_at_the_origin`` (tests/simulate/data/) was drawn by the slow tier of the stress suite: RK23 in
data-span coordinates, squared loss, n = 9, d = 2, m = 39, rtol 3.2e-10, atol 5.7e-7, gaussian-like
unbalanced init (|v_6| = 0.008 against |w_6| = 2.9e-4), samples with repeats and opposite multiples
(x1 = -x0 / 2, x4 = x0, x3 = -2 x2, x7 = -6 x2). Neuron 6 slides on the surface of sample 5 from t = 0.112
towards w_6 = 0 at a radial speed that does not shrink, and reaches it at t = 0.37324: there staying at the
origin and leaving along the surface of samples 2, 3, 7 are both Filippov solutions, so the run ends
``failed`` at that instant and the stress check accepts it (``origin_escape``).

``passage_through_an_origin`` and ``passage_through_an_origin_perturbed_fails`` (the slow tier, seed 9307:
RK23 in data-span coordinates, exponential loss, n = 16, d = 2 with the samples on a few lines through the
origin, m = 38, rtol 1e-11, atol 2.7e-11) *pass through* such origins: neuron 23 at t = 0.25336 and neuron 33
at t = 2.34586 (first problem), neuron 23 at t = 1.24134 (second), with a burst of the neuron's events at
one instant. In the first the run leaves neuron 33's origin at -126.4 degrees and its reference at -65.4,
and they end 0.17 apart; in the second the amplification's perturbed run ends ``failed`` at neuron 23's.
The check compares the runs, and measures the amplification, up to the first such passage.
"""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fls.simulate.flow import origin
from fls.simulate.flow.api import make_coordinates
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.modes import Mode, SlidingWeights
from fls.simulate.flow.samples import SampleGroups
from fls.theory import compile_field
from tests.simulate import origin_escape
from tests.simulate.origin_escape import failed_at_the_origin, first_passage, origin_contact
from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import (
    agrees_before_passage,
    check,
    first_not_unique,
    fixed_error_at,
    perturbed_run,
    run,
)

#: The instant neuron 6 reaches its origin (every engine and tolerance that fails there, to 1e-7).
ARRIVAL = 0.37324


def test_a_neuron_at_its_origin_fails_there_and_the_check_accepts_it():
    problem = stored_problem("neuron_at_the_origin")
    result = run(problem)
    assert result.status == "failed"
    assert "(neuron 6, " in result.message and "reached w = 0" in result.message, result.message
    assert abs(result.t_stop - ARRIVAL) < 1e-5
    contact = failed_at_the_origin(problem.W, problem.v, problem.X, problem.y, problem.loss, result)
    assert contact.norm < 1e-18 and contact.stays and contact.descent > 1e-5  # -phi = 8.7e-5 at best
    check(problem)


def test_the_check_rejects_a_failure_away_from_the_origin():
    problem = stored_problem("neuron_at_the_origin")
    result = run(problem, record_events=True)
    W = result.W.copy()
    W[6] = [1e-3, 2e-3]
    with pytest.raises(AssertionError, match="at the origin of its neuron"):
        first_not_unique(problem, (replace(result, W=W),))


@pytest.mark.parametrize("name", ["passage_through_an_origin", "passage_through_an_origin_perturbed_fails"])
def test_runs_that_pass_through_an_origin_agree_until_the_passage(name):
    check(stored_problem(name))


def test_a_passage_is_a_burst_at_the_origin_with_both_solutions():
    """The first passage is neuron 23's at t = 0.25336, in the run and in its reference; the same run with
    every neuron's first layer moved 1e-3 away from its origin has none."""
    problem = stored_problem("passage_through_an_origin")
    for each in (run(problem, record_events=True), run(problem, reference=True, record_events=True)):
        assert abs(first_passage(each, problem.X, problem.y, problem.loss) - 0.253358) < 1e-6

        def far(t, result=each):
            W, v = result.dense(t)
            return W + np.where(W >= 0, 1e-3, -1e-3), v

        assert first_passage(replace(each, dense=far), problem.X, problem.y, problem.loss) == np.inf


def test_without_the_certificate_the_passage_is_a_disagreement(monkeypatch):
    """With the certificate saying 'unique' everywhere, the runs are compared at the end, 0.17 apart."""
    problem = stored_problem("passage_through_an_origin")

    def unique(*args, **kwargs):
        return replace(origin_contact(*args, **kwargs), stays=False)

    monkeypatch.setattr(origin_escape, "origin_contact", unique)
    with pytest.raises(AssertionError, match="x the bound; amplification"):
        check(problem)


def test_a_disagreement_before_the_passage_fails():
    """A run moved by twice the bound before the passage (its amplification there is 0.84, below 1)."""
    problem = stored_problem("passage_through_an_origin")
    result, tight = run(problem, record_events=True), run(problem, reference=True, record_events=True)
    t = first_not_unique(problem, (result, tight))
    moving = perturbed_run(problem)
    agrees_before_passage(problem, result, tight, moving, t)
    shift = 2 * fixed_error_at(problem, result, tight, t)[1]

    def moved(time):
        W, v = result.dense(time)
        return W + shift, v

    with pytest.raises(AssertionError, match="x the bound at t = 0.2533"):
        agrees_before_passage(problem, replace(result, dense=moved), tight, moving, t)


def test_the_certificate_needs_both_solutions():
    """A neuron at the origin whose every direction raises the risk stays (unique); one whose every sector
    field has a positive second component must leave (unique too); with both, it is not unique."""
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    origin, scale = np.zeros(2), 1.0
    stays = origin_contact(origin, 1.0, X, np.array([-1.0, -1.0, -1.0, -1.0]), scale)
    assert stays.at_origin and stays.stays and not stays.leaves and not stays.not_unique
    leaves = origin_contact(origin, 1.0, X, np.array([0.5, 0.5, 1.0, -1.0]), scale)
    assert leaves.leaves and not leaves.stays and not leaves.not_unique
    both = origin_contact(origin, 1.0, X, np.array([1.0, 1.0, -1.0, -1.0]), scale)
    assert both.stays and both.leaves and both.not_unique
    away = origin_contact(np.array([1e-3, 0.0]), 1.0, X, np.array([1.0, 1.0, -1.0, -1.0]), scale)
    assert not away.at_origin and not away.not_unique


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    n=st.integers(2, 7),
    d=st.integers(2, 3),
    seed=st.integers(0, 2**31),
    loss=st.sampled_from(["squared", "logistic", "exponential"]),
)
def test_the_engine_finds_what_the_certificate_finds(n, d, seed, loss):
    """The engine's test on merged surfaces (jumps S_g and offsets N_g of repeated and opposite samples) and
    the certificate on every sample agree, wherever neither's margin is within sampling of 0: the largest
    sampled descent at least 1e-2 of its terms' size, or below -1e-2 of it."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, d))
    copies = rng.integers(0, n, size=rng.integers(0, 3))
    X = np.vstack([base, rng.choice([-2.0, -0.5, 1.0, 3.0], size=(len(copies), 1)) * base[copies]])
    y = rng.choice([-1.0, 1.0], size=len(X)) if loss != "squared" else rng.standard_normal(len(X))
    f = 0.5 * rng.standard_normal(len(X))
    v_j = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.1, 2.0))
    s = compile_field(loss).sample_factor(f, y)
    certificate = origin_contact(np.zeros(d), v_j, X, s, 1.0)
    terms = abs(v_j) * float(np.abs(s) @ np.linalg.norm(X, axis=1)) / len(X)
    assume(abs(certificate.descent) > 1e-2 * terms)
    groups = SampleGroups(X, y, float_arithmetic(loss))
    S, N = groups.factors(f)
    found = origin.origin_contact(v_j, groups.X, S, N)
    assert found.leaves == certificate.leaves
    assert found.not_unique == certificate.not_unique


def test_the_failed_message_claims_non_uniqueness_only_at_an_origin():
    """The stored problem's run names the origin; a neuron away from it gets no such claim."""
    problem = stored_problem("neuron_at_the_origin")
    assert "the flow is not unique there" in run(problem).message
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    coords = make_coordinates(
        "plain", np.array([[1.0, 1.0]]), np.array([1.0]), X, np.ones(2), 1.0, float_arithmetic("squared")
    )
    weights = SlidingWeights(
        Mode(np.ones((1, 2), dtype=bool), np.zeros((1, 2), dtype=bool)), X @ X.T, coords.arith
    )
    contact = origin.contact_at(coords, weights, coords.pack(np.array([[1.0, 1.0]]), np.array([1.0])), 0)
    message = origin.repeated_events_message(contact, 201, 0.5, 0, 1)
    assert contact is None and "not unique" not in message and "(neuron 0, sample 1)" in message

"""The exact flow in d = 1, where every activation surface is {w_j = 0} (docs/flow.md, "Robustness").

A neuron that reaches w_j = 0 has no direction, so its cosine guards would be 0 / 0; the engine's pair guards
there are w_j x_i / (sqrt(w_j^2 + v_j^2) |x_i|), smooth through the surface. Checked against the mpmath
reference (:func:`fls.simulate.flow.reference.reference_flow`) through a zero passage (the neuron swaps its
active samples) and through sliding at w_j = 0 (the minimal-norm selection holds it there), in plain and
data-span coordinates; with hidden biases the inputs (x, 1) are 2-d and the flow is the usual one.
"""

from functools import cache

import numpy as np
import pytest

from fls.simulate.flow import integrate_flow
from fls.simulate.flow.reference import reference_flow
from fls.simulate.initialization import init_params


def one_dimensional_problem(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """n in 2..7 samples on the line, m in 1..5 neurons, unbalanced (gaussian) init at alpha = 1: |v_j| > |w_j|
    lets a neuron reach w_j = 0 in finite time."""
    rng = np.random.default_rng(seed)
    n, m = rng.integers(2, 8), rng.integers(1, 6)
    X = rng.standard_normal((n, 1))
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    W, v = init_params(m, 1, alpha=1.0, scheme="gaussian", seed=seed)
    return W, v, X, y


@cache
def reference(seed: int):
    return reference_flow(*one_dimensional_problem(seed), t_max=3.0, dps=30)


#: seed -> (crossings, sliding entries) on [0, 3]: seed 12 passes through w = 0 (its neuron 1 swaps its
#: active samples), seed 4 has two neurons that reach w = 0 and slide there.
CASES = {12: (1, 0), 4: (0, 2)}


@pytest.mark.parametrize("coords", ["plain", "span"])
@pytest.mark.parametrize("seed", sorted(CASES))
def test_a_neuron_through_or_on_w_0_agrees_with_the_mpmath_reference(seed, coords):
    exact = reference(seed)
    run = integrate_flow(*one_dimensional_problem(seed), t_max=3.0, coords=coords, rtol=1e-11, atol=1e-13)
    assert run.status == exact.status == "t_max", run.message
    assert (run.switches, run.sliding_entries) == (exact.switches, exact.sliding_entries) == CASES[seed]
    assert np.abs(run.W - exact.W).max() <= 1e-10 and np.abs(run.v - exact.v).max() <= 1e-10


def test_a_sliding_neuron_stays_exactly_at_w_0_with_its_output_weight_frozen():
    """At w_j = 0 every relu(w_j x_i) is 0, so v_j' = 0 while the neuron slides (the Filippov weight holds it)."""
    W, v, X, y = one_dimensional_problem(4)
    run = integrate_flow(W, v, X, y, t_max=3.0, rtol=1e-11, atol=1e-13, record_events=True)
    log = run.info["event_log"]
    entered = log["neuron"][log["kind"] == "enter_sliding"]
    assert len(entered) == 2 and np.all(run.W[entered, 0] == 0.0)
    for j, t in zip(entered, log["t"][log["kind"] == "enter_sliding"], strict=True):
        assert run.dense(t)[1][j] == pytest.approx(run.v[j], rel=1e-12)


@pytest.mark.parametrize("seed", [4, 12])
def test_one_dimensional_inputs_with_hidden_biases_agree_with_the_mpmath_reference(seed):
    W, v, X, y = one_dimensional_problem(seed)
    b = init_params(len(v), 1, alpha=1.0, scheme="gaussian", seed=seed + 1)[0][:, 0]
    exact = reference_flow(W, v, X, y, b0=b, t_max=2.0, dps=30)
    run = integrate_flow(W, v, X, y, b0=b, t_max=2.0, rtol=1e-11, atol=1e-13)
    assert run.status == exact.status == "t_max", run.message
    assert (run.switches, run.sliding_entries) == (exact.switches, exact.sliding_entries)
    assert max(np.abs(run.W - exact.W).max(), np.abs(run.b - exact.b).max()) <= 1e-10

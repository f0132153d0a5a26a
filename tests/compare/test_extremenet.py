"""The small-alpha prediction of claim (d), the network reduced to its extreme vectors (compare.extremenet):
the merge it rests on is exact (collinear balanced neurons act as one under the field), its groups keep every
neuron's mass, and it predicts the full runs' test error at small alpha, where merging by sign alone (the
two-neuron model) does not."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.compare import runner
from fls.compare.config import expand_runs, load_config
from fls.compare.extremenet import (
    ExtremeNetwork,
    extreme_network,
    group_by_rest,
    reduced_network_errors,
    small_alpha_prediction,
)
from fls.compare.inputs import dataset_for, initial_parameters
from fls.simulate.data import make_data
from fls.theory import vector_field


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    members=st.integers(2, 5),
    sign=st.sampled_from([1.0, -1.0]),
    eta=st.floats(1e-3, 0.5),
)
def test_collinear_balanced_neurons_take_the_step_of_their_merged_neuron(seed, members, sign, eta):
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((9, 4)), np.where(rng.random(9) < 0.5, -1.0, 1.0)
    u = rng.standard_normal(4)
    u /= np.linalg.norm(u)
    norms = rng.uniform(0.1, 2.0, members)
    other_w = rng.standard_normal((1, 4))
    other_v = np.array([np.linalg.norm(other_w)])
    W = np.vstack([norms[:, None] * u, other_w])
    v = np.concatenate([sign * norms, other_v])
    mass = np.sqrt(np.sum(norms**2))
    W_merged, v_merged = np.vstack([mass * u, other_w]), np.concatenate([[sign * mass], other_v])
    dW, dv = vector_field(W, v, X, y, c=1.3)
    dW_m, dv_m = vector_field(W_merged, v_merged, X, y, c=1.3)
    # the members stay the merged neuron scaled by r_j / r, so the two networks compute the same function
    np.testing.assert_allclose((W + eta * dW)[:members], np.outer(norms / mass, (W_merged + eta * dW_m)[0]),
                               rtol=1e-10, atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(
        (v + eta * dv)[:members], norms / mass * (v_merged + eta * dv_m)[0], rtol=1e-10
    )
    np.testing.assert_allclose(dW[members:], dW_m[1:], rtol=1e-10, atol=1e-12)


def test_grouping_keeps_every_neurons_mass_and_merges_one_rest_point():
    dataset = make_data("gaussian_mixture", preset="separable", seed=0)
    rng = np.random.default_rng(1)
    W = rng.standard_normal((12, dataset.d)) * rng.uniform(0.5, 2.0, (12, 1))
    v = np.where(np.arange(12) % 2 == 0, 1.0, -1.0) * np.linalg.norm(W, axis=1)
    network = group_by_rest(dataset, W, v)
    assert network.dropped == 0 and network.counts.sum() == 12  # every neuron settles on this data set
    assert len(network.masses) < 12  # and several share a rest point
    np.testing.assert_allclose(network.masses.sum(), np.sum(np.linalg.norm(W, axis=1) ** 2))
    np.testing.assert_allclose(np.linalg.norm(network.directions, axis=1), 1.0)
    W_k, v_k = network.parameters(15)
    assert W_k.shape == (15, dataset.d) and np.all(W_k[len(network.masses) :] == 0)
    np.testing.assert_allclose(v_k[: len(network.masses)] ** 2, network.masses)


def test_the_reduced_network_predicts_the_full_runs_at_small_alpha_and_a_sign_merge_does_not():
    config = {
        "data": {"model": "gaussian_mixture", "preset": "low_signal", "n_test": 2000},
        "model": {"width": 100},
        "grid": {"model.alpha": [1e-4], "seeds": 6},
    }
    runs = expand_runs(load_config(config))
    full = np.array([output.row["test_error"] for output in runner.execute_batch(runs)])
    datasets = [dataset_for(run) for run in runs]
    starts = [initial_parameters(run) for run in runs]
    predicted, sizes = small_alpha_prediction(datasets, starts, runs[0])
    assert np.all(sizes >= 2) and np.all(np.isfinite(predicted))
    assert abs(np.mean(full - predicted)) < 0.005
    merged = []
    for dataset, (W0, v0) in zip(datasets, starts, strict=True):
        network = extreme_network(dataset, W0, v0, alpha=1e-4, c=1.0)
        heaviest = [int(np.argmax(np.where(network.signs == s, network.masses, -1.0))) for s in (1.0, -1.0)]
        total = [network.masses[network.signs == s].sum() for s in (1.0, -1.0)]
        merged.append(ExtremeNetwork(network.directions[heaviest], network.signs[heaviest],
                                     np.array(total), np.array([1, 1]), 0))  # fmt: skip
    wrong = reduced_network_errors(datasets, merged, runs[0])
    assert abs(np.mean(full - wrong)) > 0.015

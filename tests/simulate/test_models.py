"""Engines with real targets, hidden biases and sample weights: the flow against the mpmath reference and GD,
train_ensemble against separate torch runs, the user's data from arrays and files, and bad input."""

import numpy as np
import pytest
import torch

from fls.simulate import Dataset, init_params, integrate_flow, load_dataset, train_ensemble
from fls.simulate.flow.reference import reference_flow
from fls.simulate.stopping import TargetRisk, TrainAccuracy
from fls.theory.validation import ParameterError

# three points in 1-d with real targets (the setting of docs/examples/regression_bias.py)
X3 = np.array([[-1.0], [0.2], [1.0]])
Y3 = np.array([0.6, -0.4, 0.8])


def small_biased(width=3, alpha=0.3, seed=2):
    W, v, b = init_params(width, 1, alpha=alpha, scheme="random_sign", seed=seed, bias=True)
    return W, v, b


def test_biased_flow_agrees_with_the_mpmath_reference_through_crossings():
    W, v, b = small_biased()
    options = {"loss": "squared", "b0": b, "sample_weight": [1.0, 2.0, 1.0], "t_max": 6.0, "coords": "plain"}
    fast = integrate_flow(W, v, X3, Y3, rtol=1e-13, atol=1e-15, **options)
    exact = reference_flow(W, v, X3, Y3, dps=30, **options)
    assert fast.ok and exact.ok and fast.switches + fast.sliding_entries > 0
    for a, r in ((fast.W, exact.W), (fast.b, exact.b), (fast.v, exact.v)):
        np.testing.assert_allclose(a, r, atol=1e-9, rtol=0)
    assert abs(fast.risk[-1] - exact.risk[-1]) < 1e-9


def test_gd_converges_to_the_biased_flow_at_first_order():
    """Through two activation crossings of the biased flow: the GD error halves with the step (ratio 2 +- 10 %)."""
    W, v, b = small_biased(width=4, alpha=1.0, seed=6)
    t = 4.0
    flow = integrate_flow(W, v, X3, Y3, loss="squared", b0=b, t_max=t, rtol=1e-12, atol=1e-14)
    assert flow.switches >= 2
    errors = []
    for eta in (0.004, 0.002, 0.001):
        (run,) = train_ensemble(W[None], v[None], X3, Y3, loss="squared", b0=b[None], eta=eta,
                                max_steps=round(t / eta))  # fmt: skip
        errors.append(np.max(np.abs(np.r_[run.W.ravel(), run.b, run.v] - np.r_[flow.W.ravel(), flow.b, flow.v])))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all(np.abs(ratios - 2) <= 0.2), ratios


def test_a_weight_k_is_k_repeated_samples_in_gd_through_sliding():
    """GD on weights [1, 2, 1] equals GD with the middle sample twice, step for step (1e-12), on a run whose
    flow crosses and slides."""
    W, v, b = small_biased()
    options = {"loss": "squared", "b0": b[None], "eta": 0.001, "max_steps": 6000}
    (weighted,) = train_ensemble(W[None], v[None], X3, Y3, sample_weight=[1, 2, 1], **options)
    (repeated,) = train_ensemble(W[None], v[None], np.r_[X3, X3[[1]]], np.r_[Y3, Y3[[1]]], **options)
    for a, r in ((weighted.W, repeated.W), (weighted.b, repeated.b), (weighted.v, repeated.v)):
        np.testing.assert_allclose(a, r, atol=1e-12, rtol=0)
    np.testing.assert_allclose(weighted.risk, repeated.risk, atol=1e-12, rtol=0)


def test_a_weight_k_is_k_repeated_samples_in_the_flow():
    """The exact flow on weights [1, 3, 1] and on the middle sample three times (a run without surface events)."""
    W, v, b = small_biased(width=3, alpha=0.4, seed=7)
    weighted = integrate_flow(W, v, X3, Y3, loss="squared", b0=b, sample_weight=[1, 3, 1], t_max=3.0,
                              rtol=1e-12, atol=1e-14)  # fmt: skip
    repeated = integrate_flow(W, v, np.r_[X3, X3[[1, 1]]], np.r_[Y3, Y3[[1, 1]]], loss="squared", b0=b,
                              t_max=3.0, rtol=1e-12, atol=1e-14)  # fmt: skip
    for a, r in ((weighted.W, repeated.W), (weighted.b, repeated.b), (weighted.v, repeated.v)):
        np.testing.assert_allclose(a, r, atol=1e-10, rtol=0)
    assert abs(weighted.risk[-1] - repeated.risk[-1]) < 1e-10


def test_a_weight_k_is_k_repeated_samples_in_the_flow_through_crossings_and_sliding():
    """The exact flow on weights [1, 2, 1] and on the middle sample twice, on the run of the mpmath test (it
    crosses and slides): the copies are one surface (docs/flow.md, repeated samples), so the flows agree."""
    W, v, b = small_biased()
    options = {"loss": "squared", "b0": b, "t_max": 6.0, "rtol": 1e-12, "atol": 1e-14, "coords": "plain"}
    weighted = integrate_flow(W, v, X3, Y3, sample_weight=[1.0, 2.0, 1.0], **options)
    repeated = integrate_flow(W, v, np.r_[X3, X3[[1]]], np.r_[Y3, Y3[[1]]], **options)
    assert weighted.ok and repeated.ok and weighted.switches + weighted.sliding_entries > 0
    assert (weighted.switches, weighted.sliding_entries) == (repeated.switches, repeated.sliding_entries)
    for a, r in ((weighted.W, repeated.W), (weighted.b, repeated.b), (weighted.v, repeated.v)):
        np.testing.assert_allclose(a, r, atol=1e-10, rtol=0)
    assert abs(weighted.risk[-1] - repeated.risk[-1]) < 1e-10


def torch_member(W, v, b, X, y, weights, c, eta, steps):
    """One network trained by torch autograd on the weighted squared loss (independent of the compiled field)."""
    W, v, b = (torch.tensor(a, requires_grad=True) for a in (W, v, b))
    X, y, w = torch.tensor(X), torch.tensor(y), torch.tensor(weights * len(weights) / weights.sum())
    for _ in range(steps):
        f = c * torch.relu(X @ W.T + b) @ v
        (w * 0.5 * (f - y) ** 2).mean().backward()
        with torch.no_grad():
            for p in (W, v, b):
                p -= eta * p.grad
                p.grad = None
    return W.detach().numpy(), v.detach().numpy(), b.detach().numpy()


def test_each_member_equals_a_separate_torch_run():
    members = [init_params(5, 2, alpha=a, scheme="random_sign", seed=s, bias=True) for a, s in ((0.5, 0), (1.0, 1))]
    W0, v0, b0 = (np.stack([m[k] for m in members]) for k in range(3))
    rng = np.random.default_rng(0)
    X, y, weights = rng.normal(size=(6, 2)), rng.normal(size=6), rng.uniform(0.5, 2.0, size=6)
    results = train_ensemble(W0, v0, X, y, loss="squared", b0=b0, sample_weight=weights, eta=[0.05, 0.02],
                             c=[1.0, 2.0], max_steps=40)  # fmt: skip
    for e, (c, eta) in enumerate(((1.0, 0.05), (2.0, 0.02))):
        W, v, b = torch_member(W0[e], v0[e], b0[e], X, y, weights, c, eta, 40)
        np.testing.assert_allclose(results[e].W, W, atol=1e-12, rtol=0)
        np.testing.assert_allclose(results[e].v, v, atol=1e-12, rtol=0)
        np.testing.assert_allclose(results[e].b, b, atol=1e-12, rtol=0)


def test_target_risk_is_the_users_weighted_risk():
    W, v, b = small_biased()
    (run,) = train_ensemble(W[None], v[None], X3, Y3, loss="squared", b0=b[None], sample_weight=[0, 1, 0],
                            eta=0.01, max_steps=1)  # fmt: skip
    f = np.maximum(X3 @ W.T + b, 0) @ v
    assert run.risk[0] == pytest.approx(0.5 * (f[1] - Y3[1]) ** 2, rel=1e-12)


def test_classification_rules_refuse_real_targets():
    W, v, b = small_biased()
    with pytest.raises(ParameterError, match="stop = TrainAccuracy needs binary labels"):
        integrate_flow(W, v, X3, Y3, loss="squared", b0=b, t_max=1.0, stop_rule=TrainAccuracy(1.0))
    with pytest.raises(ParameterError, match="stop = TrainAccuracy needs binary labels"):
        train_ensemble(W[None], v[None], X3, Y3, loss="squared", eta=0.1, max_steps=2, stop=TrainAccuracy(1.0))
    start = float(np.mean((np.maximum(X3 @ W.T + b, 0) @ v - Y3) ** 2) / 2)
    (run,) = train_ensemble(W[None], v[None], X3, Y3, loss="squared", b0=b[None], eta=0.1, max_steps=5000,
                            stop=TargetRisk(start / 2))  # fmt: skip
    assert run.status == "target_reached" and run.risk[-1] <= start / 2 < run.risk[-2]


def test_init_params_with_biases_is_balanced_and_keeps_the_bias_free_draws():
    for scheme in ("random_sign", "antisymmetric"):
        W, v, b = init_params(6, 3, alpha=0.7, scheme=scheme, seed=3, bias=True)
        np.testing.assert_allclose(v**2 - (W**2).sum(1) - b**2, 0, atol=1e-15)
        np.testing.assert_array_equal(W, init_params(6, 3, alpha=0.7, scheme=scheme, seed=3)[0])
    with pytest.raises(ParameterError, match="bias must be True or False"):
        init_params(2, 1, alpha=1.0, scheme="gaussian", seed=0, bias=1)


def test_dataset_from_arrays_and_its_errors():
    data = Dataset.from_arrays(X3, Y3, loss="squared", sample_weight=[1, 2, 1])
    assert data.params["task"] == "regression" and data.X_test.shape == (0, 1)
    with pytest.raises(ParameterError, match="margin loss"):
        Dataset.from_arrays(X3, Y3, loss="logistic")
    with pytest.raises(ParameterError, match="X_test and y_test must be given together"):
        Dataset.from_arrays(X3, Y3, loss="squared", X_test=X3)
    with pytest.raises(ParameterError, match="X contains non-finite"):
        Dataset.from_arrays([[np.nan], [1.0], [2.0]], Y3, loss="squared")
    with pytest.raises(ParameterError, match="y has shape"):
        Dataset.from_arrays(X3, Y3[:2], loss="squared")
    with pytest.raises(ParameterError, match="loss = 'hinge' is not supported"):
        Dataset.from_arrays(X3, Y3, loss="hinge")


def test_load_dataset_from_npz_and_csv(tmp_path):
    np.savez(tmp_path / "points.npz", X=X3, y=Y3, sample_weight=np.array([1.0, 2.0, 1.0]), X_test=X3, y_test=Y3)
    data = load_dataset(tmp_path / "points.npz", loss="squared")
    np.testing.assert_array_equal(data.X, X3) and np.testing.assert_array_equal(data.sample_weight, [1, 2, 1])
    (tmp_path / "points.csv").write_text("x1,y,sample_weight,split\n-1,0.6,1,train\n0.2,-0.4,2,train\n1,0.8,,test\n")
    data = load_dataset(tmp_path / "points.csv", loss="squared")
    np.testing.assert_array_equal(data.X, [[-1.0], [0.2]]) and np.testing.assert_array_equal(data.y_test, [0.8])
    np.testing.assert_array_equal(data.sample_weight, [1.0, 2.0])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("a.txt", "", "allowed: '.npz', '.csv'"), ("b.csv", "x1,y\n1,abc\n", "'abc' is not a number"),
     ("c.csv", "x1,y,split\n1,1,valid\n", "allowed: 'train', 'test'"), ("d.csv", "x1,z\n1,1\n", "column 'y'"),
     ("e.csv", "x1,y\n1,0.5\n", "margin loss")],
)  # fmt: skip
def test_load_dataset_errors_name_the_problem(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(ParameterError, match=message):
        load_dataset(tmp_path / name, loss="logistic")


def test_npz_with_an_unknown_array_is_refused(tmp_path):
    np.savez(tmp_path / "p.npz", X=X3, y=Y3, weights=np.ones(3))
    with pytest.raises(ParameterError, match="arrays \\['weights'\\] are not allowed"):
        load_dataset(tmp_path / "p.npz", loss="squared")


def test_engine_options_are_validated():
    W, v, b = small_biased()
    with pytest.raises(ParameterError, match="b0 has shape"):
        integrate_flow(W, v, X3, Y3, loss="squared", b0=b[:2], t_max=1.0)
    with pytest.raises(ParameterError, match="sample_weight has negative entries"):
        integrate_flow(W, v, X3, Y3, loss="squared", sample_weight=[1, -1, 1], t_max=1.0)
    with pytest.raises(ParameterError, match="margin loss"):
        integrate_flow(W, v, X3, Y3, t_max=1.0)
    with pytest.raises(ParameterError, match="b0 must have 2 dimension"):
        train_ensemble(W[None], v[None], X3, Y3, loss="squared", b0=b, eta=0.1, max_steps=1)
    with pytest.raises(ParameterError, match="sample_weight has shape"):
        train_ensemble(W[None], v[None], X3, Y3, loss="squared", sample_weight=[1, 1], eta=0.1, max_steps=1)
    with pytest.raises(ParameterError, match="sample_weight sums to 0"):
        train_ensemble(W[None], v[None], X3, Y3, loss="squared", sample_weight=[0, 0, 0], eta=0.1, max_steps=1)


def test_kernel_matrices_with_biases():
    from fls.simulate.kernel import kernel_matrices

    W, v, b = small_biased(width=4)
    K, K_test = kernel_matrices("tangent", X3, X3[:2], W=W, v=v, b=b)
    np.testing.assert_allclose(K[:2], K_test, rtol=1e-14)
    C, _ = kernel_matrices("conjugate", X3, X3, W=W, b=b)
    hidden = np.maximum(X3 @ W.T + b, 0)
    np.testing.assert_allclose(C, hidden @ hidden.T, rtol=1e-14)
    with pytest.raises(ParameterError, match="'conjugate_closed' has no form with hidden biases"):
        kernel_matrices("conjugate_closed", X3, X3, alpha=1.0, bias=True)
    with pytest.raises(ParameterError, match="needs the hidden biases"):
        kernel_matrices("conjugate", X3, X3, W=W, bias=True)


def test_positive_class_rule_weighs_its_class_in_both_faces():
    """The flow face (value <= 0) and the discrete face (reached) of PositiveClassLoss agree with weights:
    both compute sum_{y=1} w l / sum_{y=1} w."""
    from fls.simulate.flow.arithmetic import float_arithmetic
    from fls.simulate.stopping import Evaluation, PositiveClassLoss
    from fls.theory.losses import as_sample_weight

    y = np.array([1.0, 1.0, -1.0, 1.0])
    f = np.array([0.3, -1.0, 0.5, 2.0])
    weights = as_sample_weight([3.0, 1.0, 2.0, 0.0], 4)
    arith = float_arithmetic("logistic", weights)
    losses = np.log1p(np.exp(-y * f))
    expected = (losses * weights)[y > 0].sum() / weights[y > 0].sum()
    for eps, holds in ((expected * 1.001, True), (expected * 0.999, False)):
        rule = PositiveClassLoss(eps)
        assert (rule.value(f, y, arith) <= 0) == holds
        evaluation = Evaluation(torch.tensor(losses * weights)[None], torch.tensor(y * f > 0)[None],
                                torch.tensor(y > 0), torch.tensor(weights))  # fmt: skip
        assert bool(rule.reached(evaluation)[0]) == holds


def test_init_ensemble_with_biases_stacks_the_members():
    from fls.simulate.train import init_ensemble

    W0, v0, b0 = init_ensemble(4, 2, alphas=[0.5, 1.0], seeds=[0, 1], bias=True)
    for e, (alpha, seed) in enumerate(((0.5, 0), (1.0, 1))):
        for stacked, single in zip((W0, v0, b0), init_params(4, 2, alpha=alpha, scheme="random_sign", seed=seed,
                                                             bias=True), strict=True):  # fmt: skip
            np.testing.assert_array_equal(stacked[e], single)
    assert len(init_ensemble(4, 2, alphas=[0.5], seeds=[0])) == 2

"""Deep-net runner: the FLS equivalence, the vectorized ensemble against plain module loops, stopping, centering."""

from __future__ import annotations

import copy
import importlib.util
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fls.simulate.realdata import load_digits
from fls.simulate.stopping import TrainAccuracy
from fls.simulate.train.augment import Augmentation, Augmenter
from fls.simulate.train.deep import Architecture, DeepEnsemble, train_deep
from fls.simulate.train.schedule import SaveSchedule
from fls.theory.validation import ParameterError


def subset(data, n: int, n_test: int) -> SimpleNamespace:
    return SimpleNamespace(
        X=data.X[:n],
        y=data.y[:n],
        X_test=data.X_test[:n_test],
        y_test=data.y_test[:n_test],
        params=data.params,
    )


@pytest.fixture(scope="module")
def binary():
    pytest.importorskip("sklearn")
    return subset(load_digits("binary"), 120, 60)


@pytest.fixture(scope="module")
def classes():
    pytest.importorskip("sklearn")
    return subset(load_digits("multiclass"), 150, 60)


@pytest.fixture(scope="module")
def signals():
    """Random 1-D signals (C, L) = (2, 12) in 3 classes (arg-max of a fixed random projection), for the 1-D CNN."""
    rng = np.random.default_rng(0)
    X, X_test = rng.standard_normal((40, 24)), rng.standard_normal((20, 24))
    w = rng.standard_normal((24, 3))
    return SimpleNamespace(
        X=X,
        y=(X @ w).argmax(-1).astype(float),
        X_test=X_test,
        y_test=(X_test @ w).argmax(-1).astype(float),
        params={"input_shape": (2, 12)},
    )


TWO_LAYER = Architecture("mlp", (16,), bias=False)


@pytest.mark.parametrize("batch_size", [None, 32])
def test_multiplier_at_step_over_c_equals_scaled_init_exactly(binary, batch_size):
    """c h(theta) at step eta / c, mapped by theta -> sqrt(c) theta, is h at init scale sqrt(c) and step eta.

    c = 4 makes every rescaling a power of two, so the two runs agree bit for bit.
    """
    runs = train_deep(
        binary,
        architecture=TWO_LAYER,
        c=[4.0, 1.0],
        alpha=[1.0, 2.0],
        eta=0.5,
        seeds=7,
        stop=None,
        max_steps=60,
        batch_size=batch_size,
    )
    multiplied, scaled = runs
    for name, value in multiplied.info["state"].items():
        np.testing.assert_array_equal(2.0 * value, scaled.info["state"][name])
    np.testing.assert_array_equal(multiplied.risk, scaled.risk)
    np.testing.assert_array_equal(multiplied.info["test_accuracy"], scaled.info["test_accuracy"])
    assert multiplied.info["step_size"] == 0.125 and scaled.info["step_size"] == 0.5


def test_multiplier_equivalence_to_rounding_for_any_c(binary):
    c = 3.0
    multiplied, scaled = train_deep(
        binary,
        architecture=TWO_LAYER,
        c=[c, 1.0],
        alpha=[1.0, math.sqrt(c)],
        eta=0.3,
        seeds=2,
        stop=None,
        max_steps=60,
    )
    for name, value in multiplied.info["state"].items():
        np.testing.assert_allclose(math.sqrt(c) * value, scaled.info["state"][name], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(multiplied.risk, scaled.risk, rtol=1e-11)


def reference_deep_run(data, architecture, *, c, eta, alpha, seed, centered, steps, batch_size):
    """One ordinary module trained with torch.optim.SGD at lr = eta / c on c (h - h0); final state, test accuracy."""
    binary = bool(np.all(np.isin(data.y, (-1.0, 1.0))))
    outputs = 1 if binary else int(max(data.y.max(), data.y_test.max())) + 1
    net = architecture.build(data.params["input_shape"], outputs, seed=seed, alpha=alpha)
    frozen = copy.deepcopy(net).requires_grad_(False)
    optimizer = torch.optim.SGD(net.parameters(), lr=eta / c)
    X, X_test = torch.from_numpy(data.X), torch.from_numpy(data.X_test)
    y = torch.from_numpy(data.y if binary else data.y.astype(np.int64))

    def f(x):
        out = c * (net(x) - frozen(x)) if centered else c * net(x)
        return out[:, 0] if binary else out

    def loss(x, target):
        out = f(x)
        if binary:
            return torch.nn.functional.soft_margin_loss(out, target)
        return torch.nn.functional.cross_entropy(out, target)

    generator, order = torch.Generator().manual_seed(seed), None
    per_epoch = 1 if batch_size is None else math.ceil(len(y) / batch_size)
    for k in range(steps):
        idx = slice(None)
        if batch_size is not None:
            if k % per_epoch == 0:
                order = torch.randperm(len(y), generator=generator)
            idx = order[(k % per_epoch) * batch_size : (k % per_epoch + 1) * batch_size]
        optimizer.zero_grad()
        loss(X[idx], y[idx]).backward()
        optimizer.step()
    with torch.no_grad():
        out = f(X_test).numpy()
    correct = data.y_test * out > 0 if binary else out.argmax(-1) == data.y_test
    return {name: p.detach().numpy() for name, p in net.named_parameters()}, correct.mean()


CASES = {
    "mlp-bias-logistic": (Architecture("mlp", (12, 8), bias=True), "binary", False, None),
    "mlp-centered-crossentropy-sgd": (Architecture("mlp", (12,)), "classes", True, 25),
    "cnn2d-centered-logistic-sgd": (Architecture("cnn", (4, 6)), "binary", True, 30),
    "cnn1d-crossentropy": (Architecture("cnn", (3,), bias=True, kernel_size=5), "signals", False, None),
    "vgg2d-centered-crossentropy-sgd": (Architecture("vgg", (3, 4), depth=2), "classes", True, 25),
    "vgg1d-bias-crossentropy": (Architecture("vgg", (3,), bias=True), "signals", False, None),
    "resnet2d-logistic": (Architecture("resnet", (3, 4)), "binary", False, None),
    "resnet2d-batchnorm-centered-crossentropy-sgd": (
        Architecture("resnet", (3, 4), batch_norm=True),
        "classes",
        True,
        30,
    ),
    "resnet1d-batchnorm-crossentropy": (
        Architecture("resnet", (3,), depth=2, batch_norm=True),
        "signals",
        False,
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_vectorized_ensemble_equals_separate_module_runs(case, request):
    architecture, fixture, centered, batch_size = CASES[case]
    data = request.getfixturevalue(fixture)
    members = {"c": [0.5, 2.0, 1.0], "eta": [0.2, 0.4, 0.3], "alpha": [1.0, 0.7, 1.5], "seed": [1, 2, 3]}
    steps = 25
    runs = train_deep(
        data,
        architecture=architecture,
        c=members["c"],
        eta=members["eta"],
        alpha=members["alpha"],
        seeds=members["seed"],
        centered=centered,
        batch_size=batch_size,
        stop=None,
        max_steps=steps,
        save=SaveSchedule.every(5),
    )
    for e, run in enumerate(runs):
        state, accuracy = reference_deep_run(
            data,
            architecture,
            c=members["c"][e],
            eta=members["eta"][e],
            alpha=members["alpha"][e],
            seed=members["seed"][e],
            centered=centered,
            steps=steps,
            batch_size=batch_size,
        )
        assert run.status == "t_max" and run.rhs_evals == steps
        for name, value in state.items():
            np.testing.assert_allclose(run.info["state"][name], value, rtol=1e-10, atol=1e-12)
        assert run.info["final_test_accuracy"] == pytest.approx(accuracy, abs=1e-12)
        assert run.t[-1] == pytest.approx(steps * members["eta"][e] / members["c"][e])


def test_stops_at_target_accuracy_and_records_peak_test_accuracy(binary):
    runs = train_deep(
        binary,
        architecture=TWO_LAYER,
        c=[0.5, 1.0, 4.0],
        eta=0.5,
        seeds=[0, 1, 2],
        stop=TrainAccuracy(1.0),
        max_steps=3000,
        save=SaveSchedule.every(3),
    )
    for run in runs:
        assert run.status == "target_reached"
        assert run.info["train_accuracy"][-1] == 1.0
        assert np.all(run.info["train_accuracy"][:-1] < 1.0)  # the rule is checked at every step
        test = run.info["test_accuracy"]
        assert (
            run.info["peak_test_accuracy"] == np.nanmax(test) >= run.info["final_test_accuracy"] == test[-1]
        )
        assert run.info["steps"] == run.rhs_evals and run.t[-1] == pytest.approx(run.t_stop)
        assert run.W.shape == (16, 64) and run.v.shape == (16,)


def test_centering_starts_from_the_zero_function(binary, classes):
    logistic = train_deep(binary, architecture=TWO_LAYER, c=100.0, centered=True, stop=None, max_steps=0)[0]
    assert logistic.risk[0] == math.log(2.0)
    cross_entropy = train_deep(
        classes, architecture=TWO_LAYER, c=100.0, centered=True, stop=None, max_steps=0
    )[0]
    assert cross_entropy.risk[0] == pytest.approx(math.log(10.0), rel=1e-15)
    plain = train_deep(binary, architecture=TWO_LAYER, c=100.0, stop=None, max_steps=0)[0]
    assert plain.risk[0] > 1.0  # the uncentered network starts from a large random function


def test_members_per_batch_changes_nothing(binary):
    kwargs = {
        "architecture": TWO_LAYER,
        "c": [0.5, 1.0, 2.0],
        "eta": 0.3,
        "seeds": [4, 5, 6],
        "stop": None,
        "max_steps": 20,
    }
    together = train_deep(binary, **kwargs)
    apart = train_deep(binary, members_per_batch=2, **kwargs)
    for a, b in zip(together, apart, strict=True):
        np.testing.assert_allclose(a.W, b.W, rtol=1e-12, atol=1e-14)


def test_bad_arguments(binary, classes):
    with pytest.raises(ParameterError, match="loss 'logistic'"):
        train_deep(classes, loss="logistic", max_steps=1)
    with pytest.raises(ParameterError, match="kind"):
        Architecture("transformer")
    with pytest.raises(ParameterError, match="c has 2 values"):
        train_deep(binary, c=[1.0, 2.0], eta=[0.1, 0.2, 0.3], max_steps=1)
    with pytest.raises(ParameterError, match="input_shape"):
        Architecture("cnn", (2,)).build((1, 2, 2, 2), 1, seed=0, alpha=1.0)


@pytest.mark.slow
def test_digits_peak_test_accuracy_is_highest_at_an_interior_c():
    """The over-alignment / over-fitting trade-off on real data (docs/digits_c_sweep.py, a reduced c grid)."""
    path = Path(__file__).parents[2] / "docs" / "digits_c_sweep.py"
    spec = importlib.util.spec_from_file_location("digits_c_sweep", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    result = script.sweep("multiclass", c_values=[1e-6, 1.0, 10.0, 100.0])
    mean = result["peak"].mean(1)
    assert result["reached"].all()
    assert mean[1:-1].max() > max(mean[0], mean[-1]) + 0.01


PLACED = {
    "cnn": Architecture("cnn", (3,)),
    "vgg": Architecture("vgg", (2, 3), depth=2),
    "resnet": Architecture("resnet", (2, 3)),
    "resnet-batchnorm": Architecture("resnet", (2, 3), batch_norm=True),
}


@pytest.mark.parametrize("name", sorted(PLACED))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_deep_tensors_follow_the_placement(binary, dtype, name):
    """One vectorized step (augmented, centered) on torch's shape-only 'meta' device keeps every tensor on that
    device and dtype."""
    meta = torch.device("meta")
    nets = [PLACED[name].build((1, 8, 8), 1, seed=s, alpha=1.0) for s in (0, 1)]
    family = DeepEnsemble(
        nets,
        torch.ones(2, dtype=dtype, device=meta),
        *(
            torch.as_tensor(a, dtype=dtype).to(meta)
            for a in (binary.X, binary.y, binary.X_test, binary.y_test)
        ),
        binary=True,
        centered=True,
        augmenter=Augmenter(Augmentation(1, True), [0, 1], (1, 8, 8)),
    )
    family.loss_and_gradient(torch.zeros(2, 5, dtype=torch.int64, device=meta))
    family.update(torch.full((2,), 0.1, dtype=dtype, device=meta))
    family.keep(
        torch.zeros(1, dtype=torch.int64)
    )  # host rows: the augmenter reads them, a meta tensor has no values
    for tensor in (*family.params.values(), family.h0, family.metrics()["test_accuracy"]):
        assert tensor.device.type == "meta" and tensor.dtype == dtype


def test_bfloat16_autocast_runs_on_the_cpu_path(classes):
    """autocast='bfloat16' computes products in bfloat16 (about 3 significant digits) on float32 parameters: the
    run follows the float32 run to bfloat16 accuracy, and differs from it (autocast is really on)."""
    options = {
        "architecture": Architecture("cnn", (4,)),
        "c": [0.5, 2.0],
        "eta": 0.3,
        "stop": None,
        "max_steps": 10,
    }
    mixed = train_deep(classes, dtype="float32", autocast="bfloat16", **options)
    plain = train_deep(classes, dtype="float32", **options)
    for a, b in zip(mixed, plain, strict=True):
        assert a.info["autocast"] == "bfloat16" and a.info["dtype"] == "float32"
        np.testing.assert_allclose(a.risk, b.risk, rtol=3e-2)
        assert np.abs(a.risk - b.risk).max() > 1e-5
    with pytest.raises(
        ParameterError, match="autocast = 'bfloat16' needs dtype = 'float32'.*got dtype = 'float64'"
    ):
        train_deep(classes, autocast="bfloat16", **options)
    with pytest.raises(ParameterError, match="autocast"):
        train_deep(classes, dtype="float32", autocast="float16", **options)


def test_cuda_without_a_device_is_refused_before_any_work(binary, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ParameterError, match="device = 'cuda' is not available"):
        train_deep(binary, architecture=Architecture("resnet", (2,)), device="cuda", max_steps=1)


def test_evaluation_in_chunks_changes_nothing(binary):
    """eval_batch splits the full-set evaluations (risk, stop rule, test accuracy, h0) into chunks: same run."""
    options = {
        "architecture": Architecture("cnn", (3, 4)),
        "c": [0.5, 3.0],
        "eta": 0.4,
        "seeds": [1, 2],
        "centered": True,
        "batch_size": 16,
        "stop": TrainAccuracy(0.9),
        "max_steps": 40,
        "save": SaveSchedule.every(4),
    }
    whole = train_deep(binary, **options)
    chunked = train_deep(binary, eval_batch=7, **options)
    for a, b in zip(whole, chunked, strict=True):
        assert a.info["steps"] == b.info["steps"] and a.status == b.status
        np.testing.assert_allclose(a.risk, b.risk, rtol=1e-12)
        np.testing.assert_array_equal(a.info["test_accuracy"], b.info["test_accuracy"])
        np.testing.assert_allclose(a.W, b.W, rtol=1e-12, atol=1e-14)
    with pytest.raises(ParameterError, match="eval_batch"):
        train_deep(binary, eval_batch=0, **options)

"""The batched two-layer engine against plain single-model torch runs, a Runge-Kutta gradient flow and its rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fls.simulate.data import make_data
from fls.simulate.stopping import ZERO_TRAIN_ERROR, PositiveClassLoss, TargetRisk, TrainAccuracy
from fls.simulate.train.device import Placement, configure_threads, placement, resolve_device, resolve_dtype
from fls.simulate.train.ensemble import TwoLayerEnsemble, init_ensemble, train_ensemble
from fls.simulate.train.schedule import SaveSchedule
from fls.theory.compiled import compile_field, vector_field
from fls.theory.validation import ParameterError

WIDTH = 12
ALPHAS = [0.3, 1.0, 0.6, 2.0]
SEEDS = [3, 5, 7, 11]
CS = [1.0, 0.5, 2.0, 1.5]
ETAS = [0.4, 0.25, 0.3, 0.1]


@pytest.fixture(scope="module")
def data():
    return make_data("gaussian_mixture", n=24, d=6, seed=1, n_test=10)


@pytest.fixture(scope="module")
def init(data):
    return init_ensemble(WIDTH, data.d, alphas=ALPHAS, seeds=SEEDS)


class TwoLayerNet(torch.nn.Module):
    """The reference: f(x) = c v . relu(W x) as an ordinary module, trained with torch.optim.SGD."""

    def __init__(self, W: np.ndarray, v: np.ndarray, c: float) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(W.shape[1], W.shape[0], bias=False, dtype=torch.float64)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.from_numpy(W))
        self.out = torch.nn.Parameter(torch.from_numpy(v.copy()))
        self.c = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c * (torch.relu(self.hidden(x)) @ self.out)


def reference_run(W, v, c, eta, X, y, steps, *, batch_size=None, seed=0):
    """Single-model training; returns the per-step outputs on the training set and the per-step parameters."""
    net = TwoLayerNet(W, v, c)
    optimizer = torch.optim.SGD(net.parameters(), lr=eta)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(seed)
    outputs, params, order = [], [], None
    for k in range(steps + 1):
        with torch.no_grad():
            outputs.append(net(X).numpy().copy())
            params.append((net.hidden.weight.numpy().copy(), net.out.numpy().copy()))
        if k == steps:
            break
        if batch_size is None:
            xb, yb = X, y
        else:
            per_epoch = math.ceil(len(y) / batch_size)
            if k % per_epoch == 0:
                order = torch.randperm(len(y), generator=generator)
            idx = order[(k % per_epoch) * batch_size : (k % per_epoch + 1) * batch_size]
            xb, yb = X[idx], y[idx]
        optimizer.zero_grad()
        torch.nn.functional.soft_margin_loss(net(xb), yb).backward()
        optimizer.step()
    return np.array(outputs), params


def logistic(margins: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, -margins)


@pytest.mark.parametrize("batch_size", [None, 5])
def test_ensemble_equals_separate_module_runs(data, init, batch_size):
    W0, v0 = init
    steps = 120
    results = train_ensemble(
        W0, v0, data.X, data.y, eta=ETAS, c=CS, max_steps=steps, batch_size=batch_size, seeds=SEEDS
    )
    for e, result in enumerate(results):
        outputs, params = reference_run(
            W0[e], v0[e], CS[e], ETAS[e], data.X, data.y, steps, batch_size=batch_size, seed=SEEDS[e]
        )
        assert result.status == "t_max" and result.rhs_evals == steps
        assert result.engine == ("train-gd" if batch_size is None else "train-sgd")
        np.testing.assert_allclose(result.W, params[-1][0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(result.v, params[-1][1], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(result.risk, logistic(data.y * outputs).mean(-1), rtol=1e-12, atol=0)
        np.testing.assert_allclose(result.t, ETAS[e] * np.arange(steps + 1), rtol=1e-15)
        assert result.t_stop == pytest.approx(ETAS[e] * steps, rel=1e-15)


def test_per_member_data_equals_separate_runs(init):
    W0, v0 = init
    sets = [make_data("gaussian_mixture", n=20, d=6, seed=s, n_test=10) for s in SEEDS]
    X, y = np.stack([s.X for s in sets]), np.stack([s.y for s in sets])
    results = train_ensemble(W0, v0, X, y, eta=0.3, max_steps=60, batch_size=4, seeds=SEEDS)
    for e, result in enumerate(results):
        _, params = reference_run(W0[e], v0[e], 1.0, 0.3, X[e], y[e], 60, batch_size=4, seed=SEEDS[e])
        np.testing.assert_allclose(result.W, params[-1][0], rtol=1e-12, atol=1e-12)


def first_step(statistic: np.ndarray) -> int:
    hits = np.flatnonzero(statistic)
    return int(hits[0]) if len(hits) else -1


RULES = {
    "target_risk": (TargetRisk(0.3), lambda losses, correct, y: losses.mean(-1) <= 0.3),
    "positive_class": (PositiveClassLoss(0.25), lambda losses, correct, y: losses[:, y > 0].mean(-1) <= 0.25),
    "accuracy_99": (TrainAccuracy(0.99), lambda losses, correct, y: correct.mean(-1) >= 0.99),
    "zero_error": (ZERO_TRAIN_ERROR, lambda losses, correct, y: correct.all(-1)),
}


@pytest.mark.parametrize("batch_size", [None, 6])
@pytest.mark.parametrize("rule_name", sorted(RULES))
def test_each_member_stops_at_its_own_first_step(data, init, rule_name, batch_size):
    rule, statistic = RULES[rule_name]
    W0, v0 = init
    budget = 400
    # sync_every=1: the host compacts the batch as soon as half of it has stopped, which this test also covers
    results = train_ensemble(
        W0,
        v0,
        data.X,
        data.y,
        eta=ETAS,
        c=CS,
        max_steps=budget,
        stop=rule,
        batch_size=batch_size,
        seeds=SEEDS,
        sync_every=1,
    )
    stops = []
    for e, result in enumerate(results):
        outputs, params = reference_run(
            W0[e], v0[e], CS[e], ETAS[e], data.X, data.y, budget, batch_size=batch_size, seed=SEEDS[e]
        )
        margins = data.y * outputs
        expected = first_step(statistic(logistic(margins), margins > 0, data.y))
        assert expected > 0, "the test needs members that reach the target after some steps"
        assert result.status == "target_reached" and result.rhs_evals == expected
        np.testing.assert_allclose(result.W, params[expected][0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(result.risk[-1], logistic(margins[expected]).mean(), rtol=1e-12)
        stops.append(expected)
    assert len(set(stops)) > 1, "members should stop at different steps"


def test_rule_checked_every_few_steps_stops_at_the_first_checked_step(data, init):
    W0, v0 = init
    rule = TargetRisk(0.3, every=5)
    results = train_ensemble(
        W0,
        v0,
        data.X,
        data.y,
        eta=ETAS,
        c=CS,
        max_steps=400,
        stop=rule,
        batch_size=6,
        seeds=SEEDS,
        save=SaveSchedule.every(10),
    )
    for e, result in enumerate(results):
        outputs, _ = reference_run(
            W0[e], v0[e], CS[e], ETAS[e], data.X, data.y, 400, batch_size=6, seed=SEEDS[e]
        )
        risks = logistic(data.y * outputs).mean(-1)
        expected = first_step((risks <= 0.3) & (np.arange(len(risks)) % 5 == 0))
        assert result.rhs_evals == expected and expected % 5 == 0
        steps = np.round(result.t / ETAS[e]).astype(int)
        assert np.all(steps[:-1] % 10 == 0) and steps[-1] == expected
        np.testing.assert_allclose(result.risk, risks[steps], rtol=1e-12)


def test_budget_and_divergence_statuses(data, init):
    W0, v0 = init
    unreachable = train_ensemble(W0[:2], v0[:2], data.X, data.y, eta=0.1, max_steps=5, stop=TargetRisk(1e-9))
    assert [r.status for r in unreachable] == ["not_reached", "not_reached"]
    assert not unreachable[0].ok and unreachable[0].rhs_evals == 5
    # a step of 1e200 sends the parameters to ~1e200 and f (2-homogeneous) past the float64 range for one member;
    # the other must be unaffected
    mixed = train_ensemble(W0[:2], v0[:2], data.X, data.y, eta=[1e200, 0.1], max_steps=50)
    alone = train_ensemble(W0[1:2], v0[1:2], data.X, data.y, eta=0.1, max_steps=50)
    assert mixed[0].status == "diverged" and not mixed[0].ok
    assert mixed[1].status == "t_max"
    np.testing.assert_allclose(mixed[1].W, alone[0].W, rtol=1e-12, atol=1e-14)  # GEMM blocking differs by E


def test_deterministic_for_a_seed(data, init):
    W0, v0 = init
    first = train_ensemble(W0, v0, data.X, data.y, eta=0.2, max_steps=40, batch_size=7, seeds=SEEDS)
    second = train_ensemble(W0, v0, data.X, data.y, eta=0.2, max_steps=40, batch_size=7, seeds=SEEDS)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.risk, b.risk)


def test_gradient_descent_converges_to_the_flow_at_first_order():
    """GD at steps eta, eta/2, eta/4 against a fine RK4 integration of theory's field, with no activation change.

    The global error of Euler's method is C eta + O(eta^2), so halving eta halves it.
    """
    ds = make_data("gaussian_mixture", n=10, d=5, seed=4, n_test=10)
    W0, v0 = init_ensemble(8, 5, alphas=[2.0], seeds=[2])
    T, h = 0.4, 1e-3
    W, v = W0[0].copy(), v0[0].copy()
    pattern = W @ ds.X.T > 0
    for _ in range(round(T / h)):
        k1 = vector_field(W, v, ds.X, ds.y)
        k2 = vector_field(W + h / 2 * k1[0], v + h / 2 * k1[1], ds.X, ds.y)
        k3 = vector_field(W + h / 2 * k2[0], v + h / 2 * k2[1], ds.X, ds.y)
        k4 = vector_field(W + h * k3[0], v + h * k3[1], ds.X, ds.y)
        W = W + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        v = v + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        assert np.array_equal(W @ ds.X.T > 0, pattern), "the reference must stay on one smooth piece"
    etas = [0.02, 0.01, 0.005]
    runs = train_ensemble(
        np.repeat(W0, 3, axis=0),
        np.repeat(v0, 3, axis=0),
        ds.X,
        ds.y,
        eta=etas,
        max_steps=[round(T / e) for e in etas],
        save=SaveSchedule.at([]),
    )
    errors = [np.sqrt(np.sum((r.W - W) ** 2) + np.sum((r.v - v) ** 2)) for r in runs]
    assert [r.t_stop for r in runs] == pytest.approx([T] * 3, rel=1e-12)
    assert errors[0] / errors[1] == pytest.approx(2.0, rel=0.05)
    assert errors[1] / errors[2] == pytest.approx(2.0, rel=0.03)


def test_saved_states_and_schedules(data, init):
    W0, v0 = init
    run = train_ensemble(
        W0[:2], v0[:2], data.X, data.y, eta=0.3, max_steps=30, save=SaveSchedule.every(10, states=True)
    )[0]
    assert run.t.tolist() == pytest.approx([0.0, 3.0, 6.0, 9.0])
    assert run.W_t.shape == (4, WIDTH, data.d) and run.v_t.shape == (4, WIDTH)
    np.testing.assert_array_equal(run.W_t[0], W0[0])
    np.testing.assert_array_equal(run.W_t[-1], run.W)
    stopped = train_ensemble(
        W0[:1],
        v0[:1],
        data.X,
        data.y,
        eta=0.3,
        max_steps=500,
        stop=TargetRisk(0.3),
        save=SaveSchedule.log_spaced(5, states=True),
    )[0]
    steps = np.round(stopped.t / 0.3).astype(int)
    assert steps[-1] == stopped.rhs_evals and len(stopped.W_t) == len(steps)
    assert set(steps[:-1]) <= {0} | {round(10 ** (j / 5)) for j in range(20)}
    np.testing.assert_array_equal(stopped.W_t[-1], stopped.W)


def test_invariant_drift_is_second_order_in_the_step(data, init):
    """v_j^2 - ||w_j||^2 has no first-order change under a GD step (2-homogeneity): drift ~ eta at fixed t."""
    W0, v0 = init
    drifts = [
        train_ensemble(W0[:1], v0[:1], data.X, data.y, eta=eta, max_steps=round(2.0 / eta))[0].invariant_drift
        for eta in (0.02, 0.01)
    ]
    assert drifts[0] / drifts[1] == pytest.approx(2.0, rel=0.1)


def test_float32_agrees_with_float64(data, init):
    W0, v0 = init
    low = train_ensemble(W0, v0, data.X, data.y, eta=0.2, max_steps=50, dtype="float32")
    high = train_ensemble(W0, v0, data.X, data.y, eta=0.2, max_steps=50)
    for a, b in zip(low, high, strict=True):
        assert a.info["dtype"] == "float32" and b.info["dtype"] == "float64"
        np.testing.assert_allclose(a.W, b.W, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"eta": -0.1}, "eta"),
        ({"eta": [0.1, 0.2]}, "eta has 2 values"),
        ({"max_steps": 2.5}, "max_steps"),
        ({"c": 0.0}, "c = 0.0"),
        ({"batch_size": 1000}, "batch_size"),
        ({"device": "tpu"}, "device"),
        ({"dtype": "float16"}, "dtype"),
        ({"info": [{}]}, "info"),
    ],
)
def test_bad_arguments_name_the_parameter(data, init, kwargs, match):
    W0, v0 = init
    arguments = {"eta": 0.1, "max_steps": 3, **kwargs}
    with pytest.raises(ParameterError, match=match):
        train_ensemble(W0, v0, data.X, data.y, **arguments)


def test_bad_data_is_rejected(data, init):
    W0, v0 = init
    with pytest.raises(ParameterError, match="y must contain only"):
        train_ensemble(W0, v0, data.X, np.zeros(data.n), eta=0.1, max_steps=1)
    with pytest.raises(ParameterError, match="W0"):
        train_ensemble(W0[0], v0, data.X, data.y, eta=0.1, max_steps=1)
    with pytest.raises(ParameterError, match="X"):
        train_ensemble(W0, v0, data.X[:, :3], data.y, eta=0.1, max_steps=1)


# ---------------------------------------------------------------------------------------------------- devices


def test_cuda_request_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ParameterError, match="device = 'cuda' is not available"):
        resolve_device("cuda")
    with pytest.raises(ParameterError, match="not available"):
        train_ensemble(
            np.ones((1, 2, 3)),
            np.ones((1, 2)),
            np.ones((4, 3)),
            np.ones(4),
            eta=0.1,
            max_steps=1,
            device="cuda",
        )


def test_cuda_names_resolve_when_cuda_is_reported(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device(torch.device("cuda:1")) == torch.device("cuda", 1)
    with pytest.raises(ParameterError, match="'cuda:0' ... 'cuda:1'"):
        resolve_device("cuda:2")
    assert placement("cuda", "float32") == Placement(torch.device("cuda", 0), torch.float32)


@pytest.mark.parametrize("name", ["mps", "meta", "gpu0"])
def test_other_devices_are_refused(name):
    with pytest.raises(ParameterError, match="device"):
        resolve_device(name)


def test_dtype_names():
    assert resolve_dtype("float64") is torch.float64 and resolve_dtype(torch.float32) is torch.float32
    with pytest.raises(ParameterError, match="dtype"):
        resolve_dtype(torch.int32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_engine_tensors_follow_the_placement(data, init, dtype):
    """Run one batched step on torch's shape-only 'meta' device: every tensor stays on the requested device/dtype."""
    where = Placement(torch.device("meta"), dtype)
    W0, v0 = init
    family = TwoLayerEnsemble(
        where.tensor(W0),
        where.tensor(v0),
        where.tensor(CS),
        where.tensor(data.X),
        where.tensor(data.y),
        compile_field("logistic"),
    )
    evaluation = family.loss_and_gradient(where.index(np.zeros((len(CS), 3), dtype=int)))
    family.update(where.tensor(ETAS))
    family.keep(where.index([0, 2]))
    for tensor in (family.W, family.v, evaluation.losses, family.metrics()["invariant_deviation"]):
        assert tensor.device.type == "meta" and tensor.dtype == dtype
    assert family.W.shape == (2, WIDTH, data.d)
    assert where.index([1, 2]).dtype == torch.int64


def test_configure_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("FLS_TORCH_THREADS", raising=False)
        assert configure_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("FLS_TORCH_THREADS", "2")
        assert configure_threads() == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv("FLS_TORCH_THREADS", "many")
        with pytest.raises(ParameterError, match="FLS_TORCH_THREADS"):
            configure_threads()
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------------ schedules


@given(per_decade=st.integers(1, 40), upto=st.integers(1, 2000))
def test_log_spaced_schedule_is_the_rounded_geometric_grid(per_decade, upto):
    schedule = SaveSchedule.log_spaced(per_decade)
    grid = {0} | {round(10 ** (j / per_decade)) for j in range(per_decade * 5)}
    assert {k for k in range(upto + 1) if schedule.due(k)} == {k for k in grid if k <= upto}


def test_schedule_needs_one_kind():
    with pytest.raises(ParameterError, match="exactly one"):
        SaveSchedule(period=2, per_decade=3)
    assert SaveSchedule.at([3, 7]).due(7) and not SaveSchedule.at([3, 7]).due(5)

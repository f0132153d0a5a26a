"""Regression runs with hidden biases and sample weights through compare/: staged training against the engine
and against repeated samples, the sharpness bound against an autograd Hessian, the regression metrics, the
claims that need classification skipped with their reason, and `fls sweep` / `fls report` end to end on the
user's file."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from fls.compare import metrics
from fls.compare.cli import main
from fls.compare.config import expand_runs, load_config
from fls.compare.registry import check_claims, prepare_table
from fls.compare.runner import execute_batch
from fls.compare.staged import sharpness_bound, train_staged
from fls.compare.store import open_store
from fls.compare.verdict import ClaimResult
from fls.simulate.data import Dataset
from fls.simulate.flow import SWEEP_RTOL
from fls.simulate.initialization import init_params
from fls.simulate.stopping import TargetRisk
from fls.simulate.train.ensemble import train_ensemble


def problem(seed=0, n=5, d=2, width=4, alpha=0.6):
    """Distinct inputs, real targets, positive weights, a network with biases."""
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    weights = rng.uniform(0.5, 2.0, size=n)
    W, v, b = init_params(width, d, alpha=alpha, scheme="random_sign", seed=seed, bias=True)
    return X, y, weights, W, v, b


def staged(W, v, b, X, y, weights, *, steps=40, eta=0.05):
    settings = {"eta": eta, "policy": "constant", "rule": TargetRisk(1e-12), "loss": "squared"}
    results, _ = train_staged(
        W[None], v[None], X[None], y[None], c=np.ones(1), **settings, max_steps=steps, t_max=1e9,
        batch_size=None, seeds=[0], b0=b[None], sample_weight=weights[None],
    )  # fmt: skip
    return results[0]


def test_staged_training_with_biases_and_weights_equals_one_engine_run():
    X, y, weights, W, v, b = problem()
    result = staged(W, v, b, X, y, weights)
    (engine,) = train_ensemble(
        W[None], v[None], X, y, eta=0.05, max_steps=40, loss="squared", b0=b[None], sample_weight=weights
    )
    assert result.info["steps"] == 40 and result.b is not None
    np.testing.assert_allclose(result.W, engine.W, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.b, engine.b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.v, engine.v, rtol=0, atol=1e-12)


def test_a_weight_of_k_in_staged_training_is_k_copies_of_the_sample():
    X, y, _, W, v, b = problem(seed=1)
    counts = np.array([1, 3, 1, 2, 1])
    weighted = staged(W, v, b, X, y, counts.astype(float))
    repeated = staged(W, v, b, np.repeat(X, counts, axis=0), np.repeat(y, counts), np.ones(counts.sum()))
    np.testing.assert_allclose(weighted.W, repeated.W, rtol=0, atol=1e-10)
    np.testing.assert_allclose(weighted.b, repeated.b, rtol=0, atol=1e-10)
    np.testing.assert_allclose(weighted.risk, repeated.risk, rtol=0, atol=1e-10)


@pytest.mark.parametrize("seed", range(4))
def test_the_sharpness_bound_covers_the_weighted_hessian_with_biases(seed):
    X, y, weights, W, v, b = problem(seed=seed, alpha=1.0)
    Xa = np.hstack([X, np.ones((len(X), 1))])
    Wa = np.hstack([W, b[:, None]])
    w = torch.tensor(weights / weights.mean())

    def risk(flat):
        rows, second = flat[: Wa.size].reshape(Wa.shape), flat[Wa.size :]
        f = torch.relu(torch.tensor(Xa) @ rows.T) @ second
        return (w * (f - torch.tensor(y)) ** 2 / 2).mean()

    flat = torch.tensor(np.concatenate([Wa.ravel(), v]))
    top = float(torch.linalg.eigvalsh(torch.autograd.functional.hessian(risk, flat)).abs().max())
    bound = sharpness_bound(Wa, v, Xa, y, 1.0, loss="squared", sample_weight=weights)
    assert top <= bound * (1 + 1e-12)


def test_regression_metrics_are_the_squared_errors_and_the_class_measures_are_nan():
    X, y, _, W, v, b = problem(seed=2, n=6)
    X_test, y_test = X[:3] + 0.1, y[:3]
    dataset = Dataset.from_arrays(X, y, loss="squared", X_test=X_test, y_test=y_test)
    out = metrics.run_metrics(W, v, W, v, dataset, c=2.0, t=[0.0, 1.0], risk=[1.0, 0.5], eps=0.1, b=b, b0=b)
    f_test = 2.0 * np.maximum(X_test @ W.T + b, 0) @ v
    errors = (f_test - y_test) ** 2
    assert out["test_mse"] == pytest.approx(errors.mean(), rel=1e-13)
    assert out["test_mse_se"] == pytest.approx(errors.std(ddof=1) / np.sqrt(3), rel=1e-12)
    active = (X @ W.T + b > 0).any(axis=0)
    assert out["frac_dead"] == pytest.approx(np.mean(~active))
    assert out["weight_change"] == 0.0 and out["kernel_movement"] == 0.0
    for column in ("test_error", "train_error", "Psi", "psi_mean", "frac_s_plus", "frac_mixed", "oa"):
        assert np.isnan(out[column]), column


def test_a_classification_file_without_a_test_set_has_nan_test_measures():
    X, _, _, W, v, _ = problem(seed=3, n=6)
    dataset = Dataset.from_arrays(X, np.array([1.0, -1, 1, -1, 1, -1]), loss="logistic")
    out = metrics.run_metrics(W, v, W, v, dataset, c=1.0, t=[0.0], risk=[0.7], eps=0.1)
    assert np.isnan(out["test_error"]) and np.isnan(out["f0_contamination"])
    assert 0 <= out["train_error"] <= 1 and np.isnan(out["test_mse"])


def test_the_fls_claims_are_skipped_for_regression_runs_and_read_only_classification_rows():
    regression = pd.DataFrame({"task": ["regression"] * 3, "status": ["target_reached"] * 3})
    results = check_claims(prepare_table(regression, ["fls"]), families=["fls"])
    assert {result.verdict for result in results} == {"skipped"}
    assert all(result.reason.startswith("skipped: the claims need classification") for result in results)
    assert all("3 regression runs" in result.reason for result in results)
    again = ClaimResult.from_dict(json.loads(json.dumps(results[0].to_dict())))
    assert (again.verdict, again.reason) == (results[0].verdict, results[0].reason)
    biased = pd.DataFrame({"task": ["classification"], "model.bias": [True], "status": ["target_reached"]})
    assert {result.verdict for result in check_claims(biased, families=["fls"])} == {"skipped"}


def test_the_quality_family_reads_regression_runs():
    regression = pd.DataFrame({"task": ["regression"] * 2, "status": ["target_reached"] * 2})
    (result,) = check_claims(regression, families=["quality"])
    assert result.verdict != "skipped"


CONFIG = """
[data]
model = "file"
path = "points.npz"

[model]
loss = "squared"
bias = true
width = 16

[train]
engine = "{engine}"
max_steps = 3000

[stop]
eps = 0.05

[grid]
"model.alpha" = [0.1, 1.0]
seeds = 2

[sweep]
name = "points"
"""


@pytest.mark.parametrize("engine", ["gd", "flow"])
def test_fls_sweep_and_report_run_on_the_users_file_with_biases(tmp_path, engine):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(6, 1))  # distinct samples (the flow engine's note in docs/flow.md)
    X_test = np.linspace(-1, 1, 21)[:, None]
    np.savez(
        tmp_path / "points.npz", X=X, y=np.sin(3 * X[:, 0]), X_test=X_test, y_test=np.sin(3 * X_test[:, 0]),
        sample_weight=rng.uniform(0.5, 2.0, size=6),
    )  # fmt: skip
    (tmp_path / "sweep.toml").write_text(CONFIG.format(engine=engine))
    store, out = tmp_path / "store", tmp_path / "report"
    runner = CliRunner()
    swept = runner.invoke(main, ["sweep", str(tmp_path / "sweep.toml"), "--store", str(store), "--workers", "0",
                                 "--no-progress"])  # fmt: skip
    assert swept.exit_code == 0, swept.output
    table = open_store(store).table()
    assert len(table) == 4 and set(table["status"]) == {"target_reached"}, table["message"].tolist()
    assert set(table["task"]) == {"regression"} and table["model.bias"].all()
    assert table["test_mse"].between(0, 10).all() and table["test_error"].isna().all()
    # the flow keeps the invariant to its tolerance (the sweep default train.rtol = SWEEP_RTOL; 10x for the
    # error accumulated over the pieces), discrete GD to its first-order step error
    assert (table["invariant_drift"] < (10 * SWEEP_RTOL if engine == "flow" else 1e-1)).all()
    parts = sorted(path.name for path in (store / "runs").iterdir())
    again = runner.invoke(main, [
        "sweep", str(tmp_path / "sweep.toml"), "--store", str(store), "--workers", "0", "--no-progress"
    ])  # fmt: skip
    assert again.output == swept.output, "a second sweep of the same file must resume, not recompute"
    assert sorted(path.name for path in (store / "runs").iterdir()) == parts
    reported = runner.invoke(main, ["report", str(store), "--out", str(out)])
    assert reported.exit_code == 0, reported.output
    text = (out / "report.md").read_text()
    assert "**skipped**" in text and "Test MSE against FLS" in text
    assert (out / "figures" / "mse_vs_fls.png").is_file()
    stored = (store / "analysis" / "claims.json").read_text()
    assert set(re.findall(r'"verdict": "(\w+)"', stored)) == {"skipped"}


def test_the_kernel_engine_runs_the_lazy_limit_with_biases_and_weights(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(6, 1))
    np.savez(tmp_path / "points.npz", X=X, y=X[:, 0], X_test=X[:3] + 0.05, y_test=X[:3, 0] + 0.05,
             sample_weight=rng.uniform(0.5, 2.0, size=6))  # fmt: skip
    config = {
        "data": {"model": "file", "path": str(tmp_path / "points.npz")},
        "model": {"loss": "squared", "bias": True, "width": 50, "init": "antisymmetric"},
        "train": {"engine": "kernel", "t_max": 1e5},
        "stop": {"eps": 1e-3},
        "grid": {"model.alpha": [1.0, 3.0]},
    }
    outputs = execute_batch(expand_runs(load_config(config)))
    assert [output.row["status"] for output in outputs] == ["target_reached"] * 2, outputs[0].row["message"]
    assert all(0 <= output.row["test_mse"] < 0.1 for output in outputs)

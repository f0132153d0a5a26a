"""The runner on tiny batches: statuses, order, trajectories, failures recorded, the sharpness bound."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.compare import inputs, limits, runner, staged, vocabulary
from fls.compare.config import ConfigError, expand_runs, load_config
from fls.simulate.stopping import PositiveClassLoss, TargetRisk, TrainAccuracy
from fls.theory.compiled import compile_field
from fls.theory.validation import ParameterError


def tiny_runs(**overrides):
    """Runs of a tiny sweep (d = 5, n = 12, width 6), overrides as [grid] entries or dotted keys."""
    config = {
        "data": {"model": "gaussian_mixture", "n": 12, "d": 5, "n_test": 400, "kappa": 3.0},
        "model": {"width": 6},
        "train": {"eta": 0.2, "max_steps": 5000},
        "grid": {"model.alpha": [0.01, 1.0], "seeds": 2},
    }
    for key, value in overrides.items():
        section, name = key.split(".", 1)
        config.setdefault(section, {})[name] = value
    return expand_runs(load_config(config))


def test_a_tiny_batch_reaches_its_targets_in_order():
    runs = tiny_runs()
    outputs = runner.execute_batch(runs)
    assert [o.row["run_id"] for o in outputs] == [r["run_id"] for r in runs]
    for output in outputs:
        row, arrays = output.row, output.arrays
        assert row["status"] == "target_reached", row["message"]
        assert arrays["risk"][-1] <= 0.05 < arrays["risk"][0]
        assert np.all(np.diff(arrays["t"]) > 0) and arrays["t"][-1] == pytest.approx(row["t_stop"])
        assert 0 <= row["test_error"] <= 1 and np.isfinite(row["Psi"])
        assert len(arrays["obs_Psi"]) > row["stages"] + 1  # every recorded step, not only stage ends
        np.testing.assert_array_equal(arrays["obs_t"], arrays["t"])
        assert row["batch_runs"] == len(runs)


def test_a_diverging_member_is_recorded_as_diverged():
    runs = tiny_runs(
        **{
            "train.step_policy": "constant",
            "train.eta": 1e4,
            "train.t_max": 1e200,
            "grid.model.alpha": [10.0],
        }
    )
    outputs = runner.execute_batch(runs)
    assert {o.row["status"] for o in outputs} == {"diverged"}
    assert all("NaN or inf" in o.row["message"] for o in outputs)


def test_a_run_out_of_budget_is_not_reached():
    outputs = runner.execute_batch(tiny_runs(**{"train.max_steps": 3}))
    assert {o.row["status"] for o in outputs} == {"not_reached"}
    assert all(o.row["steps"] == 3 for o in outputs)
    assert all(np.isnan(o.row["test_error"]) for o in outputs)


def test_a_bad_run_fails_alone_and_a_batch_never_raises():
    good, bad = tiny_runs()[:2]
    bad = {**bad, "model.init": "antisymmetric", "model.width": 3}
    outputs = runner.execute_batch([good, bad])
    assert outputs[0].row["status"] == "target_reached"
    assert outputs[1].row["status"] == "failed" and "width" in outputs[1].row["message"]
    unknown = runner.execute_batch([{**good, "train.engine": "warp"}])
    assert unknown[0].row["status"] == "failed" and "warp" in unknown[0].row["message"]


def test_the_kernel_engine_runs_the_lazy_limit():
    outputs = runner.execute_batch(tiny_runs(**{"train.engine": "kernel", "grid.model.alpha": [3.0]}))
    assert all(o.row["status"] == "target_reached" and 0 <= o.row["test_error"] <= 1 for o in outputs)


def test_the_kernel_engine_uses_the_mean_kernel_of_the_runs_init_scheme():
    (run,) = tiny_runs(**{"train.engine": "kernel", "grid.model.alpha": [3.0], "grid.seeds": 1,
                          "model.init": "gaussian", "model.width": 40})  # fmt: skip
    (output,) = runner.execute_batch([run])
    dataset = inputs.dataset_for(run)
    W0, v0 = inputs.initial_parameters(run)
    settings = {"alpha": 3.0, "c": 1.0, "eps": float(run["stop.eps"]), "t_max": 1e4}
    own = limits.lazy_limit(dataset, W0, v0, scheme="gaussian", **settings)
    balanced = limits.lazy_limit(dataset, W0, v0, scheme="random_sign", **settings)
    assert output.row["test_error"] == limits.lazy_test_error(own, dataset)[0]
    assert output.row["t_stop"] == own.t_stop != balanced.t_stop
    with pytest.raises(ParameterError, match="scheme = 'orthogonal' has no derived mean tangent kernel"):
        limits.lazy_limit(dataset, W0, v0, scheme="orthogonal", **settings)


def test_step_policies_are_the_configs_choices():
    runs = tiny_runs()
    assert runs[0]["train.step_policy"] == vocabulary.STEP_POLICIES[0]
    with pytest.raises(ConfigError, match="step_policy"):
        tiny_runs(**{"train.step_policy": "bogus"})
    assert isinstance(inputs.stop_rule("risk", 0.1), TargetRisk)
    assert isinstance(inputs.stop_rule("positive_risk", 0.1), PositiveClassLoss)
    assert isinstance(inputs.stop_rule("accuracy", 0.1), TrainAccuracy)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.05, 3.0))
def test_sharpness_bound_bounds_the_hessian_spectrum(seed, scale):
    rng = np.random.default_rng(seed)
    m, d, n = 3, 4, 5
    W, v = scale * rng.standard_normal((m, d)), scale * rng.standard_normal(m)
    X, y = rng.standard_normal((n, d)), np.where(rng.random(n) < 0.5, -1.0, 1.0)
    c = 0.7
    field = compile_field("logistic")

    def risk(flat):
        return field.risk(flat[: m * d].reshape(m, d), flat[m * d :], torch.tensor(X), torch.tensor(y), c)

    theta = torch.tensor(np.concatenate([W.ravel(), v]))
    hessian = torch.autograd.functional.hessian(risk, theta).numpy()
    spectral_radius = np.max(np.abs(np.linalg.eigvalsh(hessian)))
    assert staged.sharpness_bound(W, v, X, y, c) >= spectral_radius * (1 - 1e-9)


def test_constant_policy_gives_the_base_step():
    W, v = np.ones((2, 3, 4)), np.ones((2, 3))
    steps = staged.step_sizes(
        "constant", 0.3, W, v, np.ones((2, 5, 4)), np.ones((2, 5)), np.ones(2), loss="logistic"
    )
    np.testing.assert_array_equal(steps, [0.3, 0.3])


def test_the_lazy_limit_is_a_run_result_with_its_predictions_in_named_fields():
    run = tiny_runs(**{"train.engine": "kernel", "grid.model.alpha": [3.0]})[0]
    dataset = inputs.dataset_for(run)
    W0, v0 = inputs.initial_parameters(run)
    result = limits.lazy_limit(
        dataset, W0, v0, alpha=3.0, c=1.0, eps=float(run["stop.eps"]), t_max=1e4, scheme=run["model.init"]
    )
    assert result.status == "target_reached" and result.engine == "kernel" and result.W.size == 0
    margins = dataset.y * result.f_train
    assert np.mean(np.log1p(np.exp(-margins))) == pytest.approx(result.risk[-1], rel=1e-6)
    error, _ = limits.lazy_test_error(result, dataset)
    assert error == np.mean(np.sign(result.f_test) != dataset.y_test)

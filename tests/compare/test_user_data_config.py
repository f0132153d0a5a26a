"""The user's own data and the new model options in a sweep config (compare.datafile, compare.config):
``data.model = "file"`` with a path relative to the config file, ``data.sample_weight``, ``model.bias`` and the
squared loss on real targets; every bad value is rejected before a run starts, naming the key and what is
allowed."""

import os

import numpy as np
import pytest

from fls.compare.config import ConfigError, expand_runs, load_config
from fls.compare.inputs import dataset_for, initial_state
from fls.compare.toml_text import dump_config
from fls.theory.validation import ParameterError


def write_points(folder, name="points.npz", *, weights=True, targets=None):
    """A small regression data set without repeated samples: X (8, 2), real y, a test set, weights."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(8, 2))
    y = np.sin(X[:, 0]) + X[:, 1] if targets is None else targets
    arrays = {"X": X, "y": y, "X_test": rng.normal(size=(5, 2)), "y_test": y[:5]}
    if weights:
        arrays["sample_weight"] = rng.uniform(0.5, 2.0, size=8)
    np.savez(folder / name, **arrays)
    return folder / name


def file_config(path, **tables):
    config = {
        "data": {"model": "file", "path": str(path)},
        "model": {"loss": "squared", "bias": True, "alpha": 0.5, "width": 6},
    }
    for section, values in tables.items():
        config[section] = {**config.get(section, {}), **values}
    return config


def test_a_relative_path_is_read_against_the_config_file_not_the_working_directory(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    write_points(folder)
    (folder / "sweep.toml").write_text(
        '[data]\nmodel = "file"\npath = "points.npz"\n[model]\nloss = "squared"\nbias = true\nalpha = 0.5\n'
    )
    monkeypatch.chdir(tmp_path)
    config = load_config(folder / "sweep.toml")
    assert config["data"]["path"] == str((folder / "points.npz").resolve())
    (run,) = expand_runs(config)
    assert (run["data.n"], run["data.d"], run["data.n_test"]) == (8, 2, 5)
    assert run["model.bias"] is True and len(run["data.digest"]) == 16 and run["data.task"] == "regression"
    # the resolved config the store keeps is a fixed point (its path is absolute)
    resolved = tmp_path / "resolved.toml"
    resolved.write_text(dump_config(config))
    assert load_config(resolved) == config


def test_a_changed_file_makes_new_runs(tmp_path):
    path = write_points(tmp_path)
    before = expand_runs(load_config(file_config(path)))[0]["run_id"]
    write_points(tmp_path, targets=np.arange(8.0))
    after = expand_runs(load_config(file_config(path)))[0]["run_id"]
    assert before != after


def test_a_run_whose_file_changed_after_its_config_was_read_is_refused(tmp_path):
    path = write_points(tmp_path)
    (run,) = expand_runs(load_config(file_config(path)))
    write_points(tmp_path, targets=np.arange(8.0))
    with pytest.raises(ParameterError, match="data.path = .* changed after the run was made"):
        dataset_for(run)


def test_bias_false_keeps_the_run_ids_of_bias_free_runs():
    base = {"data": {"preset": "low_signal"}, "model": {"width": 10, "alpha": 0.1}}
    plain = expand_runs(load_config(base))[0]
    explicit = expand_runs(load_config({**base, "model": {**base["model"], "bias": False}}))[0]
    assert "model.bias" not in plain and explicit["run_id"] == plain["run_id"]


def test_the_run_reads_the_file_its_weights_and_draws_biases(tmp_path):
    path = write_points(tmp_path)
    stored = np.load(path)
    (run,) = expand_runs(load_config(file_config(path)))
    dataset = dataset_for(run)
    np.testing.assert_array_equal(dataset.X, stored["X"])
    np.testing.assert_array_equal(dataset.sample_weight, stored["sample_weight"])
    assert dataset.params["task"] == "regression"
    W0, v0, b0 = initial_state(run)
    assert W0.shape == (6, 2) and v0.shape == (6,) and b0.shape == (6,)
    # balanced init with biases: |v_j| = ||(w_j, b_j)||
    np.testing.assert_allclose(np.abs(v0), np.sqrt((W0**2).sum(1) + b0**2), rtol=1e-14)
    (uniform,) = expand_runs(load_config(file_config(path, data={"sample_weight": "uniform"})))
    assert dataset_for(uniform).sample_weight is None


def test_a_csv_file_works_like_an_npz_file(tmp_path):
    rows = ["x1,x2,y,split", "0.5,1.0,0.3,train", "-1.0,0.25,-0.7,train", "0.1,-0.4,1.2,train", "1,1,0,test"]
    (tmp_path / "points.csv").write_text("\n".join(rows) + "\n")
    (run,) = expand_runs(load_config(file_config(tmp_path / "points.csv")))
    assert (run["data.n"], run["data.d"], run["data.n_test"]) == (3, 2, 1)
    np.testing.assert_array_equal(dataset_for(run).y, [0.3, -0.7, 1.2])


BAD = [
    ({"data": {"path": "points.txt"}}, ["data.path", ".npz, .csv"]),
    ({"data": {"path": "missing.npz"}}, ["data.path", "is not a readable file", "an existing file"]),
    ({"data": {"path": 3}}, ["data.path", "wrong type", "a string"]),
    ({"data": {"sample_weight": "normalized"}}, ["data.sample_weight", "'file', 'uniform'"]),
    ({"data": {"n": 10}}, ["data.n", "allowed in [data]: path, sample_weight"]),
    ({"data": {"preset": "low_signal"}}, ["data.preset", "has no presets"]),
    ({"model": {"bias": "yes"}}, ["model.bias", "wrong type", "true or false"]),
    ({"model": {"bias": 1}}, ["model.bias", "wrong type", "true or false"]),
    ({"model": {"loss": "logistic"}}, ["data.path", "model.loss = 'logistic'", "loss = 'squared'"]),
    ({"model": {"loss": "hinge"}}, ["model.loss", "'logistic', 'exponential', 'squared'"]),
    ({"data": {"model": "files"}}, ["data.model", "file"]),
    (
        {"stop": {"rule": "accuracy"}},
        ["stop.rule = 'accuracy'", "real targets", "allowed: stop.rule = 'risk'"],
    ),
    ({"stop": {"rule": "zero_error"}}, ["stop.rule = 'zero_error'", "allowed: stop.rule = 'risk'"]),
]


def test_a_synthetic_regression_needs_the_squared_loss():
    config = {"data": {"model": "staircase", "n": 10, "d": 4, "task": "regression"}, "model": {"alpha": 0.5}}
    with pytest.raises(ConfigError, match="model.loss = 'logistic' needs class labels.*'squared'"):
        load_config(config)
    config["model"]["loss"] = "squared"
    assert expand_runs(load_config(config))[0]["data.task"] == "regression"


@pytest.mark.parametrize(("changes", "names"), BAD)
def test_bad_new_options_are_rejected_naming_the_key_and_the_allowed_values(tmp_path, changes, names):
    write_points(tmp_path)
    config = file_config(tmp_path / "points.npz", **changes)
    if "path" in changes.get("data", {}) and isinstance(changes["data"]["path"], str):
        config["data"]["path"] = str(tmp_path / changes["data"]["path"])
    with pytest.raises(ConfigError) as error:
        expand_runs(load_config(config))
    assert all(name in str(error.value) for name in names), str(error.value)


def test_a_file_whose_labels_do_not_suit_the_loss_or_that_holds_nan_is_rejected(tmp_path):
    labels = write_points(tmp_path, targets=np.array([1.0, -1, 1, -1, 1, -1, 1, -1]))
    (run,) = expand_runs(load_config(file_config(labels, model={"loss": "logistic", "bias": False})))
    assert dataset_for(run).params["task"] == "classification"
    broken = write_points(tmp_path, "broken.npz", targets=np.array([0.1, np.nan, 0, 0, 0, 0, 0, 0]))
    with pytest.raises(ConfigError, match=r"data.path = .*broken.npz"):
        load_config(file_config(broken))


def test_a_gridded_path_is_resolved_too(tmp_path):
    write_points(tmp_path, "a.npz")
    write_points(tmp_path, "b.npz", targets=np.arange(8.0))
    (tmp_path / "sweep.toml").write_text(
        '[data]\nmodel = "file"\npath = "a.npz"\n[model]\nloss = "squared"\nalpha = 0.5\n'
        '[grid]\n"data.path" = ["a.npz", "b.npz"]\n'
    )
    runs = expand_runs(load_config(tmp_path / "sweep.toml"))
    assert [os.path.basename(run["data.path"]) for run in runs] == ["a.npz", "b.npz"]
    assert runs[0]["data.digest"] != runs[1]["data.digest"]

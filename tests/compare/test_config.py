"""Sweep configs: resolution of defaults and presets, grid expansion, run ids, TOML round trips, and rejection of
every invalid key before a run starts (the message names the dotted key and what is allowed)."""

import hashlib
import math
import tomllib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fls.compare.config import ConfigError, expand_runs, load_config, run_id
from fls.compare.toml_text import dump_config
from fls.compare.vocabulary import STEP_POLICIES
from fls.simulate.data import GAUSSIAN_PRESETS
from fls.theory.validation import ParameterError

BASE = {"data": {"preset": "low_signal"}, "model": {"width": 10}}


def with_(*tables: dict) -> dict:
    """BASE with the given tables merged in, key by key."""
    config = {section: dict(values) for section, values in BASE.items()}
    for table in tables:
        for section, values in table.items():
            config[section] = {**config.get(section, {}), **values}
    return config


def test_resolution_fills_defaults_expands_the_preset_and_writes_grids_out():
    config = load_config(
        with_({"grid": {"model.alpha": {"logspace": [-3, 0, 4]}, "data.n": [20, 40], "seeds": 3}})
    )
    preset = GAUSSIAN_PRESETS["low_signal"]
    assert {key: config["data"][key] for key in preset} == dict(preset)
    assert config["data"]["n_test"] == 10_000 and config["data"]["preset"] == "low_signal"
    assert config["model"] == {"width": 10, "c": 1.0, "init": "random_sign", "loss": "logistic"}
    assert config["train"]["step_policy"] == STEP_POLICIES[0]
    assert config["grid"]["model.alpha"] == pytest.approx([1e-3, 1e-2, 1e-1, 1.0], rel=1e-15)
    assert config["grid"]["seeds"] == [0, 1, 2]
    assert config["phase"] == {"x": "fls", "y": "data.n"}
    assert config["sweep"] == {"name": "sweep", "batch_size": 64}


def test_a_resolved_config_is_a_fixed_point_and_survives_toml(tmp_path):
    config = load_config(
        with_({"grid": {"fls": {"linspace": [1, 5, 3]}, "model.init": ["gaussian", "antisymmetric"]}})
    )
    assert load_config(config) == config
    path = tmp_path / "config.toml"
    path.write_text(dump_config(config))
    assert tomllib.loads(path.read_text()) == config
    assert load_config(path) == config


def test_grid_expansion_is_the_product_in_order_with_seeds_innermost():
    config = load_config(
        with_({"grid": {"data.n": [20, 30], "model.alpha": [0.1, 1.0, 10.0], "seeds": [4, 7]}})
    )
    runs = expand_runs(config)
    assert [(r["data.n"], r["model.alpha"], r["seed"]) for r in runs] == [
        (n, a, s) for n in (20, 30) for a in (0.1, 1.0, 10.0) for s in (4, 7)
    ]
    assert len({r["run_id"] for r in runs}) == len(runs) == 12
    assert all(r["data.d"] == 100 and r["train.engine"] == "gd" for r in runs)
    assert "data.preset" not in runs[0] and list(runs[0])[-3:] == ["seed", "fls", "run_id"]


@pytest.mark.parametrize("c", [1.0, 0.25, 7.0])
def test_fls_is_one_over_c_alpha_squared_whichever_knob_the_grid_turns(c):
    by_alpha = expand_runs(
        load_config(with_({"model": {"c": c}, "grid": {"model.alpha": [1e-3, 0.5, 30.0]}}))
    )
    for run in by_alpha:
        assert run["fls"] == pytest.approx(1.0 / (c * run["model.alpha"] ** 2), rel=1e-15)
    by_fls = expand_runs(load_config(with_({"model": {"c": c}, "grid": {"fls": [1e-3, 2.0, 1e6]}})))
    for run, fls in zip(by_fls, [1e-3, 2.0, 1e6]):
        assert run["fls"] == fls
        assert run["model.alpha"] == pytest.approx(1.0 / math.sqrt(c * fls), rel=1e-15)


def test_run_id_is_the_sha256_of_the_canonical_json_without_run_id():
    run = {"model.alpha": 0.5, "data.n": 40, "seed": 3, "model.init": "gaussian"}
    expected = hashlib.sha256(
        b'{"data.n":40,"model.alpha":0.5,"model.init":"gaussian","seed":3}'
    ).hexdigest()[:16]
    assert run_id(run) == expected
    assert run_id({**dict(reversed(run.items())), "run_id": "ignored"}) == expected
    assert (
        run_id({**run, "seed": 4}) != expected
        and run_id({**run, "model.alpha": 0.5000000000000001}) != expected
    )
    first = expand_runs(load_config(with_({"model": {"alpha": 0.5}})))[0]
    assert first["run_id"] == run_id(first)


_ALLOWED = "allowed"


@pytest.mark.parametrize(
    ("config", "names"),
    [
        # unknown keys and tables
        (with_({"model": {"alpha": 1.0, "widht": 3}}), ["model.widht", "width"]),
        (with_({"model": {"alpha": 1.0}, "data": {"kapa": 2.0}}), ["data.kapa", "kappa"]),
        (with_({"model": {"alpha": 1.0}, "trian": {}}), ["'trian'", "train"]),
        (with_({"grid": {"model.alhpa": [1.0]}}), ["'model.alhpa'", "model.alpha"]),
        (with_({"grid": {"data.preset": ["separable"]}}), ["'data.preset'", "data.n"]),
        # wrong types
        (with_({"model": {"alpha": 1.0, "width": 2.5}}), ["model.width", "integer"]),
        (with_({"model": {"alpha": "small"}}), ["model.alpha", "real number"]),
        (with_({"model": {"alpha": True}}), ["model.alpha", "real number"]),
        (with_({"model": {"alpha": 1.0}, "data": {"balanced": 1}}), ["data.balanced", "boolean"]),
        ({**with_({"model": {"alpha": 1.0}}), "train": "gd"}, ["[train]", "a table"]),
        (with_({"grid": {"model.alpha": 0.1}}), ["grid.model.alpha", "list"]),
        (
            with_({"grid": {"model.alpha": {"logspace": [-1, 1]}}}),
            ["grid.model.alpha.logspace", "[a, b, num]"],
        ),
        (
            with_({"grid": {"model.alpha": {"logspace": [-1, 1, 2.5]}}}),
            ["grid.model.alpha.logspace[2]", "integer"],
        ),
        (with_({"grid": {"model.alpha": {"geomspace": [1, 2, 3]}}}), ["grid.model.alpha", "logspace"]),
        (with_({"model": {"alpha": 1.0}, "grid": {"seeds": "all"}}), ["grid.seeds", "integer"]),
        # out of range
        (with_({"model": {"alpha": 1.0, "width": 0}}), ["model.width", "integers >= 1"]),
        (with_({"model": {"alpha": 1.0}, "data": {"kappa": -1.0}}), ["data.kappa", "(0, inf)"]),
        (with_({"model": {"alpha": 1.0}, "data": {"n": 0}}), ["data.n", "integers >= 1"]),
        (with_({"model": {"alpha": 1.0}, "train": {"rtol": 1.5}}), ["train.rtol", "(0.0, 1.0)"]),
        (with_({"model": {"alpha": 1.0}, "train": {"engine": "adam"}}), ["train.engine", "'gd', 'sgd'"]),
        (
            with_({"model": {"alpha": 1.0}, "train": {"step_policy": "nope"}}),
            ["train.step_policy", "'constant'"],
        ),
        (with_({"model": {"alpha": 1.0}, "stop": {"rule": "loss"}}), ["stop.rule", "'positive_risk'"]),
        (with_({"model": {"alpha": 1.0}, "stop": {"eps": 0}}), ["stop.eps", "(0, inf)"]),
        (with_({"model": {"alpha": 1.0, "init": "orthogonal"}}), ["model.init", "'antisymmetric'"]),
        (with_({"model": {"alpha": 1.0}, "data": {"model": "spirals"}}), ["data.model", "'staircase'"]),
        (with_({"model": {"alpha": 1.0}, "data": {"preset": "huge"}}), ["data.preset", "'separable'"]),
        (with_({"model": {"alpha": 1.0}, "sweep": {"name": "a b"}}), ["sweep.name", "letters"]),
        (with_({"model": {"alpha": 1.0}, "sweep": {"name": ".."}}), ["sweep.name", "not starting with '.'"]),
        (with_({"model": {"alpha": 1.0}, "sweep": {"batch_size": 0}}), ["sweep.batch_size", ">= 1"]),
        (with_({"grid": {"model.alpha": [1.0, -1.0]}}), ["model.alpha", "(0, inf)"]),
        (with_({"grid": {"fls": [0.0]}}), ["fls", "(0, inf)"]),
        (with_({"model": {"alpha": 1.0}, "grid": {"data.n": [20, -3]}}), ["data.n", ">= 1"]),
        (with_({"model": {"alpha": 1.0}, "grid": {"seeds": 0}}), ["grid.seeds", ">= 1"]),
        (with_({"model": {"alpha": 1.0}, "grid": {"seeds": [0, -1]}}), ["grid.seeds", ">= 0"]),
        (with_({"model": {"alpha": 1e-200}}), ["model.alpha", "c alpha^2"]),
        (
            {"data": {"model": "staircase", "n": 8, "d": 3, "k": 4}, "model": {"alpha": 1.0}},
            ["data.k", "[1, 3]"],
        ),
        # missing, repeated or contradictory
        (BASE, ["model.alpha", "required"]),
        ({"model": {"alpha": 1.0}}, ["data.n", "required"]),
        (with_({"grid": {"model.alpha": []}}), ["grid.model.alpha", "at least one"]),
        (with_({"grid": {"model.alpha": [0.1, 0.2, 0.1]}}), ["grid.model.alpha", "0.1"]),
        (with_({"grid": {"model.alpha": [1, 1.0]}}), ["model.alpha", "distinct"]),
        (with_({"grid": {"model.alpha": [1.0], "fls": [1.0]}}), ["grid.fls", "grid.model.alpha"]),
        (with_({"model": {"alpha": 1.0, "init": "antisymmetric", "width": 9}}), ["model.width", "even"]),
        (
            with_({"model": {"alpha": 1.0}, "train": {"engine": "sgd", "batch_size": 41}}),
            ["train.batch_size", "[1, 40]"],
        ),
        (with_({"model": {"alpha": 1.0}, "phase": {"y": "data.n"}}), ["phase.y", "'seeds'"]),
        (with_({"model": {"alpha": 1.0}, "phase": {"x": "data.n"}}), ["phase.x", "'model.alpha'"]),
    ],
)
def test_invalid_configs_raise_config_error_naming_the_key_and_what_is_allowed(config, names):
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    message = str(caught.value)
    assert isinstance(caught.value, ParameterError)
    for name in names:
        assert name in message, message
    assert _ALLOWED in message or "required" in message, message


def test_file_errors_name_the_file(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\nalpha = 1\n")
    with pytest.raises(ConfigError, match="broken.toml.*not valid TOML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="missing.toml.*cannot be read"):
        load_config(tmp_path / "missing.toml")


def test_a_grid_key_may_replace_a_required_key_and_grid_values_override_tables():
    runs = expand_runs(
        load_config({"data": {"d": 5, "n": 9}, "model": {"alpha": 3.0}, "grid": {"data.n": [4]}})
    )
    assert [(r["data.n"], r["model.alpha"]) for r in runs] == [(4, 3.0)]
    gridded_sizes = load_config({"data": {"d": 5}, "grid": {"data.n": [4, 6], "model.alpha": [1.0]}})
    assert "n" not in gridded_sizes["data"] and "alpha" not in gridded_sizes["model"]


_scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=12),
)
_tables = st.dictionaries(
    st.text(min_size=1, max_size=10), st.one_of(_scalars, st.lists(_scalars, max_size=4))
)


@given(st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), _tables, max_size=4))
def test_dump_config_is_read_back_unchanged_by_tomllib(config):
    assert tomllib.loads(dump_config(config)) == config


@given(
    alphas=st.lists(st.floats(1e-6, 1e3), min_size=1, max_size=5, unique=True),
    seeds=st.integers(1, 4),
    n=st.lists(st.integers(2, 60), min_size=1, max_size=3, unique=True),
)
def test_every_grid_point_is_one_run_whose_keys_match_the_grid(alphas, seeds, n):
    config = load_config(with_({"grid": {"model.alpha": alphas, "data.n": n, "seeds": seeds}}))
    runs = expand_runs(config)
    assert len(runs) == len(alphas) * len(n) * seeds
    points = {(r["model.alpha"], r["data.n"], r["seed"]) for r in runs}
    assert points == {(a, m, s) for a in alphas for m in n for s in range(seeds)}
    assert load_config(tomllib.loads(dump_config(config))) == config
    assert [r["run_id"] for r in expand_runs(config)] == [r["run_id"] for r in runs]

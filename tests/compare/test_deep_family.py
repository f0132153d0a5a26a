"""The deep family: its config, its claims on constructed tables, and a tiny sweep through the run store
(docs/deep.md)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fls.compare import registry
from fls.compare.config_schema import ConfigError
from fls.compare.deep_claims import centered_arm, deep_interior_optimum, knob_equivalence
from fls.compare.deep_config import expand_deep_runs, load_deep_config
from fls.compare.deep_runner import members_per_batch, run_deep_batch
from fls.compare.deep_verify import DEFAULT_SWEEPS, deep_sweeps, verify_deep
from fls.compare.store import open_store
from fls.compare.verdict import ClaimContext
from fls.compare.vocabulary import THREAD_VARIABLES
from fls.theory.validation import ParameterError

C_GRID = [2.0**k for k in range(-8, 9, 2)]
CONTEXT = ClaimContext(n_boot=400)


def _table(
    accuracy, *, seeds: int = 6, centered: bool = False, knob: str = "multiplier", noise: float = 0.002
):
    """A run table of one cell: peak test accuracy accuracy(c) plus seeded noise, every run reached."""
    rng = np.random.default_rng(7)
    rows = []
    for c in C_GRID:
        for seed in range(seeds):
            rows.append(
                {
                    "run_id": f"{c}-{seed}-{centered}-{knob}",
                    "status": "target_reached",
                    "data.name": "digits",
                    "data.task": "multiclass",
                    "model.architecture": "mlp",
                    "model.widths": "128",
                    "stop.rule": "accuracy",
                    "model.c": c,
                    "model.centered": centered,
                    "model.knob": knob,
                    "seed": seed,
                    "peak_test_accuracy": accuracy(c) + noise * rng.standard_normal(),
                    "final_risk": 0.1 + 0.01 * np.log2(c) ** 2,
                    "theta_norm": 3.0 + seed,
                    "steps": 100 + seed,
                }
            )
    return pd.DataFrame(rows)


def _u_shape(c: float) -> float:
    return 0.97 - 0.004 * (np.log2(c) / 8) ** 2 * 8


def _flat(c: float) -> float:
    return 0.97


def test_the_default_configs_load_and_the_family_is_registered():
    assert "deep" in registry.families()
    sizes = {name: len(expand_deep_runs(config)) for name, config in deep_sweeps().items()}
    assert set(sizes) == set(DEFAULT_SWEEPS)
    digits = deep_sweeps()["digits-mlp"]
    assert len(digits["grid"]["model.c"]) >= 9 and min(digits["grid"]["model.c"]) == 2.0**-8
    assert max(digits["grid"]["model.c"]) == 2.0**8 and len(digits["grid"]["seeds"]) >= 4
    cifar = load_deep_config("compare/configs/deep_cifar10.toml")
    assert cifar["train"]["device"] == "cuda" and cifar["model"]["architecture"] == "resnet"


@pytest.mark.parametrize(
    ("tables", "named"),
    [
        ({"model": {"widths": "16-x"}}, "model.widths"),
        ({"model": {"batch_norm": True}}, "model.batch_norm"),
        ({"train": {"autocast": "bfloat16", "dtype": "float64"}}, "train.autocast"),
        ({"stop": {"accuracy": 1.5}}, "stop.accuracy"),
        ({"grid": {"model.width": [1, 2]}}, "model.width"),
        ({"data": {"name": "imagenet"}}, "data.name"),
        ({"train": {"device": 3}}, "train.device"),
        ({"train": {"device": "gpu"}}, "train.device"),
    ],
)
def test_a_bad_deep_config_names_the_key(tables, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_deep_config(tables)


def test_device_override_and_member_batches_per_device():
    (config,) = deep_sweeps("compare/configs/deep_digits_cnn.toml", device="cuda").values()
    run = expand_deep_runs(config)[0]
    assert run["train.device"] == "cuda"
    assert members_per_batch(run, 36) == 36  # one member batch per GPU worker
    assert members_per_batch({**run, "train.device": "cpu"}, 36) == 1  # conv nets: a loop on the CPU
    assert members_per_batch({**run, "train.device": "cpu", "model.architecture": "mlp"}, 36) == 36


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where CUDA is missing")
def test_a_cuda_run_without_cuda_is_refused_before_any_work():
    (config,) = deep_sweeps("compare/configs/deep_equivalence.toml", device="cuda").values()
    with pytest.raises(ParameterError, match="device = 'cuda' is not available"):
        run_deep_batch(expand_deep_runs(config)[:2])


def test_claim_a_passes_on_a_u_shape_and_fails_on_a_monotone_curve():
    passed = deep_interior_optimum(_table(_u_shape), CONTEXT)
    assert passed.verdict == "pass" and 2.0**-6 <= passed.value <= 2.0**6
    falling = deep_interior_optimum(_table(lambda c: 0.9 + 0.001 * np.log2(c)), CONTEXT)
    assert falling.verdict == "fail" and falling.value == 2.0**8
    flat = deep_interior_optimum(_table(_flat, noise=0.01), CONTEXT)
    assert flat.verdict != "pass"


def test_claim_a_leaves_out_c_values_without_results_and_says_so():
    table = _table(_u_shape)
    table.loc[table["model.c"] == 256.0, "status"] = "not_reached"
    result = deep_interior_optimum(table, CONTEXT)
    assert "256" in " ".join(result.evidence.values())
    assert max(result.data["cells"][0]["c"]) == 64.0


@given(st.permutations(list(range(54))))
def test_claim_a_does_not_depend_on_row_order(order):
    table = _table(_u_shape)
    shuffled = table.iloc[list(order)].reset_index(drop=True)
    assert (
        deep_interior_optimum(shuffled, CONTEXT).to_dict() == deep_interior_optimum(table, CONTEXT).to_dict()
    )


def test_claim_b_passes_for_equal_twins_and_fails_for_a_perturbed_one():
    plain, scaled = _table(_u_shape), _table(_u_shape, knob="init_scale")
    both = pd.concat([plain, scaled], ignore_index=True)
    assert knob_equivalence(both, CONTEXT).verdict == "pass"
    scaled.loc[3, "theta_norm"] *= 1 + 1e-6
    result = knob_equivalence(pd.concat([plain, scaled], ignore_index=True), CONTEXT)
    assert result.verdict == "fail" and result.value == pytest.approx(1e-6 / (1 + 1e-6), rel=1e-3)
    assert knob_equivalence(plain, CONTEXT).verdict == "inconclusive"


def test_claim_c_sees_centering_remove_the_large_c_arm():
    uncentered = _table(lambda c: 0.97 - 0.02 * max(0.0, np.log2(c)) / 8)
    centered = _table(_flat, centered=True)
    result = centered_arm(pd.concat([uncentered, centered], ignore_index=True), CONTEXT)
    assert result.verdict == "pass" and result.value == pytest.approx(0.02, abs=0.003)
    worse = _table(lambda c: 0.97 - 0.04 * max(0.0, np.log2(c)) / 8, centered=True)
    assert centered_arm(pd.concat([uncentered, worse], ignore_index=True), CONTEXT).verdict == "fail"


TINY = {
    "data": {"name": "digits", "n_train": 64, "n_test": 60},
    "model": {"architecture": "mlp", "widths": "16"},
    "train": {"eta": 0.5, "batch_size": 32, "max_steps": 60, "dtype": "float64"},
    "stop": {"rule": "accuracy", "accuracy": 0.9, "every": 5},
    "grid": {"model.centered": [False, True], "model.c": [0.25, 1.0, 4.0], "seeds": 2},
    "sweep": {"name": "tiny", "batch_size": 6},
}


def test_a_tiny_deep_sweep_runs_through_the_store_and_resumes(tmp_path, capsys, monkeypatch):
    for variable in THREAD_VARIABLES:  # verify sets them for its workers; restored after the test
        monkeypatch.setenv(variable, "1")
    path = verify_deep(tmp_path, config=TINY, workers=0)
    text = path.read_text()
    assert "(deep_a)" in text and "(deep_b)" in text and "(deep_c)" in text
    store = open_store(tmp_path / "store-tiny")
    table = store.table()
    assert len(table) == 12 and set(table["status"]) <= {"target_reached", "not_reached"}
    assert {"risk", "test_accuracy", "step"} <= set(store.arrays(table["run_id"][0]))
    claims = json.loads((tmp_path / "deep_claims.json").read_text())
    assert [claim["key"] for claim in claims] == ["deep_a", "deep_b", "deep_c"]
    parts = sorted((tmp_path / "store-tiny" / "runs").iterdir())
    verify_deep(tmp_path, config=TINY, workers=0)
    assert sorted((tmp_path / "store-tiny" / "runs").iterdir()) == parts  # resumed: nothing ran again
    assert "wall time" in capsys.readouterr().out


def test_docs_deep_lists_every_key_of_a_deep_config():
    from pathlib import Path

    from fls.compare.deep_config import DEEP_TABLES

    page = (Path(__file__).parents[2] / "docs" / "deep.md").read_text()
    missing = [f"{s}.{k}" for s, fields in DEEP_TABLES.items() for k in fields if f"`{s}.{k}`" not in page]
    assert missing == []


def test_a_sweep_whose_batches_all_failed_still_gets_a_report(tmp_path):
    from fls.compare.deep_report import write_deep_report

    (config,) = deep_sweeps(TINY).values()
    table = pd.DataFrame(
        [{**run, "status": "failed", "message": "no device"} for run in expand_deep_runs(config)]
    )
    results = registry.check_claims(table, families=["deep"])
    assert [r.verdict for r in results] == ["inconclusive"] * 3
    path = write_deep_report(tmp_path, results, {"tiny": table}, {"tiny": 1.0}, 1.0)
    assert "failed: 12" in path.read_text()

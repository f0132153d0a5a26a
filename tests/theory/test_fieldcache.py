"""The on-disk cache of the compiled field (theory/fieldcache.py): a hit computes what a fresh derivation does,
damaged or stale entries are re-derived, an unwritable directory falls back to memory, concurrent writers leave
one valid entry."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.special
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fls.testing import problems
from fls.theory import fieldcache
from fls.theory import symbolic as S
from fls.theory.augment import augment_inputs, augment_weights
from fls.theory.compiled import CompiledField, expit
from fls.theory.fieldsource import kernel_sources
from fls.theory.losses import LOSSES, as_sample_weight


@pytest.fixture(scope="module")
def fields(tmp_path_factory):
    """Per (loss, bias): the field derived in this process (and stored) and the field then read back from the
    cache."""
    models = [(loss, bias) for loss in LOSSES for bias in (False, True)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(fieldcache.CACHE_DIR_VARIABLE, str(tmp_path_factory.mktemp("cache")))
        derived = {model: CompiledField(*model) for model in models}
        read = {model: CompiledField(*model) for model in models}
    for model in models:
        assert derived[model].source_origin == fieldcache.STORED
        assert read[model].source_origin == fieldcache.HIT
    return derived, read


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(fieldcache.CACHE_DIR_VARIABLE, str(tmp_path))
    return tmp_path


@settings(max_examples=60, deadline=None)
@given(problem=problems())
def test_a_cache_hit_computes_what_the_fresh_derivation_computes(fields, problem):
    """Bit for bit, for every loss, with and without biases (augmented arrays) and weights."""
    p = problem
    model = (p.loss, p.b is not None)
    derived, read = fields[0][model], fields[1][model]
    W, X = (p.W, p.X) if p.b is None else (augment_weights(p.W, p.b), augment_inputs(p.X))
    v, y, c, weights = p.v, p.y, p.c, as_sample_weight(p.sample_weight, len(p.y))
    f = derived.output(W, v, X, c)
    np.testing.assert_array_equal(read.output(W, v, X, c), f)
    np.testing.assert_array_equal(read.risk(W, v, X, y, c, weights), derived.risk(W, v, X, y, c, weights))
    mine, fresh = read.field(W, v, X, y, c, weights=weights), derived.field(W, v, X, y, c, weights=weights)
    for a, b in zip(mine, fresh, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(read.sample_slope(f, y, weights), derived.sample_slope(f, y, weights))


@settings(max_examples=40, deadline=None)
@given(f=arrays(np.float64, (5,), elements=st.floats(-30.0, 30.0)), loss=st.sampled_from(LOSSES))
def test_sample_slope_is_the_derivative_of_the_sample_factor(fields, f, loss):
    """Independent reference: sympy's own lambdify of d s / d f, evaluated by numpy and scipy."""
    y = np.where(np.arange(f.size) % 2 == 0, 1.0, -1.0)
    sample = S.derive(loss).factors_W[2]
    namespace = {"Expit": scipy.special.expit, "exp": np.exp}
    reference = sp.lambdify((S.f, S.yi), sp.diff(sample, S.f), modules=[namespace, "numpy"])(f, y)
    np.testing.assert_allclose(fields[1][loss, False].sample_slope(f, y), reference, rtol=1e-13, atol=1e-300)


@settings(max_examples=40, deadline=None)
@given(
    f=arrays(np.float64, (6,), elements=st.floats(-700.0, 700.0)),
    loss=st.sampled_from(LOSSES),
    weighted=st.booleans(),
)
def test_the_numpy_sample_factor_is_sample_factor_bit_for_bit(fields, f, loss, weighted):
    """The flow engine's shortcut past the backend dispatch computes the same numbers, weights or none."""
    y = np.where(np.arange(f.size) % 2 == 0, 1.0, -1.0)
    weights = as_sample_weight(np.arange(1.0, 7.0), 6) if weighted else None
    field = fields[0][loss, False]
    np.testing.assert_array_equal(field.numpy_sample_factor(weights)(f, y), field.sample_factor(f, y, weights))


@given(z=arrays(np.float64, (7,), elements=st.floats(-750.0, 750.0)))
def test_expit_matches_scipy(z):
    """A few ulp; below the normal range scipy rounds to 0 where expit keeps the subnormal value."""
    np.testing.assert_allclose(expit(z), scipy.special.expit(z), rtol=4e-16, atol=1e-300)


@given(
    z=arrays(
        np.float64,
        st.integers(1, 9),
        elements=st.floats(allow_nan=True, allow_infinity=True) | st.floats(-800.0, 800.0),
    )
)
def test_expit_is_the_two_branch_form_bit_for_bit(z):
    """exp(min(z, 0)) / (1 + exp(-|z|)) is the two branches 1 / (1 + e) and e / (1 + e), e = exp(-|z|), written
    out independently here: the same bits (the flow engine's runs do not move), NaN where z is."""
    e = np.exp(-np.abs(z))
    branches = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    np.testing.assert_array_equal(expit(z), branches)


def test_expit_limits_and_scalars():
    assert expit(np.inf) == 1.0 and expit(-np.inf) == 0.0 and np.isnan(expit(np.nan))
    assert expit(0.0) == 0.5 and np.ndim(expit(2.0)) == 0


def test_the_entry_holds_every_kernel_the_compiled_code_uses():
    for loss in LOSSES:
        assert tuple(kernel_sources(loss)) == fieldcache.KERNEL_NAMES


def test_the_key_covers_what_the_derivation_depends_on(cache_dir):
    key = fieldcache.cache_key("logistic")
    assert {"loss", "fls", "sympy", "python", "derivation", "format"} <= set(key)
    other = fieldcache.entry_path({**key, "fls": key["fls"] + ".post1"})
    assert fieldcache.entry_path(key) != other
    assert fieldcache.entry_path(key).parent == cache_dir


def test_cache_directory_default_and_override(monkeypatch, tmp_path):
    monkeypatch.setenv(fieldcache.CACHE_DIR_VARIABLE, str(tmp_path / "mine"))
    assert fieldcache.cache_directory() == tmp_path / "mine"
    monkeypatch.delenv(fieldcache.CACHE_DIR_VARIABLE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert fieldcache.cache_directory() == tmp_path / "xdg" / "fls"


def _stored_entry(loss: str) -> tuple[dict, Path]:
    field = CompiledField(loss)
    assert field.source_origin in (fieldcache.STORED, fieldcache.HIT)
    key = fieldcache.cache_key(loss)
    return key, fieldcache.entry_path(key)


def _restamp(entry: dict) -> dict:
    """The entry with its checksum recomputed, as a consistent but wrong writer would leave it."""
    entry["checksum"] = fieldcache.entry_checksum(entry["key"], entry["kernels"])
    return entry


def _damage(path: Path, how: str) -> None:
    text = path.read_text()
    entry = json.loads(text)
    if how == "truncated":
        path.write_text(text[: len(text) // 2])
    elif how == "flipped":
        path.write_text(text.replace("return", "retorn", 1))
    elif how == "empty":
        path.write_text("")
    elif how == "stale":
        entry["key"]["fls"] = "0.0.0"
        path.write_text(json.dumps(_restamp(entry)))
    elif how == "not a function":
        entry["kernels"]["sample"] = "import os\n"
        path.write_text(json.dumps(_restamp(entry)))
    elif how == "kernel missing":
        del entry["kernels"]["loss"]
        path.write_text(json.dumps(_restamp(entry)))
    else:
        raise ValueError(how)


@pytest.mark.parametrize(
    "how", ["truncated", "flipped", "empty", "stale", "not a function", "kernel missing"]
)
def test_a_damaged_or_stale_entry_is_rederived(cache_dir, how):
    key, path = _stored_entry("squared")
    assert fieldcache.read_entry(key) is not None
    _damage(path, how)
    assert fieldcache.read_entry(key) is None
    field = CompiledField("squared")
    assert field.source_origin == fieldcache.STORED
    assert fieldcache.read_entry(key) == kernel_sources("squared")
    np.testing.assert_array_equal(field.losses(np.array([0.0, 3.0]), np.array([1.0, -1.0])), [0.5, 8.0])


def test_an_unwritable_cache_directory_falls_back_to_memory(monkeypatch, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(fieldcache.CACHE_DIR_VARIABLE, str(blocker / "cache"))
    field = CompiledField("exponential")
    assert field.source_origin == fieldcache.UNSTORED
    np.testing.assert_allclose(field.losses(np.array([0.0, 1.0]), np.array([1.0, 1.0])), [1.0, np.exp(-1.0)])
    assert [p.name for p in tmp_path.iterdir()] == ["a file"]


def _run(code: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, fieldcache.CACHE_DIR_VARIABLE: str(cache)}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=False
    )


HEAVY = "[name for name in ('torch', 'sympy') if name in sys.modules]"


#: Packages, and the numpy-side modules behind them, that must import without torch or sympy (docs/design.md
#: section 1): the package namespaces, the numerical limits, the flow engine and the kernel engine.
LIGHT_MODULES = (
    "fls.theory, fls.simulate, fls.simulate.flow, fls.simulate.train, fls.theory.lazy, fls.theory.mixture, "
    "fls.theory.smallinit, fls.simulate.data, fls.simulate.flow.api, fls.simulate.kernel"
)


def test_importing_the_packages_loads_neither_torch_nor_sympy(tmp_path):
    done = _run(f"import sys, {LIGHT_MODULES}; print({HEAVY})", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_warm_compile_field_does_not_import_sympy(cache_dir):
    _stored_entry("logistic")
    code = (
        "import sys\nfrom fls.theory import compile_field\nfield = compile_field('logistic')\n"
        f"print(field.source_origin, {HEAVY})"
    )
    done = _run(code, cache_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{fieldcache.HIT} []"


def test_processes_warming_the_cache_at_once_leave_one_valid_entry(tmp_path):
    code = "from fls.theory import compile_field\nprint(compile_field('squared').source_origin)"
    env = {**os.environ, fieldcache.CACHE_DIR_VARIABLE: str(tmp_path)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err.decode()
        assert out.decode().strip() in (fieldcache.STORED, fieldcache.HIT)
    assert [p.name for p in tmp_path.iterdir()] == [
        fieldcache.entry_path(fieldcache.cache_key("squared")).name
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(fieldcache.CACHE_DIR_VARIABLE, str(tmp_path))
        assert fieldcache.read_entry(fieldcache.cache_key("squared")) == kernel_sources("squared")

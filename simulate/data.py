"""Synthetic data models of docs/design.md section 3, each with a fixed test set and, where one exists, an exact test error.

Models (``make_data(name, ...)``):

- ``gaussian_mixture`` (A): y uniform in {-1, +1} (or exactly balanced), z ~ N(0, I_d), s = e_1 and

      x = (kappa y s + sigma z) / sqrt(kappa^2 + sigma^2 d),

  so E ||x||^2 = 1. The Bayes direction is s, the Bayes error Phi(-kappa / sigma), and a linear classifier
  sign(<w, x>) has the exact error E(w) = Phi(-(kappa / sigma) cos angle(w, s)).
- ``label_noise`` (B): A with round(rho n) training labels, chosen uniformly without replacement, flipped
  (``Dataset.flipped``); test labels are clean, so the test error is the clean-label error of A.
- ``rare_feature`` (C): as A, but each point independently belongs with probability p to the minority group
  (``Dataset.group`` = 1), whose class signal is mu2 = e_2 (orthogonal to s) instead of s. Group g has the exact
  error Phi(-(kappa / sigma) cos angle(w, mu_g)); the overall error weighs them by 1 - p and p.
- ``staircase`` (D): x uniform on {-1, +1}^d (not rescaled, ||x|| = sqrt(d)), target
  S_k(x) = x1 + x1 x2 + ... + x1...xk. ``task="regression"``: y = S_k(x), a real target (then ``Dataset.y`` is not
  a label vector). ``task="classification"``: y = sign(S_k(x)), with the tie rule sign(0) := x1. S_k is a sum of k
  terms in {-1, +1}, so it is odd (never 0) for odd k, while for even k it is 0 with positive probability (1/2 at
  k = 2); the rule equals y = sign(S_k(x) + x1 / 2) and keeps the classes exactly balanced (flipping x1 flips S_k).
- ``parity`` (control for D): x as in D, y = x1 x2 ... xk in {-1, +1}.

Seeding (docs/design.md section 6): the draws of one data set come from ``np.random.SeedSequence([h, seed])``, h a
SHA-256 hash of the canonical JSON of the model name and its distribution parameters (every resolved parameter
except the sample sizes n and n_test). Its two spawned children drive the training set and the test set, so the
test set does not change with n and the training set does not change with n_test.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from fls.theory.losses import TARGET_KINDS, as_sample_weight, as_targets, is_binary
from fls.theory.mixture import bayes_error, direction_error
from fls.theory.validation import (
    ParameterError,
    as_array,
    check_choice,
    check_in_range,
    check_int,
    check_positive,
)

#: Size of the fixed test set unless a call says otherwise (Monte-Carlo standard error <= 0.005 on an error rate).
DEFAULT_N_TEST = 10_000

#: Group indices of the rare-feature model (``Dataset.group``, ``test_error(..., group=...)``).
MAJORITY, MINORITY = 0, 1

#: Named parameter sets of the Gaussian-mixture family (A, and the base of B and C). Explicit arguments override.
GAUSSIAN_PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        # Measurable errors: Bayes error Phi(-2) = 2.3 %; docs/design.md section 3 states that the U-shape of the test
        # error over alpha shows with width m = 100 and stopping risk eps = 0.05.
        "low_signal": MappingProxyType({"n": 40, "d": 100, "kappa": 2.0, "sigma": 1.0, "balanced": True}),
        # Orthogonal separability (y_i y_j <x_i, x_j> > 0 for all i != j) holds for seeds 0..1999 (for low_signal:
        # none of seeds 0..199); every data set reports whether it holds (Dataset.orthogonally_separable).
        "separable": MappingProxyType({"n": 20, "d": 50, "kappa": 8.0, "sigma": 1.0, "balanced": True}),
    }
)


def seed_sequence(label: str, params: Mapping[str, Any], seed: int) -> np.random.SeedSequence:
    """The seed sequence of the draw named ``label`` with configuration ``params`` and user seed ``seed``.

    Entropy is (SHA-256 of the canonical JSON {label, params}, seed): stable across processes and Python versions,
    unlike ``hash()``. ``params`` must be JSON-serializable (floats, ints, bools, strings).
    """
    canonical = json.dumps({"label": label, "params": dict(params)}, sort_keys=True, separators=(",", ":"))
    digest = int.from_bytes(hashlib.sha256(canonical.encode("utf-8")).digest()[:16], "big")
    return np.random.SeedSequence([digest, check_int("seed", seed, minimum=0)])


@dataclass(frozen=True)
class SignalGroup:
    """One component of a Gaussian-mixture model: x | y ~ N(kappa y mu, sigma^2 I) up to a positive rescaling.

    A linear classifier sign(<w, x>) errs on it with probability Phi(-snr cos angle(w, mu)), snr = kappa / sigma
    (y <w, x> is Gaussian with mean kappa <w, mu> and standard deviation sigma ||w||).
    """

    weight: float
    mean_direction: np.ndarray
    snr: float

    def error(self, unit_direction: np.ndarray) -> float:
        """Exact error of sign(<u, x>) on this component (:func:`theory.mixture.direction_error`)."""
        return direction_error(unit_direction, self.mean_direction, self.snr, 1.0)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A training set, a fixed test set and what is known in closed form about the model that drew them.

    Attributes:
        name: the model (``gaussian_mixture``, ``label_noise``, ``rare_feature``, ``staircase``, ``parity``).
        seed: the user seed.
        params: every resolved parameter, defaults included (n, d, n_test and the model's own).
        X, y: training inputs (n, d) and labels (n,), float64. Labels are in {-1, +1}, except for
            ``staircase`` with ``task="regression"``, where y holds the real targets S_k(x).
        X_test, y_test: the fixed test set, drawn from its own seed stream (clean labels for ``label_noise``).
        bayes_direction: the direction of the Bayes classifier when it is linear, else None.
        bayes_error: the Bayes error when known in closed form, else None.
        group, group_test: ``rare_feature`` only: 0 (majority, signal s = e_1) or 1 (minority, signal e_2).
        flipped: ``label_noise`` only: which training labels were flipped.
        signal_groups: the mixture components that give :meth:`test_error` in closed form; None when the test
            error is a Monte-Carlo estimate on the test set.
        sample_weight: the user's per-sample weights of the training set (n,), as given (the engines normalize
            them to mean 1, :mod:`theory.losses`), or None.
    """

    name: str
    seed: int
    params: dict[str, Any]
    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    bayes_direction: np.ndarray | None = None
    bayes_error: float | None = None
    group: np.ndarray | None = None
    group_test: np.ndarray | None = None
    flipped: np.ndarray | None = None
    signal_groups: tuple[SignalGroup, ...] | None = None
    sample_weight: np.ndarray | None = None

    @classmethod
    def from_arrays(
        cls,
        X: Any,
        y: Any,
        *,
        loss: str,
        X_test: Any = None,
        y_test: Any = None,
        sample_weight: Any = None,
        name: str = "arrays",
    ) -> Dataset:
        """The user's own data as a Dataset (``name`` says where it came from, e.g. a file path).

        X (n, d) and y (n,) finite; y must be of the kind ``loss`` accepts (labels in {-1, +1} for a margin
        loss, real numbers for ``squared``: :func:`theory.losses.as_targets`); X_test (n_test, d) and y_test
        (n_test,) together or not at all (no test set: empty arrays); sample_weight (n,) finite, >= 0, with a
        positive sum. ``params`` records n, d, n_test, the loss and ``task`` ('classification' for labels,
        'regression' for real targets).
        """
        X = as_array("X", X, ndim=2)
        y = as_targets("y", y, loss=loss, n=X.shape[0])
        if (X_test is None) != (y_test is None):
            raise ParameterError("X_test and y_test must be given together (or neither, for no test set)")
        if X_test is None:
            X_test, y_test = np.empty((0, X.shape[1])), np.empty(0)
        else:
            X_test = as_array("X_test", X_test, ndim=2, shape=(None, X.shape[1]))
            y_test = as_targets("y_test", y_test, loss=loss, n=X_test.shape[0])
        if sample_weight is not None:
            as_sample_weight(sample_weight, X.shape[0])  # validates; the data set keeps the weights as given
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
        task = "classification" if TARGET_KINDS[loss] == "binary" or is_binary(y) else "regression"
        params = {"n": X.shape[0], "d": X.shape[1], "n_test": X_test.shape[0], "loss": loss, "task": task}
        return cls(name=name, seed=0, params=params, X=X, y=y, X_test=X_test, y_test=y_test,
                   sample_weight=sample_weight)  # fmt: skip

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    @property
    def test_error_is_exact(self) -> bool:
        """True when :meth:`test_error` is a closed form, False when it is measured on the test set."""
        return self.signal_groups is not None

    @property
    def orthogonally_separable(self) -> bool:
        """Whether the training set is orthogonally separable (docs/design.md section 2, small-initialization limit)."""
        from fls.theory.smallinit import orthogonal_separability

        return bool(orthogonal_separability(self.X, self.y).holds)

    def test_error(self, direction: Any, *, group: int | None = None) -> float:
        """Test error of the linear classifier sign(<direction, x>).

        Gaussian-mixture models (A, B, C): exact, sum over groups of weight * Phi(-(kappa/sigma) cos angle), or
        one group's error when ``group`` is given (``rare_feature``: 0 majority, 1 minority). Hypercube models
        (D, parity): the fraction of the fixed test set with y <direction, x> <= 0 (a zero score counts as an
        error); its standard error is sqrt(E (1 - E) / n_test). Closed forms use scipy's ``ndtr`` (relative
        error ~1e-15 into the far tail).
        """
        w = as_array("direction", direction, ndim=1, shape=(self.d,))
        norm = float(np.linalg.norm(w))
        if norm == 0.0:
            raise ParameterError(
                "direction is the zero vector; a linear classifier needs a nonzero direction"
            )
        if self.params.get("task") == "regression":
            raise ParameterError(
                "test_error needs class labels; this data set holds regression targets (task='regression'); "
                "allowed: task='classification'"
            )
        if self.signal_groups is None:
            if group is not None:
                raise ParameterError(
                    f"group = {group!r} is not supported by model {self.name!r}; allowed: None"
                )
            return float(np.mean(self.y_test * (self.X_test @ w) <= 0.0))
        unit = w / norm
        if group is None:
            return float(sum(g.weight * g.error(unit) for g in self.signal_groups))
        index = check_int("group", group, minimum=0)
        check_in_range("group", index, 0, len(self.signal_groups) - 1)
        return self.signal_groups[index].error(unit)


def staircase(X: Any, k: int) -> np.ndarray:
    """S_k(x) = x1 + x1 x2 + ... + x1 x2 ... xk for each row x of X (the cumulative products of the first k)."""
    X = as_array("X", X, ndim=2)
    k = _check_order("k", k, X.shape[1])
    return np.cumprod(X[:, :k], axis=1).sum(axis=1)


def staircase_label(X: Any, k: int) -> np.ndarray:
    """sign(S_k(x)) with ties (S_k = 0, possible for even k) broken by x1: sign(S_k(x) + x1 / 2) on the hypercube."""
    X = as_array("X", X, ndim=2)
    return np.sign(staircase(X, k) + X[:, 0] / 2)


def parity(X: Any, k: int) -> np.ndarray:
    """x1 x2 ... xk for each row x of X."""
    X = as_array("X", X, ndim=2)
    k = _check_order("k", k, X.shape[1])
    return np.prod(X[:, :k], axis=1)


# ---- parameter checks: each takes (name, value, resolved parameters so far) and returns the normalized value ----


def _positive(name: str, value: Any, _: Mapping[str, Any]) -> float:
    return check_positive(name, value)


def _flag(name: str, value: Any, _: Mapping[str, Any]) -> bool:
    return bool(check_choice(name, value, (True, False)))


def _flip_fraction(name: str, value: Any, _: Mapping[str, Any]) -> float:
    return check_in_range(name, value, 0.0, 0.5, closed="left")


def _probability(name: str, value: Any, _: Mapping[str, Any]) -> float:
    return check_in_range(name, value, 0.0, 1.0)


def _check_order(name: str, value: Any, d: int) -> int:
    k = check_int(name, value)
    if k > d:
        raise ParameterError(f"{name} = {k} is out of range; allowed: integers in [1, d] = [1, {d}]")
    return k


def _order(name: str, value: Any, resolved: Mapping[str, Any]) -> int:
    return _check_order(name, value, resolved["d"])


def _task(name: str, value: Any, _: Mapping[str, Any]) -> str:
    return check_choice(name, value, ("classification", "regression"))


_Check = Callable[[str, Any, Mapping[str, Any]], Any]
_Builder = Callable[[Mapping[str, Any], np.random.Generator, np.random.Generator], dict[str, Any]]

# ---- samplers ----


def _draw_labels(rng: np.random.Generator, size: int, balanced: bool) -> np.ndarray:
    """Uniform labels in {-1, +1}; balanced: exactly size - size // 2 positives, in random order."""
    if balanced:
        return rng.permutation(np.where(np.arange(size) < size - size // 2, 1.0, -1.0))
    return np.where(rng.random(size) < 0.5, -1.0, 1.0)


def _draw_mixture(
    rng: np.random.Generator, size: int, params: Mapping[str, Any], minority_probability: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x = (kappa y e_{g+1} + sigma z) / sqrt(kappa^2 + sigma^2 d), g = 1 with probability minority_probability."""
    kappa, sigma, d = params["kappa"], params["sigma"], params["d"]
    y = _draw_labels(rng, size, params["balanced"])
    group = (rng.random(size) < minority_probability).astype(np.int64)
    X = sigma * rng.standard_normal((size, d))
    X[np.arange(size), group] += kappa * y
    X /= np.sqrt(kappa**2 + sigma**2 * d)
    return X, y, group


def _mixture_fields(
    params: Mapping[str, Any],
    train_rng: np.random.Generator,
    test_rng: np.random.Generator,
    minority_probability: float,
) -> dict[str, Any]:
    X, y, group = _draw_mixture(train_rng, params["n"], params, minority_probability)
    X_test, y_test, group_test = _draw_mixture(test_rng, params["n_test"], params, minority_probability)
    return {"X": X, "y": y, "X_test": X_test, "y_test": y_test, "group": group, "group_test": group_test}


def _build_gaussian_mixture(
    params: Mapping[str, Any], train_rng: np.random.Generator, test_rng: np.random.Generator
) -> dict[str, Any]:
    fields = _mixture_fields(params, train_rng, test_rng, 0.0)
    del fields["group"], fields["group_test"]
    d, snr = params["d"], params["kappa"] / params["sigma"]
    return {
        **fields,
        "bayes_direction": np.eye(d)[0],
        "bayes_error": bayes_error(snr, 1.0),
        "signal_groups": (SignalGroup(1.0, np.eye(d)[0], snr),),
    }


def _build_label_noise(
    params: Mapping[str, Any], train_rng: np.random.Generator, test_rng: np.random.Generator
) -> dict[str, Any]:
    fields = _build_gaussian_mixture(params, train_rng, test_rng)
    n = params["n"]
    flipped = np.zeros(n, dtype=bool)
    flipped[train_rng.choice(n, size=round(params["rho"] * n), replace=False)] = True
    return {**fields, "y": np.where(flipped, -fields["y"], fields["y"]), "flipped": flipped}


def _build_rare_feature(
    params: Mapping[str, Any], train_rng: np.random.Generator, test_rng: np.random.Generator
) -> dict[str, Any]:
    p, d, snr = params["p"], params["d"], params["kappa"] / params["sigma"]
    return {
        **_mixture_fields(params, train_rng, test_rng, p),
        "signal_groups": (SignalGroup(1.0 - p, np.eye(d)[0], snr), SignalGroup(p, np.eye(d)[1], snr)),
    }


def _draw_hypercube(rng: np.random.Generator, size: int, d: int) -> np.ndarray:
    return np.where(rng.random((size, d)) < 0.5, -1.0, 1.0)


def _hypercube_fields(
    params: Mapping[str, Any],
    train_rng: np.random.Generator,
    test_rng: np.random.Generator,
    target: Callable[[np.ndarray, int], np.ndarray],
) -> dict[str, Any]:
    X = _draw_hypercube(train_rng, params["n"], params["d"])
    X_test = _draw_hypercube(test_rng, params["n_test"], params["d"])
    return {"X": X, "y": target(X, params["k"]), "X_test": X_test, "y_test": target(X_test, params["k"])}


def _build_staircase(
    params: Mapping[str, Any], train_rng: np.random.Generator, test_rng: np.random.Generator
) -> dict[str, Any]:
    regression = params["task"] == "regression"
    fields = _hypercube_fields(params, train_rng, test_rng, staircase if regression else staircase_label)
    return {**fields, "bayes_error": None if regression else 0.0}


def _build_parity(
    params: Mapping[str, Any], train_rng: np.random.Generator, test_rng: np.random.Generator
) -> dict[str, Any]:
    return {**_hypercube_fields(params, train_rng, test_rng, parity), "bayes_error": 0.0}


@dataclass(frozen=True)
class _Model:
    parameters: Mapping[str, tuple[Any, _Check]]
    build: _Builder
    min_d: int = 1
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


_MIXTURE_PARAMETERS = {"kappa": (2.0, _positive), "sigma": (1.0, _positive), "balanced": (False, _flag)}

MODELS: Mapping[str, _Model] = MappingProxyType(
    {
        "gaussian_mixture": _Model(_MIXTURE_PARAMETERS, _build_gaussian_mixture, presets=GAUSSIAN_PRESETS),
        "label_noise": _Model(
            {**_MIXTURE_PARAMETERS, "rho": (0.1, _flip_fraction)},
            _build_label_noise,
            presets=GAUSSIAN_PRESETS,
        ),
        "rare_feature": _Model(
            {**_MIXTURE_PARAMETERS, "p": (0.1, _probability)}, _build_rare_feature, 2, GAUSSIAN_PRESETS
        ),
        "staircase": _Model({"k": (3, _order), "task": ("classification", _task)}, _build_staircase),
        "parity": _Model({"k": (3, _order)}, _build_parity),
    }
)


def _resolve(
    name: str, model: _Model, preset: str | None, sizes: Mapping[str, Any], params: Mapping[str, Any]
) -> dict[str, Any]:
    """Defaults < preset < explicit arguments; every value checked and normalized (floats as float, ...)."""
    unknown = sorted(set(params) - set(model.parameters))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {unknown} for model {name!r}; allowed: n, d, seed, n_test, preset, "
            + ", ".join(model.parameters)
        )
    chosen: dict[str, Any] = {}
    if preset is not None:
        if not model.presets:
            raise ParameterError(f"preset = {preset!r} is not supported: model {name!r} has no presets")
        chosen.update(model.presets[check_choice("preset", preset, model.presets)])
    chosen.update({key: value for key, value in sizes.items() if value is not None or key not in chosen})
    chosen.update(params)
    for size in ("n", "d"):
        if chosen.get(size) is None:
            raise ParameterError(f"{size} is required for model {name!r} (give it, or a preset that sets it)")
    resolved = {
        "n": check_int("n", chosen["n"]),
        "d": check_int("d", chosen["d"], minimum=model.min_d),
        "n_test": check_int("n_test", chosen["n_test"]),
    }
    for key, (default, check) in model.parameters.items():
        resolved[key] = check(key, chosen.get(key, default), resolved)
    return resolved


def make_data(
    name: str,
    *,
    n: int | None = None,
    d: int | None = None,
    seed: int,
    n_test: int = DEFAULT_N_TEST,
    preset: str | None = None,
    **params: Any,
) -> Dataset:
    """Draw a training set and a fixed test set from the data model ``name`` (see the module docstring).

    ``n`` and ``d`` come from the arguments or from ``preset`` (a key of the model's presets; explicit arguments
    override it). Model parameters and their defaults: gaussian_mixture kappa=2.0, sigma=1.0, balanced=False;
    label_noise adds rho=0.1 (in [0, 0.5)); rare_feature adds p=0.1 (in [0, 1]) and needs d >= 2;
    staircase k=3 (in [1, d]), task='classification' or 'regression'; parity k=3 (in [1, d]).
    Bad input raises :class:`~theory.validation.ParameterError` naming the parameter and its allowed range.
    """
    model = MODELS[check_choice("name", name, MODELS)]
    seed = check_int("seed", seed, minimum=0)
    resolved = _resolve(name, model, preset, {"n": n, "d": d, "n_test": n_test}, params)
    distribution = {key: value for key, value in resolved.items() if key not in ("n", "n_test")}
    train_seq, test_seq = seed_sequence(name, distribution, seed).spawn(2)
    fields = model.build(resolved, np.random.default_rng(train_seq), np.random.default_rng(test_seq))
    return Dataset(name=name, seed=seed, params=resolved, **fields)

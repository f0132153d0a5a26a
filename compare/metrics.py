"""What a trained network is measured by (docs/design.md section 5): error, alignment, strength, over-fitting.

Every function takes plain numpy arrays of one network f(x) = c sum_j v_j relu(<w_j, x>) (W (m, d), v (m,)) and
returns a number or a small array; :func:`run_metrics` collects them into one table row (a network with hidden
biases b is measured as the bias-free network on inputs (x, 1) with rows (w_j, b_j), :mod:`theory.augment`,
except for the alignment cosines, which compare the w_j with directions of input space). Definitions:

- test error of the network: the fraction of the fixed test set with y f(x) <= 0 (Monte Carlo, standard error
  sqrt(E (1 - E) / n_test)); of the linear surrogate sign(<w_hat+, x>): exact on the Gaussian mixtures
  (``Dataset.test_error``), with w_hat+ = sum over v_j > 0 of v_j w_j (docs/design.md section 2);
- per-group errors (rare feature: group 1 is the minority);
- alignment: psi_j = cos(w_j, x+) per neuron, Psi = cos(w_hat+, x+), the cosine of w_hat+ with the Bayes
  direction, activation classes on the training set (S+: active on positive points only, S-: on negative points
  only, dead: on none, mixed: the rest), stable rank ||W||_F^2 / ||W||_2^2, escape time, and Psi at the escape
  time (read off the run's alignment trajectory, :func:`value_at`);
- strength: relative weight movement ||theta - theta0|| / ||theta0||, tangent-kernel movement
  ||K - K0||_F / ||K0||_F (empirical kernels on the training points), kernel-target alignment
  y^T K y / (n ||K||_F);
- over-fitting: f0 contamination ||f0|| / ||f - f0|| on the test points, fraction of flipped labels fitted;
- the over-alignment / over-fitting split OA + OF of the excess error (:mod:`theory.mixture`).

Regression runs (real targets, ``Dataset.params["task"] == "regression"``) have no labels, so no error rate, no
class sums and no activation classes: they get ``test_mse`` = mean (f(x) - y)^2 over the test set with its
standard error (sample standard deviation / sqrt(n_test)), ``train_mse`` (unweighted) on the training set,
and of the measures above those that do not need classes: ``frac_dead`` (neurons active on no training point),
stable rank, escape time, weight and kernel movement, kernel-target alignment y^T K y / (||y||^2 ||K||_F)
(defined for any real y) and the f0 contamination. Every other column is NaN.
A data set without a test set (the user's file without X_test) has NaN test measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fls.simulate.data import Dataset
from fls.theory.augment import augment_inputs, augment_weights
from fls.theory.compiled import compile_field
from fls.theory.lazy import empirical_tangent_kernel
from fls.theory.mixture import oa_of_split
from fls.theory.smallinit import class_sums
from fls.theory.validation import as_array, check_in_range

#: Fraction of the way from the initial risk to the target at which a run counts as escaped (:func:`escape_time`).
ESCAPE_FRACTION = 0.1

#: Test points per chunk when evaluating the network (bounds the (m, chunk) pre-activation matrix).
TEST_CHUNK = 4096


def cosine(a: Any, b: Any) -> float:
    """cos angle(a, b) = <a, b> / (||a|| ||b||); NaN when either vector is zero."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norms if norms > 0 else float("nan")


def positive_combination(W: Any, v: Any) -> np.ndarray:
    """w_hat+ = sum over v_j > 0 of v_j w_j: the direction the positive neurons vote for (docs/design.md section 2)."""
    W = as_array("W", W, ndim=2)
    v = as_array("v", v, ndim=1, shape=(W.shape[0],))
    return (np.where(v > 0, v, 0.0)) @ W


def neuron_cosines(W: Any, direction: Any) -> np.ndarray:
    """psi_j = cos(w_j, direction) for every neuron (NaN for a zero neuron)."""
    W = as_array("W", W, ndim=2)
    u = as_array("direction", direction, ndim=1, shape=(W.shape[1],))
    norms = np.linalg.norm(W, axis=1) * np.linalg.norm(u)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, (W @ u) / norms, np.nan)


def stable_rank(W: Any) -> float:
    """||W||_F^2 / ||W||_2^2: between 1 (rank one) and rank(W); NaN for W = 0."""
    W = as_array("W", W, ndim=2)
    top = float(np.linalg.norm(W, 2)) ** 2
    return float(np.sum(W**2)) / top if top > 0 else float("nan")


def activation_classes(W: Any, X: Any, y: Any) -> dict[str, float]:
    """Fractions of neurons in S+ (active on >= 1 training point, all of class +1), S- (likewise -1), dead
    (active on none) and mixed (active on both classes); relu'(0) = 0, so <w, x> = 0 counts as inactive."""
    W = as_array("W", W, ndim=2)
    X = as_array("X", X, ndim=2, shape=(None, W.shape[1]))
    active = (W @ X.T) > 0
    on_plus = (active & (np.asarray(y) > 0)[None, :]).any(axis=1)
    on_minus = (active & (np.asarray(y) < 0)[None, :]).any(axis=1)
    return {
        "frac_s_plus": float(np.mean(on_plus & ~on_minus)),
        "frac_s_minus": float(np.mean(on_minus & ~on_plus)),
        "frac_dead": float(np.mean(~on_plus & ~on_minus)),
        "frac_mixed": float(np.mean(on_plus & on_minus)),
    }


def escape_time(t: Any, risk: Any, eps: float, *, fraction: float = ESCAPE_FRACTION) -> float:
    """First time the training risk has covered ``fraction`` of its way from R(0) down to the target eps.

    The end of the small-norm phase (docs/design.md section 2: t_alpha ~ log(1/alpha) / lambda+ at small alpha), read off
    the risk trajectory with linear interpolation between saved times; NaN when it never gets there (or when
    R(0) <= eps: nothing to escape from).
    """
    t = as_array("t", t, ndim=1)
    risk = as_array("risk", risk, ndim=1, shape=(t.shape[0],))
    fraction = check_in_range("fraction", fraction, 0.0, 1.0, closed="neither")
    level = risk[0] - fraction * (risk[0] - eps)
    if risk[0] <= eps or not np.any(risk <= level):
        return float("nan")
    k = int(np.argmax(risk <= level))
    if k == 0:
        return float(t[0])
    r0, r1 = risk[k - 1], risk[k]
    return float(t[k - 1] + (t[k] - t[k - 1]) * (r0 - level) / (r0 - r1))


def value_at(t: Any, values: Any, when: float) -> float:
    """values(t) at time ``when`` by linear interpolation; NaN when ``when`` is NaN or outside [t0, t_end]."""
    t, values = np.asarray(t, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if not np.isfinite(when) or t.size == 0 or when < t[0] or when > t[-1]:
        return float("nan")
    return float(np.interp(when, t, values))


def network_outputs(W: np.ndarray, v: np.ndarray, X: np.ndarray, c: float) -> np.ndarray:
    """f(x) = c sum_j v_j relu(<w_j, x>) on the rows of X, in chunks of :data:`TEST_CHUNK` points."""
    field = compile_field("logistic")
    if len(X) == 0:
        return np.empty(0)
    return np.concatenate(
        [field.output(W, v, X[i : i + TEST_CHUNK], c) for i in range(0, len(X), TEST_CHUNK)]
    )


def error_rate(scores: Any, labels: Any) -> tuple[float, float]:
    """(E, its standard error): E the fraction of y * score <= 0 (a zero score is an error), SE sqrt(E (1 - E) / N)."""
    wrong = np.asarray(labels) * np.asarray(scores) <= 0
    rate = float(np.mean(wrong))
    return rate, float(np.sqrt(rate * (1 - rate) / wrong.size))


def relative_change(W: Any, v: Any, W0: Any, v0: Any) -> float:
    """||theta - theta0|| / ||theta0||, theta = (W, v): how far training moved the weights, relative to init."""
    moved = np.sqrt(np.sum((np.asarray(W) - W0) ** 2) + np.sum((np.asarray(v) - v0) ** 2))
    start = np.sqrt(np.sum(np.asarray(W0) ** 2) + np.sum(np.asarray(v0) ** 2))
    return float(moved / start) if start > 0 else float("nan")


def kernel_movement(K0: Any, K: Any) -> float:
    """||K - K0||_F / ||K0||_F: 0 for an untrained network, O(1) or more when the features changed."""
    K0, K = np.asarray(K0, dtype=np.float64), np.asarray(K, dtype=np.float64)
    scale = float(np.linalg.norm(K0))
    return float(np.linalg.norm(K - K0)) / scale if scale > 0 else float("nan")


def kernel_target_alignment(K: Any, y: Any) -> float:
    """<K, y y^T>_F / (||K||_F ||y y^T||_F) = y^T K y / (||y||^2 ||K||_F) (1: K = y y^T); ||y||^2 = n for labels
    y in {-1, +1}^n."""
    K, y = np.asarray(K, dtype=np.float64), np.asarray(y, dtype=np.float64)
    scale = float(np.linalg.norm(K)) * float(y @ y)
    return float(y @ K @ y) / scale if scale > 0 else float("nan")


def f0_contamination(f0: Any, f: Any) -> float:
    """||f0|| / ||f - f0|| over the test points: the size of the initial function against the learned part."""
    f0, f = np.asarray(f0, dtype=np.float64), np.asarray(f, dtype=np.float64)
    learned = float(np.linalg.norm(f - f0))
    return float(np.linalg.norm(f0)) / learned if learned > 0 else float("inf")


def squared_error(f: Any, y: Any) -> tuple[float, float]:
    """(mean (f_i - y_i)^2, its standard error: sample standard deviation / sqrt(N)); NaN for no points."""
    errors = (np.asarray(f, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2
    if errors.size == 0:
        return float("nan"), float("nan")
    spread = float(np.std(errors, ddof=1)) if errors.size > 1 else float("nan")
    return float(np.mean(errors)), spread / float(np.sqrt(errors.size))


def is_regression(dataset: Dataset) -> bool:
    """Whether the data set holds real targets rather than labels (``params["task"]``, module docstring)."""
    return dataset.params.get("task") == "regression"


def fitted_flipped(f: Any, y: Any, flipped: Any) -> float:
    """Fraction of the flipped training labels the network fits (y_i f(x_i) > 0 with the noisy label y_i)."""
    flipped = np.asarray(flipped, dtype=bool)
    if not flipped.any():
        return float("nan")
    return float(np.mean((np.asarray(y) * np.asarray(f))[flipped] > 0))


@dataclass(frozen=True)
class AlignmentReference:
    """The directions alignment is measured against: the positive class sum x+ and the Bayes direction."""

    x_plus: np.ndarray
    bayes: np.ndarray | None

    @classmethod
    def of(cls, dataset: Dataset) -> AlignmentReference:
        labels_known = np.all(np.isin(dataset.y, (-1.0, 1.0)))
        x_plus = class_sums(dataset.X, dataset.y)[0] if labels_known else np.full(dataset.d, np.nan)
        return cls(x_plus, dataset.bayes_direction)


def alignment_observables(W: Any, v: Any, reference: AlignmentReference) -> dict[str, float]:
    """Psi = cos(w_hat+, x+), cos(w_hat+, Bayes direction) (NaN without one) and ||theta||: cheap enough to take
    at every stage of a run (the ``obs_*`` trajectories)."""
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging network gives inf or NaN, not a warning
        w_hat = positive_combination(W, v)
        return {
            "Psi": cosine(w_hat, reference.x_plus),
            "cos_bayes": cosine(w_hat, reference.bayes) if reference.bayes is not None else float("nan"),
            "norm": float(np.sqrt(np.sum(np.asarray(W) ** 2) + np.sum(np.asarray(v) ** 2))),
        }


#: Every metric column :func:`run_metrics` may write, so that rows of failed runs have the same columns (NaN).
METRIC_COLUMNS = (
    "test_error",
    "test_error_se",
    "surrogate_error",
    "bayes_error",
    "excess_error",
    "train_error",
    "minority_error",
    "minority_error_se",
    "surrogate_minority_error",
    "Psi",
    "cos_bayes",
    "cos_class_sum_bayes",
    "psi_mean",
    "psi_max",
    "frac_s_plus",
    "frac_s_minus",
    "frac_dead",
    "frac_mixed",
    "stable_rank",
    "escape_time",
    "weight_change",
    "kernel_movement",
    "kta_init",
    "kta_final",
    "f0_contamination",
    "fitted_flipped",
    "oa",
    "of",
    "test_mse",
    "test_mse_se",
    "train_mse",
)


def empty_metrics() -> dict[str, float]:
    """A row fragment with every metric column set to NaN."""
    return dict.fromkeys(METRIC_COLUMNS, float("nan"))


def run_metrics(
    W: Any,
    v: Any,
    W0: Any,
    v0: Any,
    dataset: Dataset,
    *,
    c: float,
    t: Any,
    risk: Any,
    eps: float,
    b: Any = None,
    b0: Any = None,
) -> dict[str, float]:
    """Every metric of the module docstring for the final network (W, v, b) trained from (W0, v0, b0) on
    ``dataset`` (b and b0 None for a bias-free network).

    ``t`` and ``risk`` are the run's risk trajectory (for the escape time). Metrics that need what a data model
    does not have (a Bayes direction, flipped labels, groups, binary labels, a test set) are NaN.
    """
    W, v, W0, v0 = (np.asarray(a, dtype=np.float64) for a in (W, v, W0, v0))
    X, y, X_test = dataset.X, dataset.y, dataset.X_test
    rows, rows0 = W, W0
    if b is not None:
        rows, rows0 = augment_weights(W, b), augment_weights(W0, b0)
        X, X_test = augment_inputs(X), augment_inputs(X_test)
    out = empty_metrics()
    f_test = network_outputs(rows, v, X_test, c)
    f0_test = network_outputs(rows0, v0, X_test, c)
    f_train = network_outputs(rows, v, X, c)
    out["f0_contamination"] = f0_contamination(f0_test, f_test) if len(f_test) else float("nan")
    out["stable_rank"] = stable_rank(rows)
    out["escape_time"] = escape_time(t, risk, eps)
    out["weight_change"] = relative_change(rows, v, rows0, v0)
    K0 = empirical_tangent_kernel(rows0, v0, X, X, c=c)
    K = empirical_tangent_kernel(rows, v, X, X, c=c)
    out["kernel_movement"] = kernel_movement(K0, K)
    out["kta_init"] = kernel_target_alignment(K0, y)
    out["kta_final"] = kernel_target_alignment(K, y)
    if is_regression(dataset):
        out["test_mse"], out["test_mse_se"] = squared_error(f_test, dataset.y_test)
        out["train_mse"] = squared_error(f_train, y)[0]
        out["frac_dead"] = float(np.mean(~((rows @ X.T) > 0).any(axis=1)))
        return out
    out.update(_classification_metrics(W, v, rows, X, dataset, f_train, f_test))
    return out


def _classification_metrics(
    W: np.ndarray,
    v: np.ndarray,
    rows: np.ndarray,
    X: np.ndarray,
    dataset: Dataset,
    f_train: np.ndarray,
    f_test: np.ndarray,
) -> dict[str, float]:
    """The metrics that need class labels (W the first layer without biases, ``rows`` with them, X the
    inputs the rows act on)."""
    y = dataset.y
    out: dict[str, float] = {}
    if len(f_test):
        out["test_error"], out["test_error_se"] = error_rate(f_test, dataset.y_test)
    out["train_error"] = error_rate(f_train, y)[0]
    if dataset.flipped is not None:
        out["fitted_flipped"] = fitted_flipped(f_train, y, dataset.flipped)
    if dataset.group_test is not None:
        minority = dataset.group_test == 1
        if minority.any():
            out["minority_error"], out["minority_error_se"] = error_rate(
                f_test[minority], dataset.y_test[minority]
            )
    w_hat = positive_combination(W, v)
    reference = AlignmentReference.of(dataset)
    psi = neuron_cosines(W, reference.x_plus)
    positive = v > 0
    out["Psi"] = cosine(w_hat, reference.x_plus)
    out["psi_mean"] = float(np.nanmean(psi[positive])) if positive.any() else float("nan")
    out["psi_max"] = float(np.nanmax(psi)) if np.any(np.isfinite(psi)) else float("nan")
    out.update(activation_classes(rows, X, y))
    if dataset.test_error_is_exact and np.linalg.norm(w_hat) > 0:
        out["surrogate_error"] = dataset.test_error(w_hat)
        if dataset.signal_groups is not None and len(dataset.signal_groups) > 1:
            out["surrogate_minority_error"] = dataset.test_error(w_hat, group=1)
    if dataset.bayes_direction is not None:
        out["cos_bayes"] = cosine(w_hat, dataset.bayes_direction)
        out["cos_class_sum_bayes"] = cosine(reference.x_plus, dataset.bayes_direction)
    if dataset.bayes_error is not None:
        out["bayes_error"] = float(dataset.bayes_error)
        out["excess_error"] = out.get("test_error", float("nan")) - out["bayes_error"]
    if dataset.bayes_direction is not None and "kappa" in dataset.params and np.isfinite(out["Psi"]):
        split = oa_of_split(
            w_hat, reference.x_plus, dataset.bayes_direction, dataset.params["kappa"], dataset.params["sigma"]
        )
        out["oa"], out["of"] = split.oa, split.of
    return out

"""Feature-learning strength and feature quality of one trained two-layer network (docs/design.md section 5).

Strength (how much training changed the network; 0 for an untrained one), with theta = (W, v), K the empirical
tangent kernel on the training points (:func:`theory.lazy.empirical_tangent_kernel`) and Phi = relu(X W^T) the
hidden representation of the training points:

- ``weight_change`` = ||theta_T - theta_0|| / ||theta_0||                          (:func:`compare.metrics.relative_change`)
- ``kernel_change`` = ||K_T - K_0||_F / ||K_0||_F                                  (:func:`compare.metrics.kernel_movement`)
- ``alignment_change`` = A(K_T, y) - A(K_0, y), A(K, y) = y^T K y / (||K||_F ||y||^2) (kernel-target alignment)
- ``cka_change`` = 1 - CKA(Phi_0, Phi_T), linear CKA (:func:`linear_cka`).

Quality (how much the learned features improve generalization over a kernel method), from test errors E
(:func:`prediction_error`: mean squared error for real targets, error rate for labels): the error of the kernel at init
divided by the error of the method that uses learned features,

- ``gain_network`` = E(tangent kernel at init) / E(network),
- ``gain_tangent`` = E(tangent kernel at init) / E(tangent after-kernel),
- ``gain_conjugate`` = E(conjugate kernel at init) / E(conjugate after-kernel),

all with the empirical kernels of the same network (same width); > 1 when the learned features help. An error
rate of 0 is floored at half a test point, 1 / (2 n_test), so every gain is finite (the gain is then a lower
bound).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fls.compare.metrics import kernel_movement, kernel_target_alignment, relative_change
from fls.theory.lazy import empirical_tangent_kernel
from fls.theory.validation import ParameterError, as_array, check_choice

#: Tasks :func:`prediction_error` knows: squared error of real targets, error rate of labels in {-1, +1}.
TASKS = ("regression", "classification")

#: Strength measures (:func:`strength_measures`) and quality measures (:func:`quality_gains`), by column name.
STRENGTH_MEASURES = ("weight_change", "kernel_change", "alignment_change", "cka_change")
QUALITY_MEASURES = ("gain_network", "gain_tangent", "gain_conjugate")


def linear_cka(A: Any, B: Any) -> float:
    """Linear centered kernel alignment of two representations of the same n points, A (n, p) and B (n, q).

        CKA(A, B) = ||B_c^T A_c||_F^2 / (||A_c^T A_c||_F ||B_c^T B_c||_F),   A_c = A - column means,

    which equals the centered alignment <H A A^T H, H B B^T H>_F / (||H A A^T H||_F ||H B B^T H||_F) of the two
    linear Gram matrices (H the centering matrix) at O(n p q) instead of O(n^2 (p + q)) cost. In [0, 1]; 1 when
    B = s A Q (s != 0, Q orthogonal); invariant to isotropic scaling and orthogonal maps of either side, not to
    general linear maps. NaN when a side is constant (its centered Gram matrix is 0).
    """
    A = as_array("A", A, ndim=2)
    B = as_array("B", B, ndim=2, shape=(A.shape[0], None))
    A_c, B_c = A - A.mean(axis=0), B - B.mean(axis=0)
    cross = float(np.sum((B_c.T @ A_c) ** 2))
    norms = float(np.linalg.norm(A_c.T @ A_c) * np.linalg.norm(B_c.T @ B_c))
    return cross / norms if norms > 0 else float("nan")


def strength_measures(
    W0: Any,
    v0: Any,
    W: Any,
    v: Any,
    X: Any,
    y: Any,
    *,
    c: float = 1.0,
    K0: np.ndarray | None = None,
    K: np.ndarray | None = None,
) -> dict[str, float]:
    """The four strength measures of the module docstring, on the training set (X, y).

    ``K0`` and ``K`` (the empirical tangent kernels on X at init and at the stop) may be passed when the caller
    has them already; otherwise they are computed.
    """
    X = as_array("X", X, ndim=2)
    y = as_array("y", y, ndim=1, shape=(X.shape[0],))
    K0 = empirical_tangent_kernel(W0, v0, X, X, c=c) if K0 is None else K0
    K = empirical_tangent_kernel(W, v, X, X, c=c) if K is None else K
    features0, features = np.maximum(X @ np.asarray(W0).T, 0.0), np.maximum(X @ np.asarray(W).T, 0.0)
    return {
        "weight_change": relative_change(W, v, W0, v0),
        "kernel_change": kernel_movement(K0, K),
        "alignment_change": kernel_target_alignment(K, y) - kernel_target_alignment(K0, y),
        "cka_change": 1.0 - linear_cka(features0, features),
    }


def prediction_error(predictions: Any, targets: Any, task: str) -> float:
    """Mean squared error (``regression``) or the fraction with y f <= 0 (``classification``, a zero counts as an
    error), floored at 1 / (2 n) for classification (module docstring)."""
    task = check_choice("task", task, TASKS)
    f = as_array("predictions", predictions, ndim=1)
    y = as_array("targets", targets, ndim=1, shape=f.shape)
    if f.size == 0:
        raise ParameterError("predictions is empty; allowed: at least one test point")
    if task == "regression":
        return float(np.mean((f - y) ** 2))
    return max(float(np.mean(y * f <= 0)), 0.5 / f.size)


def quality_gains(errors: dict[str, float]) -> dict[str, float]:
    """The gains of the module docstring from test errors keyed ``network``, ``tangent``, ``tangent_after``,
    ``conjugate``, ``conjugate_after`` (NaN where an error is missing or not positive)."""

    def ratio(reference: str, learned: str) -> float:
        a, b = errors.get(reference, np.nan), errors.get(learned, np.nan)
        return float(a / b) if np.isfinite(a) and np.isfinite(b) and b > 0 else float("nan")

    return {
        "gain_network": ratio("tangent", "network"),
        "gain_tangent": ratio("tangent", "tangent_after"),
        "gain_conjugate": ratio("conjugate", "conjugate_after"),
    }

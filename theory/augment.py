"""Hidden biases as the bias-free network on augmented inputs (docs/design.md section 2, "Hidden biases").

    f(x) = c sum_j v_j relu(<w_j, x> + b_j) = c sum_j v_j relu(<(w_j, b_j), (x, 1)>)

so the network with biases on x in R^d is the bias-free network on x~ = (x, 1) in R^(d+1) with first-layer rows
w~_j = (w_j, b_j). Its risk is the same function of the same parameters, hence its gradient flow is the same flow
(:func:`theory.symbolic.derive` with ``bias=True`` checks that -dR/db_j is -dR/dW_jq with x_iq replaced by 1),
and v_j^2 - ||w~_j||^2 is the invariant v_j^2 - ||w_j||^2 - b_j^2. The engines, kernels and limits with biases
are therefore the bias-free ones on augmented arrays; this module converts in both directions (exact: it only
copies numbers).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fls.theory.validation import as_array


def augment_inputs(X: Any) -> np.ndarray:
    """x~_i = (x_i, 1): X (..., n, d) -> (..., n, d + 1), float64, the constant 1 appended to every row."""
    X = np.asarray(X, dtype=np.float64)
    return np.concatenate([X, np.ones((*X.shape[:-1], 1))], axis=-1)


def augment_weights(W: Any, b: Any) -> np.ndarray:
    """w~_j = (w_j, b_j): W (..., m, d) and b (..., m) -> (..., m, d + 1), float64."""
    W = np.asarray(W, dtype=np.float64)
    b = as_array("b", b, ndim=W.ndim - 1, shape=W.shape[:-1])
    return np.concatenate([W, b[..., None]], axis=-1)


def split_weights(W_augmented: Any) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) from augmented rows (..., m, d + 1): the inverse of :func:`augment_weights`."""
    W_augmented = np.asarray(W_augmented)
    return W_augmented[..., :-1], W_augmented[..., -1]

"""Hidden biases in the flow engine, as the exact reduction to the bias-free flow (docs/design.md section 2).

f(x) = c sum_j v_j relu(<w_j, x> + b_j) is the bias-free network on inputs (x, 1) with rows (w_j, b_j)
(:mod:`theory.augment`): the same risk of the same parameters, hence the same Filippov gradient flow, with the
activation surfaces <w_j, x_i> + b_j = 0 the engine's (linear) surfaces in the augmented space, its crossings,
sliding modes and projections acting on (w_j, b_j), and the invariant v_j^2 - ||w_j||^2 - b_j^2. This module
augments the problem, runs an unchanged engine (:func:`~simulate.flow.api.integrate_flow` or
:func:`~simulate.flow.reference.reference_flow`) and splits its result back into W, b and v; nothing is
approximated (the copies are exact).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from fls.simulate.result import RunResult
from fls.theory.augment import augment_inputs, augment_weights, split_weights
from fls.theory.validation import as_array


def split_result(result: RunResult) -> RunResult:
    """A result of the augmented problem as one of the biased network: W, b (and W_t, b_t) split from the
    augmented rows; ``dense(t)`` returns (W, v, b)."""
    W, b = split_weights(result.W)
    W_t, b_t = (None, None) if result.W_t is None else split_weights(result.W_t)
    dense = None
    if result.dense is not None:
        augmented = result.dense

        def dense(t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            W_a, v = augmented(t)
            W_t_, b_t_ = split_weights(W_a)
            return W_t_, v, b_t_

    return replace(result, W=W, b=b, W_t=W_t, b_t=b_t, dense=dense, info={**result.info, "bias": True})


def with_bias(engine: Callable[..., RunResult], W0: Any, b0: Any, v0: Any, X: Any, y: Any, **options: Any) -> RunResult:
    """Run ``engine`` (an integrate-flow function without biases) on (x, 1) from rows (w_j(0), b_j(0)).

    W0 (m, d), b0 (m,), v0 (m,), X (n, d); ``options`` are the engine's keyword arguments. The result has
    W (m, d), b (m,), v (m,) and, where saved, W_t, b_t, v_t.
    """
    X = as_array("X", X, ndim=2)
    W0 = as_array("W0", W0, ndim=2, shape=(None, X.shape[1]))
    b0 = as_array("b0", b0, ndim=1, shape=(W0.shape[0],))
    return split_result(engine(augment_weights(W0, b0), v0, augment_inputs(X), y, **options))

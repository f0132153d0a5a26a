"""The stage combinations of the engine's explicit Runge–Kutta steps, bit for bit as a matrix product forms them.

A step of RK23 / RK45 forms y + h sum_k a_sk K_k for each stage s (:class:`~simulate.flow.smooth.ExplicitPieces`).
numpy's matrix product of a (1,) by (1, size) operand takes a path several times slower than an elementwise
product (0.11 against 0.015 ms at size 80 000, the stall data at m = 20000: docs/flow.md "Cost"), and the
second stage of every step is such a sum of one term. One term is the exact rounding of a_s0 K_0 either way;
the matrix product accumulates it onto 0, so its zeros are +0 where a product of opposite signs gives -0, and
adding +0 makes them so here too (every other value unchanged). Each stage's field value goes straight into
its row of the stages where the field can write there (:func:`stage_value`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def stage_value(fun: Callable[..., Any], y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """fun(y) in ``out`` (a stage's row): written there by the field itself where it says it can
    (``fun.writes_into``, the engine's piece fields: no state-sized array and copy per stage, 1 ms a stage on
    low_signal at m = 20000, docs/flow.md "Width"), else copied."""
    if getattr(fun, "writes_into", False):
        return fun(y, out=out)
    out[...] = fun(y)
    return out


def stage_sum(weights: np.ndarray, stages: np.ndarray, out: np.ndarray) -> np.ndarray:
    """weights @ stages (weights (k,), stages (k, size)) written to ``out`` (size,), bit for bit as
    ``np.matmul(weights, stages, out=out)``; one term (k = 1) by an elementwise product."""
    if len(weights) != 1:
        return np.matmul(weights, stages, out=out)
    np.multiply(stages[0], weights[0], out=out)
    out += 0.0  # the product's -0 to the +0 of a sum that starts at 0
    return out

"""An explicit Runge–Kutta step's passes over the state in one compiled loop each (imported through
:mod:`simulate.flow.jit` only: it imports numba): the stage combinations, and the error norm with the dense
output's coefficients (:func:`simulate.flow.rk_step.explicit_step`, whose numpy path is the reference).

numpy forms y + h sum_k a_k K_k as a matrix product (one pass over the stages), then adds y (a second); the
error norm as a matrix product, a quotient by the scale and a dot product (three passes), plain coordinates'
scale atol + rtol max(|y|, |y_new|) in four more, and the dense output's coefficients as one more matrix
product over the stages and a copy of y. At low_signal's m = 20000 (2 million numbers, 16 MB a vector, beyond
the caches) each pass is bound by memory traffic (docs/flow.md, "Width"); here the stage combinations are one
pass each, and the error norm and the coefficients one pass that reads each stage once. The coefficients
come as tuples, so each tableau compiles a loop of its own, unrolled over the stages.

Precision: each product a_k K_ki, the quotient by the scale and the scale itself (|y|, the larger of two,
times rtol plus atol) are the same roundings as numpy's; the sum over the k stages runs from 0 upwards, one
rounding per term, where numpy's matrix product (BLAS) may group them otherwise: each component within k eps
sum_k |a_k K_ki| of numpy's (a one-term sum and y added are the same roundings, so RK23's second stage is
bit for bit). The error norm's sum of squares runs in order over the components, within size eps of numpy's
dot product (relative; 2e-10 at 2 million components, far below the step-size control's resolution).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def combine(weights: tuple, stages: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    """out = y + sum_k weights_k stages_k (weights: k floats, stages (>= k, size), y and out (size,)): the
    stage sum from 0.0 upwards (a -0 product summed to +0, as numpy's matrix product), then y."""
    for i in range(len(y)):
        total = 0.0
        for k in range(len(weights)):
            total += weights[k] * stages[k, i]
        out[i] = total + y[i]


@njit(cache=True, error_model="numpy")
def error_and_coefficients(
    errors: tuple,
    interpolant: tuple,
    stages: np.ndarray,
    y: np.ndarray,
    y_new: np.ndarray,
    plain: bool,
    rtol: float,
    atol: float,
    scale: np.ndarray,
    coefficients: np.ndarray,
) -> float:
    """The sum over i of ((sum_k errors_k stages_ki) / scale_i)^2, the step's squared error estimate in units
    of the error scale, with the dense output's coefficients in the same pass: coefficients_0 = y and
    coefficients_(r+1) = sum_k interpolant_rk stages_k (``interpolant``: one tuple per row, (h P^T)'s).
    ``plain``: the scale is scipy's atol + rtol max(|y_i|, |y_new,i|), formed here and written to ``scale``
    (the retry check reads it; a NaN in either state is the scale's, as numpy's maximum); else ``scale``
    holds the converted tolerance already."""
    squares = 0.0
    for i in range(len(y)):
        total = 0.0
        for k in range(len(errors)):
            total += errors[k] * stages[k, i]
        if plain:
            start, end = abs(y[i]), abs(y_new[i])
            scale[i] = (start if (start >= end or math.isnan(start)) else end) * rtol + atol
        ratio = total / scale[i]
        squares += ratio * ratio
        coefficients[0, i] = y[i]
        for r in range(len(interpolant)):
            row = interpolant[r]
            value = 0.0
            for k in range(len(row)):
                value += row[k] * stages[k, i]
            coefficients[r + 1, i] = value
    return squares

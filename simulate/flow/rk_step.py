"""One step of an explicit Runge–Kutta pair (RK12, RK23, RK45) on a float64 state: its stages, its new state, its
RMS error norm and (compiled) the dense output's coefficients, by numpy (the reference) or by the compiled
passes of :mod:`~simulate.flow.rk_step_kernel`.

With the tableau (A, B, E, P) and step size h, from y with f = f(y):

    K_0 = f,   K_s = f(y + h sum_{k < s} A_sk K_k),   y_new = y + h sum_k B_k K_k,   K_last = f(y_new),
    err = sqrt(mean((h sum_k E_k K_k / scale)^2)),   y(t + theta h) = y + sum_r (h P^T K)_r theta^(r+1),

the sums over the stages that E and P cover: all and f(y_new) (RK23, RK45), or the stages alone where the
pair reads no f(y_new) (RK12, :mod:`~simulate.flow.heun_euler`), whose K_last is then left to the caller
(formed only where the next step starts from y_new); scale the error control's tolerance (:class:`~simulate.flow.tolerance.StepTolerance`): atol + rtol max(|y|,
|y_new|) in plain coordinates, the converted tolerance at y in others. Each length-size vector is touched as
few times as possible: numpy's stage combinations by ``stage_sum`` with the step size folded into the
coefficients, the field written into the stages' rows (``stage_value``); the compiled ones in one loop per
combination and, beyond the caches (:data:`FUSED_NORM_MIN_SIZE`), one for the error norm and the
coefficients together (with plain coordinates' scale), bit for bit numpy's products and quotients with the
sums in another order (the kernel's docstring states by how much). At low_signal's m = 20000 that takes the
step's passes over its 2 million numbers from about 25 to about 12 (docs/flow.md, "Width").
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from fls.simulate.flow.stage_sums import stage_sum, stage_value
from fls.simulate.flow.tolerance import StepTolerance

#: The fewest state components at which the compiled passes run. Below it a numpy pass costs a few
#: microseconds and the compiled step gains nothing measurable, while its sums over the stages round
#: otherwise than BLAS's: small problems, whose events and stays can sit on roundoff's edge (a neuron sliding
#: into its origin), keep numpy's bits.
FUSED_MIN_SIZE = 2**15
#: The fewest state components at which the error norm and the dense output's coefficients are formed in one
#: compiled pass. The loop is scalar where numpy's matrix products are vectorized: while the stages fit in the
#: caches it is the slower (0.31 against 0.15 ms at the stall data's 80 000 components), beyond them memory
#: traffic decides and the one pass is the faster (7.7 against 11.7 ms at low_signal's 2 million,
#: docs/flow.md "Width").
FUSED_NORM_MIN_SIZE = 2**18


def explicit_step(
    fun: Callable[[Any], Any],
    y: np.ndarray,
    f: np.ndarray,
    h: float,
    tableau: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    tolerance: StepTolerance,
    workspace: tuple[np.ndarray, np.ndarray, np.ndarray],
    kernel: ModuleType | None,
) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """(y_new, the stages K (stages + 1, size) with K[-1] = f(y_new), the error norm, whether the dense output's
    coefficients were formed) of the step of size h from y with f = f(y) (module docstring). ``tableau``:
    (A, B, E, P) of the pair, E and P cut to the rows the pair reads: K[-1] is formed only where E has a row
    for it (stages + 1 rows; with ``stages`` rows it is left as it was); ``workspace``: the stages K, the coefficients (degree + 1, size) and the (work,
    scale) buffers (2, size), whose scale holds the error scale after the step (the retry check reads it);
    ``kernel``: :mod:`~simulate.flow.rk_step_kernel`, or None for numpy (numpy also below
    :data:`FUSED_MIN_SIZE` components), which leaves the coefficients to the caller (an accepted step's only;
    so does the compiled step below :data:`FUSED_NORM_MIN_SIZE`).
    Allocates only y_new."""
    A, B, E, P = tableau
    if y.size < FUSED_MIN_SIZE:
        kernel = None
    K, coefficients, (work, scale) = workspace
    stages = len(B)
    K[0] = f
    for s in range(1, stages):
        if kernel is None:
            stage_sum(h * A[s, :s], K[:s], work)
            work += y
        else:
            kernel.combine(tuple(h * A[s, :s]), K, y, work)
        stage_value(fun, work, K[s])
    if kernel is None:
        y_new = (h * B) @ K[:stages]
        y_new += y
    else:
        y_new = np.empty_like(y)
        kernel.combine(tuple(h * B), K, y, y_new)
    read = len(E)  # the rows of K the error and the dense output read
    if read > stages:
        stage_value(fun, y_new, K[-1])
    if kernel is None or y.size < FUSED_NORM_MIN_SIZE:
        tolerance.step_scale(y, y_new, scale, work)
        ratio = np.matmul(h * E, K[:read], out=work)
        ratio /= scale
        return y_new, K, float(np.sqrt(ratio @ ratio / ratio.size)), False
    plain = not tolerance.converted
    if not plain:
        tolerance.step_scale(y, y_new, scale, work)
    interpolant = tuple(tuple(row) for row in h * P.T)
    squares = kernel.error_and_coefficients(
        tuple(h * E), interpolant, K, y, y_new, plain, tolerance.rtol, tolerance.atol, scale, coefficients
    )
    return y_new, K, float(np.sqrt(squares / y.size)), True

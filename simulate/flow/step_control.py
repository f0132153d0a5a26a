"""Step control of the piece integrators (:mod:`simulate.flow.smooth`): the starting step, the RMS norm it
scales by, and the forward-difference Jacobian of the implicit methods, each made safe where scipy's own would
overflow (docs/flow.md, "Robustness").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: The error estimator order scipy's :func:`select_initial_step` uses for each method.
ESTIMATOR_ORDER = {"DOP853": 7, "RK45": 4, "RK23": 2, "Radau": 3, "BDF": 1}


def initial_step(
    fun: Callable[[float, np.ndarray], np.ndarray],
    t0: float,
    y0: np.ndarray,
    f0: np.ndarray,
    t_bound: float,
    order: int,
    tolerance: np.ndarray,
) -> float:
    """The starting step of Hairer, Norsett & Wanner (I, II.4), as scipy's solvers choose it, made safe against
    overflow: h0 from the sizes of y0 and f0 (RMS norms scaled by ``tolerance``, the error allowed per step in
    each component of y0: atol + rtol |y0| in plain coordinates, :mod:`simulate.flow.tolerance`), then
    h1 = (0.01 / max(|f0|, |f(y0 + h0 f0) - f0| / h0))^(1 / (order + 1)), and min(100 h0, h1, t_bound - t0).

    When the second-derivative estimate |f(y0 + h0 f0) - f0| / h0 is not finite (an Euler trial step that
    overshoots a stiff field into overflow), h0 is divided by 10 until it is; a trial step that shrinks to roundoff of t0 returns 0
    (the caller's "step size too small" ends the piece). Without overflow the result is scipy's.
    """
    scale = tolerance
    d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, t_bound - t0)
    with np.errstate(over="ignore", invalid="ignore"):
        d2 = _rms((fun(t0 + h0, y0 + h0 * f0) - f0) / scale) / h0
        while not np.isfinite(d2):
            h0 /= 10
            if h0 <= 10 * np.spacing(abs(t0)) or h0 < np.finfo(np.float64).tiny:
                return 0.0
            d2 = _rms((fun(t0 + h0, y0 + h0 * f0) - f0) / scale) / h0
    h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1.0 / (order + 1))
    return min(100 * h0, h1, t_bound - t0)


def finite_difference_jacobian(fun: Callable[[np.ndarray], np.ndarray], y: np.ndarray) -> np.ndarray:
    """The Jacobian of fun at y by forward differences, column k from the increment sqrt(eps) max(|y_k|, 1)
    (precision about sqrt(eps) relative, all Newton's iteration of an implicit method needs).

    For the implicit methods in coordinates without an analytic Jacobian (log and span coordinates, merged
    opposite samples). scipy's own estimate widens the increment tenfold at each Jacobian for a column the
    field does not depend on (a neuron with no active sample: its log-amplitude rho_j has no effect), without
    bound: at 1.5e4 times |y_k| the increment of rho_j overflows exp(rho_j), the Jacobian gets NaN entries and
    the factorization fails (docs/flow.md, "Robustness"). A fixed relative increment stays where the field is.
    """
    f0 = fun(y)
    steps = np.sqrt(np.finfo(np.float64).eps) * np.maximum(np.abs(y), 1.0)
    J = np.empty((f0.size, y.size))
    for k, step in enumerate(steps):
        shifted = y.copy()
        shifted[k] += step
        J[:, k] = (fun(shifted) - f0) / (shifted[k] - y[k])
    return J


def _rms(values: np.ndarray) -> float:
    """The RMS norm of ``values`` (scipy's ``norm`` for solver steps), finite for every finite ``values``: where
    the sum of squares overflows (a field of 6e144 over a tolerance of 4e-12 is 1.5e156, its square 2e312) the
    values are scaled by their largest magnitude first. scipy's form then gave inf, the starting step
    0.01 d0 / inf = 0, and a division by it ended the run ``failed`` (docs/flow.md, "Robustness")."""
    with np.errstate(over="ignore"):
        rms = float(np.linalg.norm(values) / values.size**0.5)
    if np.isfinite(rms):
        return rms
    largest = float(np.abs(values).max())
    if not np.isfinite(largest):
        return largest
    return largest * float(np.linalg.norm(values / largest) / values.size**0.5)

"""DOP853 with an error norm that stays finite where its parts overflow (docs/flow.md, "Robustness",
"Overflowing error norms").

scipy's DOP853 combines its fifth- and third-order error estimates, e5 = K^T E5 / scale and e3 = K^T E3 / scale
(the stages K over the error scale atol + rtol |y|, without the step size h), as

    err = |h| ||e5||^2 / sqrt((||e5||^2 + 0.01 ||e3||^2) N)                    (Hairer, Norsett & Wanner I, II.10)

with N the number of components. The step size multiplies only at the end, so where the field is far larger
than the scale (an exponential loss far out: a field of 3e140 over a scale of 1e-13 at t = 0) the parts
overflow while err itself is a finite number. Where ||e5||^2 and ||e3||^2 are still finite but (...) N is not, scipy's
form gives |h| ||e5||^2 / inf = 0: the step is accepted as exact, whatever its error, and the next one grows
tenfold. A stored slow-tier problem (DOP853, plain coordinates, exponential loss, rtol 1e-13, atol 1.35e-15)
took such a step at t = 0 whose error norm is 7.4e9 (h = 6.2e-143); it broke the conserved
v_j^2 - ||w_j||^2 by 3.9e-5 and carried that to the end (tests/simulate/test_flow_error_norm.py).

:class:`FiniteNormDOP853` is scipy's DOP853 with that norm evaluated without overflow: e5 and e3 divided by
their largest magnitude c, then err = c |h| ||e5 / c||^2 / sqrt((||e5 / c||^2 + 0.01 ||e3 / c||^2) N), the same
value (the form is homogeneous of degree 1 in (e5, e3)) to a few roundoffs. Where scipy's form does not
overflow it is used as it is, so every other step is bitwise scipy's.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import DOP853

#: The weight of the third-order estimate in DOP853's error norm (scipy's and Hairer's constant).
THIRD_ORDER_WEIGHT = 0.01


def dop853_error_norm(err5: np.ndarray, err3: np.ndarray, h: float) -> float:
    """DOP853's error norm |h| ||e5||^2 / sqrt((||e5||^2 + 0.01 ||e3||^2) N) of the scaled estimates e5, e3
    (size N each), finite for finite e5, e3 (module docstring); NaN where they are not (a stage that
    overflowed: the step is rejected). Bitwise scipy's value wherever scipy's form does not overflow."""
    with np.errstate(over="ignore"):
        err5_norm_2, err3_norm_2 = np.linalg.norm(err5) ** 2, np.linalg.norm(err3) ** 2
        if err5_norm_2 == 0 and err3_norm_2 == 0:
            return 0.0
        denominator = (err5_norm_2 + THIRD_ORDER_WEIGHT * err3_norm_2) * len(err5)
    if np.isfinite(denominator):
        return float(np.abs(h) * err5_norm_2 / np.sqrt(denominator))
    largest = max(float(np.abs(err5).max()), float(np.abs(err3).max()))
    if not np.isfinite(largest):
        return float("nan")
    e5, e3 = err5 / largest, err3 / largest
    e5_norm_2, e3_norm_2 = float(e5 @ e5), float(e3 @ e3)
    scaled = abs(h) * e5_norm_2 / np.sqrt((e5_norm_2 + THIRD_ORDER_WEIGHT * e3_norm_2) * e5.size)
    return largest * float(scaled)


class FiniteNormDOP853(DOP853):
    """scipy's DOP853 whose error norm does not overflow to 0 (:func:`dop853_error_norm`, module docstring)."""

    def _estimate_error_norm(self, K: np.ndarray, h: float, scale: np.ndarray) -> float:
        return dop853_error_norm(np.dot(K.T, self.E5) / scale, np.dot(K.T, self.E3) / scale, h)

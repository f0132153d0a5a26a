"""The Heun–Euler pair ``"RK12"``: order 2 with an embedded order 1, two stages, for runs whose steps are ended by
events rather than held by accuracy (docs/flow.md, "Choosing a method", "Width: a two-stage pair for
event-dense runs").

From y with f = f(y) and step size h:

    K_0 = f(y),   K_1 = f(y + h K_0),   y_new = y + h (K_0 + K_1) / 2   (Heun, order 2),
    error = h (K_1 - K_0) / 2   (y_new less Euler's y + h K_0, order 1),
    y(t + theta h) = y + h (theta - theta^2 / 2) K_0 + h theta^2 / 2 K_1   (order 2, degree 2),

the dense output interpolating y, y_new and the slope K_0 at the start. Neither the error nor the dense output
reads f(y_new): the explicit pieces (:class:`~simulate.flow.smooth.ExplicitPieces`) form it only where the next
step starts from y_new, never on a step an event ends, so such a step costs 2 field evaluations (RK23's Bogacki–
Shampine pair needs f(y_new) for its error: 3). The growth factor on y' = lambda y is R(z) = 1 + z + z^2 / 2,
z = h lambda, stable on [-2, 0] of the real axis, and so is the dense output's 1 - x + x^2 / 2 (x = theta z in
[0, z]). The attributes are those of scipy's explicit Runge–Kutta classes (scipy has no RK12).
"""

from __future__ import annotations

import numpy as np


class HeunEuler:
    """The tableau of the Heun–Euler pair with scipy's attribute names: ``A`` (stages, stages), ``B`` and ``C``
    (stages,), ``E`` (stages + 1,) with error = h E^T K, ``P`` (stages + 1, degree) with the dense output
    y + h sum_r (P^T K)_r theta^(r+1); the last rows of E and P are those of f(y_new), zero here."""

    order = 2
    error_estimator_order = 1
    n_stages = 2
    C = np.array([0.0, 1.0])
    A = np.array([[0.0, 0.0], [1.0, 0.0]])
    B = np.array([0.5, 0.5])
    E = np.array([-0.5, 0.5, 0.0])
    P = np.array([[1.0, -0.5], [0.0, 0.5], [0.0, 0.0]])

"""The field of a mode (:meth:`~simulate.flow.coords.Coordinates.rhs_and_factors`) from its pre-activations in
one compiled call: outputs, sample factors, weighted gates and the output
weights' velocity (imported through :mod:`simulate.flow.jit` only: it imports numba).

With the pre-activations D (m, n) (a BLAS product of the state's row block, as numpy forms it), the
amplitudes a (m,), the mode's active pairs A and sliding map M (:class:`~simulate.flow.modes.SlidingWeights`):

    F_i = c sum_j a_j A_ji D_ji,     s_i = w_i sigma(F_i, y_i),     Q_ji = q_ji (c/n) a_j,
    a_j' = (c/n) sum_i A_ji D_ji s_i,     q_ji = A_ji s_i (z_p = sum_i M_pi s_i on a sliding pair p),

sigma the sample factor -l'(y f) y of :data:`LOSS_CODES`' losses (the derivation of :mod:`theory.symbolic`,
written out: tests compare it with the derived kernels). Q is the first block's velocity in data-span
coordinates and (c/n) v_j q_j, which X maps to it, in plain ones.

Precision: A D, Q on active and inactive pairs and the product with w are the same roundings as numpy's;
the sums over neurons and samples (F, a', z) run in another order, each within (terms) eps sum |terms| of
numpy's, and exp is the C library's, within an ulp of numpy's. So s moves by at most a few ulps relative to
|sigma'| sum_j |a_j A_ji D_ji| and the field by a few ulps of its terms' sizes (tests check random inputs).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: The losses of :mod:`theory.losses` by the code the kernel takes.
LOSS_CODES = {"logistic": 0, "exponential": 1, "squared": 2}


@njit(cache=True)
def expit(z: float) -> float:
    """1 / (1 + exp(-z)) as :func:`theory.compiled.expit` forms it: exp(min(z, 0)) / (1 + exp(-|z|))."""
    return math.exp(min(z, 0.0)) / (1.0 + math.exp(-abs(z)))


@njit(cache=True)
def sample_factor(loss: int, f: float, y: float) -> float:
    """-l'(y f) y of the loss ``loss`` (:data:`LOSS_CODES`) at the output f and the label y."""
    if loss == 0:
        return y * expit(-f * y)
    if loss == 1:
        return y * math.exp(-f * y)
    return -f + y


@njit(cache=True)
def mode_field(
    rows: np.ndarray,
    row_map: np.ndarray,
    offset: np.ndarray,
    amp: np.ndarray,
    active: np.ndarray,
    c: float,
    y: np.ndarray,
    weights: np.ndarray,
    loss: int,
    pair_flat: np.ndarray,
    sliding_map: np.ndarray,
    rate: float,
    D: np.ndarray,
    Q: np.ndarray,
    velocity: np.ndarray,
    s: np.ndarray,
) -> None:
    """The field's per-pair parts, written in place: D (m, n) the active pre-activations A D with D = rows @
    row_map (+ ``offset`` (m, n) unless it is empty; the matrix product is BLAS's, as numpy's), Q (m, n) the
    gates times (c/n) a_j, ``velocity`` (m,) a', s (n,) the sample factors (module docstring). ``weights``:
    the sample weights w (n,) (ones without); ``pair_flat``: the sliding pairs as flat indices into (m, n), in the
    order of the rows of ``sliding_map`` (k, n)."""
    np.dot(rows, row_map, D)
    m, n = D.shape
    shifted = offset.size > 0
    outputs = np.zeros(n)
    for j in range(m):
        a = amp[j]
        for i in range(n):
            pre = D[j, i] + offset[j, i] if shifted else D[j, i]
            D[j, i] = active[j, i] * pre
            outputs[i] += a * D[j, i]
    scaled = np.empty(n)
    for i in range(n):
        s[i] = sample_factor(loss, c * outputs[i], y[i]) * weights[i]
        scaled[i] = rate * s[i]
    for j in range(m):
        amp_rate = rate * amp[j]
        total = 0.0
        for i in range(n):
            Q[j, i] = active[j, i] * s[i] * amp_rate
            total += D[j, i] * scaled[i]
        velocity[j] = total
    for p in range(len(pair_flat)):
        z = 0.0
        for i in range(n):
            z += sliding_map[p, i] * s[i]
        j = pair_flat[p] // n
        Q[j, pair_flat[p] - j * n] = z * (rate * amp[j])

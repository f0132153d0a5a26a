"""Rates of a pre-activation at its surface that are zero to roundoff: read as zero, not by their sign.

At an event the side a touching pair takes next is decided by the rate of <w_j, x_i> on each side of its
surface (:func:`~simulate.flow.modes.select_neuron_mode`, and the side the pair was moving to in
:meth:`~simulate.flow.hybrid.HybridFlow.apply_event`). That rate is r_i = sign(v_j) <h_j, x_i> with
h_j = X^T q_j, a sum of terms q_jk <x_k, x_i> with |q_jk| <= |s_k| + |N_k| (a gate or a Filippov weight in
[0, 1] times the sample factor, plus the offset of merged opposite samples, :mod:`simulate.flow.samples`).
Two errors bound it, and one resolution covers both:

    delta_i = ||x_i|| * sum_k (ROUNDOFF_TERMS * eps * (|s_k| + |N_k|) + e_k) * ||x_k||          (1)

- the arithmetic's: each sum rounds at most eps of the sum of its terms' magnitudes (|<x_k, x_i>| <=
  ||x_k|| ||x_i||), ROUNDOFF_TERMS of them;
- the factors' own: s_k and N_k come from outputs with a rounding of their own, so they are known only to
  e_k (:func:`~simulate.flow.roundoff.float_factors`, 0 for exact factors), and each moves the rate by up to
  e_k ||x_k|| ||x_i||.

A rate of size below delta_i has no sign (docs/flow.md, "Robustness", "A tangent rate of zero"), a jump below
it cannot slide (:func:`~simulate.flow.modes.select_neuron_mode`: the data do not fix its weight within
[0, 1]), and a Filippov weight, a rate over its jump, is known to delta_i / jump_i. Tested against 50-digit
evaluations of the rates from the exact outputs (tests/simulate/test_flow_tangent_rates.py): the bound holds,
and where the factors' errors add up (collinear samples) it is within a factor 4 of the error met.

Where it matters: a neuron whose field is zero (every sample inactive, or sliding with weight 0: h_j = 0)
sitting on the surface of a sample whose jump has turned repelling (sign(v_j) s_i > 0). Its rate on the
inactive side is 0, on the active side it points away: staying and leaving at any later time are both
Filippov solutions, and staying is the minimal-norm one (velocity 0). Every event touches such a pair (its
guard is 0), and deciding by the sign of a rate that is roundoff of 0 sent it across at whichever event its
roundoff came out positive: runs at different tolerances left at different, unrelated events (a stored
problem: at t = 4.3830, 4.4721 or 4.6573, 12.5 times the stress suite's bound apart). Read as zero, the
rate lets the pair keep its side at every event, as the minimal-norm selection does.
"""

from __future__ import annotations

import numpy as np

#: Terms' worth of roundoff in (1): the rate is a dot product of a sum (h_j = X^T q_j, then <h_j, x_i>),
#: each rounding at most eps of the sum of its terms' magnitudes, with room for the Filippov weights' own
#: roundoff (bvls, pseudo-inverse) and the gates' products.
ROUNDOFF_TERMS = 64.0
_EPS = float(np.finfo(np.float64).eps)


def rate_scale(
    s: np.ndarray, offset: np.ndarray | None, norms: np.ndarray, errors: np.ndarray | None = None
) -> float:
    """delta_i / ||x_i|| of equation (1), the same for every pair of one event (an event computes it once, O(n),
    for all its neurons), from the sample factors s (n,), the offsets of merged opposite samples (n,) or None,
    every sample's norm ``norms`` (n,) and the factors' precision ``errors`` (n,) (None: exact factors)."""
    factors = np.abs(s) if offset is None else np.abs(s) + np.abs(offset)
    per_sample = ROUNDOFF_TERMS * _EPS * factors if errors is None else ROUNDOFF_TERMS * _EPS * factors + errors
    return float(per_sample @ norms)


def rate_resolution(norms_at: np.ndarray | float, scale: float) -> np.ndarray | float:
    """delta_i of equation (1) for the pairs with sample norms ``norms_at``, from the event's
    :func:`rate_scale`."""
    return np.asarray(norms_at) * scale


def pair_rates(
    sign_v: float, h: np.ndarray, at: np.ndarray, X: np.ndarray, norms: np.ndarray, scale: float
) -> np.ndarray:
    """sign(v_j) <h, x_i> for the samples ``at`` (indices into X (n, d), whose norms are ``norms``), each set to 0
    where it is within its resolution (1) (``scale``: the event's :func:`rate_scale`)."""
    return resolved(sign_v * (X[at] @ h), rate_resolution(norms[at], scale))


def resolved(rates: np.ndarray | float, resolution: np.ndarray | float) -> np.ndarray:
    """``rates`` with every entry within ``resolution`` of 0 set to 0 (a rate without a sign)."""
    rates = np.asarray(rates, dtype=np.float64)
    return np.where(np.abs(rates) <= resolution, 0.0, rates)

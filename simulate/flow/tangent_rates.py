"""Rates of a pre-activation at its surface that are zero to roundoff: read as zero, not by their sign.

At an event the side a touching pair takes next is decided by the rate of <w_j, x_i> on each side of its
surface (:func:`~simulate.flow.modes.select_neuron_mode`, and the side the pair was moving to in
:meth:`~simulate.flow.hybrid.HybridFlow.apply_event`). That rate is r_i = sign(v_j) <h_j, x_i> with
h_j = X^T q_j, a sum of terms q_jk <x_k, x_i> with |q_jk| <= |s_k| + |N_k| (a gate or a Filippov weight in
[0, 1] times the sample factor, plus the offset of merged opposite samples, :mod:`simulate.flow.samples`),
so it is computed to about

    delta_i = ROUNDOFF_TERMS * eps * ||x_i|| * sum_k (|s_k| + |N_k|) ||x_k||                        (1)

and a rate of size below delta_i has no sign (docs/flow.md, "Robustness", "A tangent rate of zero").

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
#: roundoff (bvls, pseudo-inverse).
ROUNDOFF_TERMS = 64.0
_EPS = float(np.finfo(np.float64).eps)


def terms_size(s: np.ndarray, offset: np.ndarray | None, norms: np.ndarray) -> float:
    """sum_k (|s_k| + |N_k|) ||x_k|| of equation (1), from the sample factors s (n,), the offsets of merged
    opposite samples (n,) or None, and every sample's norm ``norms`` (n,): the same for every pair of one
    event, so an event computes it once (O(n)) for all its neurons' rates and weights."""
    factors = np.abs(s) if offset is None else np.abs(s) + np.abs(offset)
    return float(factors @ norms)


def rate_resolution(norms_at: np.ndarray | float, terms: float) -> np.ndarray | float:
    """delta_i of equation (1) for the pairs with sample norms ``norms_at``, from the terms' size ``terms``
    (:func:`terms_size`)."""
    return ROUNDOFF_TERMS * _EPS * np.asarray(norms_at) * terms


def pair_rates(
    sign_v: float, h: np.ndarray, at: np.ndarray, X: np.ndarray, norms: np.ndarray, terms: float
) -> np.ndarray:
    """sign(v_j) <h, x_i> for the samples ``at`` (indices into X (n, d), whose norms are ``norms``), each set to 0
    where it is within its resolution (1) (``terms``: the event's :func:`terms_size`)."""
    return resolved(sign_v * (X[at] @ h), rate_resolution(norms[at], terms))


def resolved(rates: np.ndarray | float, resolution: np.ndarray | float) -> np.ndarray:
    """``rates`` with every entry within ``resolution`` of 0 set to 0 (a rate without a sign)."""
    rates = np.asarray(rates, dtype=np.float64)
    return np.where(np.abs(rates) <= resolution, 0.0, rates)

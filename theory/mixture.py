"""The over-alignment / over-fitting split of the excess error on the Gaussian mixture (docs/design.md section 2).

Data: x | y ~ N(kappa y s, sigma^2 I_d) with ||s|| = 1. A linear classifier sign(<v, x>) errs when
y <v, x> = kappa <v, s> + sigma y <v, z> < 0, and y <v, z> ~ N(0, ||v||^2), so

    E(v) = Phi(-(kappa / sigma) cos angle(v, s)),          E* = E(s) = Phi(-kappa / sigma).

Only the angle enters, so the positive rescaling x -> x / sqrt(kappa^2 + sigma^2 d) of the data model changes
no error here. With x+ the sum of the positive training points, phi = angle(x+, s), the alignment
Psi = cos angle(w_hat, x+) of the positive part w_hat = sum_{v_j > 0} v_j w_j, and the cone
H = {v : cos angle(v, x+) >= Psi} (which contains w_hat), the closest direction of H to s makes the angle
(phi - arccos Psi)_+ with s, hence

    min_H E = Phi(-(kappa / sigma) cos((phi - arccos Psi)_+)),
    OA = min_H E - E*   (over-alignment: what the cone alone costs; 0 exactly when Psi <= cos phi, s in H),
    OF = E(w_hat) - min_H E   (over-fitting: what the predictor loses inside its cone),

and OA + OF = E(w_hat) - E*. Differences of small tail probabilities are formed from ``log_ndtr`` so they keep
their relative precision in both tails (down to the smallest double, Phi(-37) ~ 6e-300).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import log_ndtr, ndtr

from fls.theory.validation import ParameterError, as_array, check_in_range, check_positive

if TYPE_CHECKING:
    import sympy as sp

# ------------------------------------------------------------------------------------------------------------
# Geometry and Gaussian tails
# ------------------------------------------------------------------------------------------------------------


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """angle(a, b) along the last axis as 2 atan2(||a^ - b^||, ||a^ + b^||): accurate near 0 and pi too."""
    a_hat = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b_hat = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return 2.0 * np.arctan2(np.linalg.norm(a_hat - b_hat, axis=-1), np.linalg.norm(a_hat + b_hat, axis=-1))


def _nonzero(name: str, value: Any, d: int | None = None) -> np.ndarray:
    arr = as_array(name, value, ndim=1, shape=None if d is None else (d,))
    if not np.any(arr):
        raise ParameterError(f"{name} is the zero vector; a direction is needed")
    return arr


def _signal(s: Any, d: int) -> np.ndarray:
    s = as_array("s", s, ndim=1, shape=(d,))
    if abs(float(np.linalg.norm(s)) - 1.0) > 1e-8:
        raise ParameterError(
            "s must have unit norm (the model is x | y ~ N(kappa y s, sigma^2 I)); "
            f"||s|| = {np.linalg.norm(s)!r}"
        )
    return s


def _snr(kappa: Any, sigma: Any) -> float:
    """kappa / sigma, with kappa >= 0 and sigma > 0 checked."""
    return check_positive("kappa", kappa, allow_zero=True) / check_positive("sigma", sigma)


def _tail_gap(a: Any, b: Any) -> np.ndarray:
    """Phi(-a) - Phi(-b) for a <= b, with relative precision in both tails.

    Right tail (a >= 0): Phi(-a) (1 - exp(log Phi(-b) - log Phi(-a))); left (b <= 0): the mirror image
    Phi(b) - Phi(a); across 0 the two terms lie on either side of 1/2 and plain subtraction loses nothing.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    right = np.exp(log_ndtr(-a)) * -np.expm1(log_ndtr(-b) - log_ndtr(-a))
    left = np.exp(log_ndtr(b)) * -np.expm1(log_ndtr(a) - log_ndtr(b))
    return np.where(a >= 0, right, np.where(b <= 0, left, ndtr(-a) - ndtr(-b)))


# ------------------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------------------


def direction_error(v: Any, s: Any, kappa: float, sigma: float) -> float | np.ndarray:
    """E(v) = Phi(-(kappa / sigma) cos angle(v, s)): test error of sign(<v, x>) on the mixture.

    ``v`` is one direction (d,) (returns a float) or a stack (k, d) (returns shape (k,)).
    """
    V = np.asarray(v)
    batched = V.ndim == 2
    V = as_array("v", v, ndim=2 if batched else 1)
    if np.any(~V.any(axis=-1)):
        raise ParameterError("v contains a zero vector; every direction must be non-zero")
    s = _signal(s, V.shape[-1])
    errors = ndtr(-_snr(kappa, sigma) * np.cos(_angle(V, s)))
    return errors if batched else float(errors)


def bayes_error(kappa: float, sigma: float) -> float:
    """E* = Phi(-kappa / sigma), the error of the Bayes direction s."""
    return float(ndtr(-_snr(kappa, sigma)))


def _cone_gap(psi: float, phi: float) -> float:
    """(phi - arccos Psi)_+: the smallest angle between s and a direction of the cone."""
    return max(phi - float(np.arccos(psi)), 0.0)


def cone_minimum_error(psi: float, phi: float, kappa: float, sigma: float) -> float:
    """min over H = {v : cos angle(v, x+) >= Psi} of E(v) = Phi(-(kappa / sigma) cos((phi - arccos Psi)_+)).

    ``phi`` = angle(x+, s) in [0, pi]; ``psi`` in [-1, 1]. The minimizer is s itself when Psi <= cos phi, else
    the cone's edge direction in the plane of x+ and s (:func:`cone_minimizer`).
    """
    psi = check_in_range("psi", psi, -1.0, 1.0)
    phi = check_in_range("phi", phi, 0.0, np.pi)
    return float(ndtr(-_snr(kappa, sigma) * np.cos(_cone_gap(psi, phi))))


def cone_minimizer(x_plus: Any, s: Any, psi: float) -> np.ndarray:
    """A unit direction of H = {v : cos angle(v, x+) >= Psi} closest in angle to s (so it minimizes E over H).

    s itself if it lies in H; otherwise x+ / ||x+|| rotated towards s by arccos Psi in their common plane.
    When s is antiparallel to x+ every edge direction is equally close; one towards a fixed axis is returned.
    """
    x_plus = _nonzero("x_plus", x_plus)
    s = _signal(s, x_plus.shape[0])
    psi = check_in_range("psi", psi, -1.0, 1.0)
    e = x_plus / np.linalg.norm(x_plus)
    if s @ e >= psi:
        return s.copy()
    toward = s - (s @ e) * e
    if np.linalg.norm(toward) < 1e-12:  # s = -e: any orthogonal direction
        toward = np.eye(len(e))[np.argmin(np.abs(e))] - e[np.argmin(np.abs(e))] * e
    toward /= np.linalg.norm(toward)
    return psi * e + np.sqrt(max(1.0 - psi**2, 0.0)) * toward


@dataclass(frozen=True)
class OverAlignmentSplit:
    """The split of a predictor's excess error into over-alignment and over-fitting.

    Attributes:
        oa: min over the cone of E, minus E* (>= 0; 0 when Psi <= cos phi).
        of: E(w_hat) minus min over the cone of E (>= 0).
        excess: E(w_hat) - E*, computed on its own; equals oa + of up to rounding.
        psi: cos angle(w_hat, x+).
        phi: angle(x+, s), radians.
        error: E(w_hat).
        cone_error: min over the cone of E.
        bayes: E*.
    """

    oa: float
    of: float
    excess: float
    psi: float
    phi: float
    error: float
    cone_error: float
    bayes: float


def oa_of_split(w_hat: Any, x_plus: Any, s: Any, kappa: float, sigma: float) -> OverAlignmentSplit:
    """Excess error of w_hat = sum_{v_j > 0} v_j w_j split as OA + OF (module docstring).

    Args:
        w_hat: the positive part of the predictor, (d,), non-zero.
        x_plus: the sum of the positive training points, (d,), non-zero.
        s: the unit signal direction; kappa >= 0, sigma > 0 the mixture's parameters.
    """
    w_hat = _nonzero("w_hat", w_hat)
    d = w_hat.shape[0]
    x_plus = _nonzero("x_plus", x_plus, d)
    s = _signal(s, d)
    snr = _snr(kappa, sigma)
    alignment_angle = float(_angle(w_hat, x_plus))
    phi = float(_angle(x_plus, s))
    gap = max(phi - alignment_angle, 0.0)
    # angle(w_hat, s) >= phi - angle(w_hat, x+) (triangle inequality on the sphere); max() keeps it exact
    # when rounding breaks it at the last bit (w_hat parallel to x+), so OF >= 0 holds exactly
    predictor_angle = max(float(_angle(w_hat, s)), gap)
    a_w, a_cone = snr * np.cos(predictor_angle), snr * np.cos(gap)
    return OverAlignmentSplit(  # "+ 0.0" turns the -0.0 of an exact zero gap into 0.0
        oa=float(_tail_gap(a_cone, snr)) + 0.0,
        of=float(_tail_gap(a_w, a_cone)) + 0.0,
        excess=float(_tail_gap(a_w, snr)) + 0.0,
        psi=float(np.cos(alignment_angle)),
        phi=phi,
        error=float(ndtr(-a_w)),
        cone_error=float(ndtr(-a_cone)),
        bayes=float(ndtr(-snr)),
    )


# ------------------------------------------------------------------------------------------------------------
# Symbolic forms for the documentation
# ------------------------------------------------------------------------------------------------------------


def _normal_cdf(z: sp.Expr) -> sp.Expr:
    """Phi(z) = erfc(-z / sqrt 2) / 2, explicit so the expressions evaluate at any precision."""
    import sympy as sp

    return sp.erfc(-z / sp.sqrt(2)) / 2


def equations() -> list[tuple[str, sp.Expr | sp.Eq, str]]:
    """The main equations of this module as sympy objects: (name, equation, one-sentence meaning).

    The cone minimum and OA are written for the over-aligned case phi > arccos Psi (otherwise OA = 0).
    """
    import sympy as sp  # for the documentation only: numerical callers do not pay for it

    kappa, sigma = sp.symbols("kappa sigma", positive=True)
    angle_vs, phi = sp.symbols("theta_vs phi", nonnegative=True)
    psi = sp.Symbol("Psi", real=True)
    error = _normal_cdf(-(kappa / sigma) * sp.cos(angle_vs))
    bayes = _normal_cdf(-kappa / sigma)
    cone = _normal_cdf(-(kappa / sigma) * sp.cos(phi - sp.acos(psi)))
    E, E_star, E_cone = sp.Symbol("E(v)"), sp.Symbol("E^*"), sp.Symbol(r"\min_{H} E")
    return [
        (
            "direction error",
            sp.Eq(E, error),
            "Test error of the linear classifier sign(<v, x>) on the mixture.",
        ),
        ("Bayes error", sp.Eq(E_star, bayes), "The error of the Bayes direction s."),
        (
            "cone minimum",
            sp.Eq(E_cone, cone),
            "Least error over directions at least as aligned with x+ as the predictor (phi > arccos Psi).",
        ),
        (
            "over-alignment",
            sp.Eq(sp.Symbol("OA"), E_cone - E_star),
            "What being pinned to the cone around x+ costs.",
        ),
        ("over-fitting", sp.Eq(sp.Symbol("OF"), E - E_cone), "What the predictor loses inside its cone."),
    ]

"""The number system a flow is integrated in: float64 numpy arrays, or numpy object arrays of mpmath numbers.

The float engine and the arbitrary-precision reference run the same field assembly, guards, mode logic and
event handling; what differs between them lives here: the loss kernels (the sample factor w_i s_i with
s_i = -dl/df (f_i, y_i), its slope, and the loss w_i l(f_i, y_i), all from the one symbolic derivation in
:mod:`theory.symbolic`; w_i the normalized sample weights, 1 when a run has none), exp / log /
sqrt, small least-squares solves, and the unit roundoff ``eps`` that sets every event tolerance of
:mod:`simulate.flow.hybrid`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from fls.theory.compiled import compile_field

#: Relative singular-value cut of :attr:`Arithmetic.lstsq` in float64: surfaces at an angle below ~1e-7 (a Gram
#: eigenvalue below ~1e-14 of the largest) are one surface to float64 (their normals agree to 1e-7, beyond
#: what the event tolerance eps^(3/4) resolves), so they are projected onto and slid along as one.
RANK_TOL = 1e-14


@dataclass(frozen=True)
class Arithmetic:
    """Elementwise kernels and tolerances of one number system.

    Attributes:
        name: ``"float64"`` or ``"mpmath-<digits>"``.
        eps: unit roundoff of the system (float).
        sample: (f, y) -> w s, the weighted sample factor of the field, elementwise over any leading axes.
        sample_slope: (f, y) -> d(w s)/df, elementwise (the analytic Jacobian of the implicit methods).
        losses: (f, y) -> w l(f, y), elementwise (their mean is the risk).
        weights: the normalized sample weights w (n,) float64, or None (all 1).
        exp, log, sqrt: elementwise functions.
        row_norms: A (..., k) -> the Euclidean norms of its rows, shape (...).
        lstsq: (A, B) -> the minimal-norm least-squares solution Z of A Z = B for a small A (k, l): A^+ B,
            singular values below :data:`RANK_TOL` times the largest cut. Gram matrices of touched samples are
            singular when samples repeat or are collinear (the same surface twice), so never a plain solve.
        convert: a float array -> an array of this system (exact: every float64 is representable).
        to_float: an array of this system -> float64.
        loss: the name of the loss whose kernels these are (float64; the compiled field's choice of kernel).
    """

    name: str
    eps: float
    sample: Callable[[Any, Any], Any]
    sample_slope: Callable[[Any, Any], Any]
    losses: Callable[[Any, Any], Any]
    exp: Callable[[Any], Any]
    log: Callable[[Any], Any]
    sqrt: Callable[[Any], Any]
    row_norms: Callable[[Any], Any]
    lstsq: Callable[[Any, Any], Any]
    convert: Callable[[Any], Any]
    to_float: Callable[[Any], np.ndarray]
    weights: np.ndarray | None = None
    loss: str = ""

    @property
    def guard_tol(self) -> float:
        """A guard (cosine or sliding weight) counts as crossed only below -guard_tol (64 roundoffs)."""
        return 64.0 * self.eps

    @property
    def touch_tol(self) -> float:
        """Pairs with |cos angle(w_j, x_i)| <= touch_tol at an event are on their surface (eps^(3/4))."""
        return self.eps**0.75


def float_arithmetic(loss: str, weights: np.ndarray | None = None) -> Arithmetic:
    """float64 numpy arithmetic with the compiled kernels of ``loss`` and the normalized sample ``weights``."""
    field = compile_field(loss)

    def to_float(a: Any) -> np.ndarray:
        return np.asarray(a, dtype=np.float64)

    return Arithmetic(
        name="float64",
        eps=float(np.finfo(np.float64).eps),
        sample=field.numpy_sample_factor(weights),
        sample_slope=partial(field.sample_slope, weights=weights),
        losses=partial(field.losses, weights=weights),
        exp=np.exp,
        log=np.log,
        sqrt=np.sqrt,
        row_norms=lambda A: np.sqrt(np.einsum("...i,...i->...", A, A)),  # no (..., k) temporary
        lstsq=lambda A, B: np.linalg.lstsq(A, B, rcond=RANK_TOL)[0],
        convert=to_float,
        to_float=to_float,
        weights=weights,
        loss=loss,
    )

"""The losses the derivation supports, the targets each accepts, and the sample weights of the risk, without
importing sympy (docs/design.md section 2, "Targets, losses, weights").

The risk of a data set (x_i, y_i) with sample weights omega_i >= 0 is

    R = (1/n) sum_i w_i l(f(x_i), y_i),     w_i = n omega_i / sum_k omega_k     (mean 1),

so only the relative weights matter: scaling every weight by one constant changes nothing, all weights 1 is the
plain mean, and giving a sample weight k is the same risk (hence the same flow) as repeating it k times.

Losses l(f, y): ``logistic`` softplus(-y f) and ``exponential`` exp(-y f) on the margin y f, for labels in
{-1, +1}; ``squared`` (f - y)^2 / 2 for any real target y (on labels +-1 it equals (1 - y f)^2 / 2).

The derivation itself (:mod:`theory.symbolic`) needs sympy; code that only checks a loss name, targets or weights
(configs, engines, data loaders) imports them from here, so that it starts without paying for sympy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fls.theory.validation import ParameterError, as_array, as_labels, check_choice

#: The losses l(f, y) of the derivation.
LOSSES = ("logistic", "exponential", "squared")
#: The targets each loss accepts: ``binary`` labels in {-1, +1} (the margin losses) or any finite ``real`` value.
TARGET_KINDS = {"logistic": "binary", "exponential": "binary", "squared": "real"}


def is_binary(y: Any) -> bool:
    """Whether every entry of ``y`` is -1 or +1 (a label vector rather than real targets)."""
    return bool(np.all(np.isin(np.asarray(y, dtype=np.float64), (-1.0, 1.0))))


def as_targets(name: str, value: Any, *, loss: str, n: int | None = None) -> np.ndarray:
    """``value`` as float64 targets of length ``n`` that ``loss`` accepts (:data:`TARGET_KINDS`).

    A margin loss needs labels in {-1, +1}; the error says so and names the loss that takes real targets.
    """
    check_choice("loss", loss, LOSSES)
    if TARGET_KINDS[loss] == "real":
        return as_array(name, value, ndim=1, shape=(n,))
    try:
        return as_labels(name, value, n=n)
    except ParameterError as exc:
        if "only -1 and +1" not in str(exc):
            raise
        raise ParameterError(
            f"{exc} (loss = {loss!r} is a margin loss and needs labels); real-valued targets need loss = 'squared'"
        ) from exc


def as_sample_weight(value: Any, n: int) -> np.ndarray | None:
    """The normalized weights w_i = n omega_i / sum_k omega_k (mean 1) of ``value`` (n,), or None for None.

    Each omega_i must be finite and >= 0, and at least one > 0 (the risk needs some weight).
    """
    if value is None:
        return None
    omega = as_array("sample_weight", value, ndim=1, shape=(n,))
    if np.any(omega < 0):
        raise ParameterError(
            f"sample_weight has negative entries {np.unique(omega[omega < 0])[:5].tolist()}; "
            "allowed: finite values >= 0 with a positive sum"
        )
    total = float(omega.sum())
    if total <= 0.0:
        raise ParameterError("sample_weight sums to 0; allowed: finite values >= 0 with a positive sum")
    return omega * (n / total)

#: Each loss at the margin u = 0, i.e. the risk of the zero function: log 2 (logistic), exp(0) = 1
#: (exponential), (1 - 0)^2 / 2 (squared). A target risk at or above it is met by f = 0, so at t = 0 by an
#: antisymmetric initialization (docs/design.md section 2, stopping rule).
RISK_AT_ZERO = {"logistic": 0.6931471805599453, "exponential": 1.0, "squared": 0.5}

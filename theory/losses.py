"""The names of the losses the derivation supports (docs/design.md section 2), without importing sympy.

The derivation itself (:mod:`theory.symbolic`) needs sympy; code that only checks or lists a loss name (configs,
engines, the command line) imports the names from here, so that it starts without paying for sympy.
"""

from __future__ import annotations

#: Losses on the margin u = y f(x). Squared loss (1 - u)^2 / 2 equals (y - f)^2 / 2 for y in {-1, +1}.
LOSSES = ("logistic", "exponential", "squared")

#: Each loss at the margin u = 0, i.e. the risk of the zero function: log 2 (logistic), exp(0) = 1
#: (exponential), (1 - 0)^2 / 2 (squared). A target risk at or above it is met by f = 0, so at t = 0 by an
#: antisymmetric initialization (docs/design.md section 2, stopping rule).
RISK_AT_ZERO = {"logistic": 0.6931471805599453, "exponential": 1.0, "squared": 0.5}

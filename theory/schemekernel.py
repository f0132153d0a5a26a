"""The mean tangent kernel K0 per initialization scheme (docs/design.md section 2, lazy limit).

K0 sums a second-layer term (the gradient in v_j: relu features) and a first-layer term (the gradient in w_j:
v_j^2 times the gates). The first depends only on w_j ~ N(0, alpha^2 I / d), the same in every scheme; the
second is E[v_j^2] alpha^-2 times its balanced value, since v_j is independent of the direction of w_j, which
alone sets the gates:

    K0_scheme(x, x') = m c^2 alpha^2 [ ||x|| ||x'|| J(theta) / (2 pi d) + s <x, x'> (pi - theta) / (2 pi) ]

with s = E[v_j^2] / alpha^2 = 1 for the balanced schemes (``random_sign``, ``antisymmetric``: v_j^2 =
||w_j||^2, E ||w_j||^2 = alpha^2) and s = 1 / d for ``gaussian`` (v_j ~ N(0, alpha^2 / d)). The balanced
closed form is :func:`fls.theory.lazy.tangent_kernel`; this module rescales its first-layer term. The
expectation is exact at every width (a sum over neurons), so a Monte-Carlo mean over draws of the network
checks it at any m (tests/theory/test_schemekernel.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fls.theory.lazy import tangent_kernel
from fls.theory.validation import as_array, check_choice, check_int, check_positive

#: The schemes with a derived K0 (docs/design.md section 2), and their first-layer factor s(d) = E[v^2] / alpha^2.
FIRST_LAYER_FACTORS = {
    "random_sign": lambda d: 1.0,
    "antisymmetric": lambda d: 1.0,
    "gaussian": lambda d: 1.0 / d,
}


def scheme_tangent_kernel(
    X1: Any, X2: Any, *, alpha: float, width: int, scheme: str, c: float = 1.0
) -> np.ndarray:
    """K0 of the init ``scheme`` (module docstring), shape (n1, n2), float64 to rounding of the closed form."""
    scheme = check_choice("scheme", scheme, tuple(FIRST_LAYER_FACTORS))
    alpha, width, c = (
        check_positive("alpha", alpha),
        check_int("width", width, minimum=1),
        check_positive("c", c),
    )
    X1, X2 = as_array("X1", X1, ndim=2), as_array("X2", X2, ndim=2)
    balanced = tangent_kernel(X1, X2, alpha=alpha, width=width, c=c)
    d = X1.shape[1]
    scale = FIRST_LAYER_FACTORS[scheme](d)
    if scale == 1.0:
        return balanced
    norms = np.linalg.norm(X1, axis=1)[:, None] * np.linalg.norm(X2, axis=1)[None, :]
    inner = X1 @ X2.T
    with np.errstate(invalid="ignore", divide="ignore"):
        theta = np.arccos(np.clip(np.where(norms > 0, inner / norms, 1.0), -1.0, 1.0))
    first_layer = width * c**2 * alpha**2 * inner * (np.pi - theta) / (2 * np.pi)
    return balanced - (1.0 - scale) * first_layer

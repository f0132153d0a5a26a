"""The mean tangent kernel K0 per initialization scheme (docs/design.md section 2, lazy limit).

K0 sums a second-layer term (the gradient in v_j: relu features) and a first-layer term (the gradient in w_j:
v_j^2 times the gates). The first depends only on w_j ~ N(0, alpha^2 I / d), the same in every scheme; the
second is E[v_j^2] / alpha^2 times its value at E[v_j^2] = alpha^2, since v_j is independent of the direction
of w_j, which alone sets the gates:

    K0_scheme(x, x') = m c^2 alpha^2 [ ||x|| ||x'|| J(theta) / (2 pi d) + s <x, x'> (pi - theta) / (2 pi) ]

with s = E[v_j^2] / alpha^2 = 1 for the balanced schemes (``random_sign``, ``antisymmetric``: v_j^2 =
||w_j||^2, E ||w_j||^2 = alpha^2) and s = 1 / d for ``gaussian`` (v_j ~ N(0, alpha^2 / d)). With hidden biases
the same holds on x~ = (x, 1) with the rows (w_j, b_j) (:mod:`theory.augment`), where the balanced schemes have
s = (d + 1) / d (E ||(w_j, b_j)||^2 = alpha^2 (d + 1) / d) and ``gaussian`` keeps s = 1 / d. The balanced closed
form is :func:`fls.theory.lazy.tangent_kernel`; this module rescales its first-layer term. The expectation is
exact at every width (a sum over neurons), so a Monte-Carlo mean over draws of the network checks it at any m
(tests/theory/test_schemekernel.py). A scheme without such a derivation is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fls.theory.augment import augment_inputs
from fls.theory.lazy import tangent_kernel
from fls.theory.validation import ParameterError, as_array, check_int, check_positive

#: The schemes with a derived K0 (docs/design.md section 2) and their s = E[v_j^2] / alpha^2 as a function of
#: the input dimension d and whether the rows carry a hidden bias.
SECOND_LAYER_MOMENTS: dict[str, Callable[[int, bool], float]] = {
    "random_sign": lambda d, bias: (d + bias) / d,
    "antisymmetric": lambda d, bias: (d + bias) / d,
    "gaussian": lambda d, bias: 1.0 / d,
}


def check_kernel_scheme(scheme: str) -> str:
    """``scheme`` when K0 is derived for it, else a ParameterError naming it, the reason and the schemes
    that have one."""
    if scheme not in SECOND_LAYER_MOMENTS:
        raise ParameterError(
            f"scheme = {scheme!r} has no derived mean tangent kernel K0 (its E[v_j^2] and the independence of "
            f"v_j from the direction of w_j are not established); allowed: {', '.join(SECOND_LAYER_MOMENTS)}"
        )
    return scheme


def scheme_tangent_kernel(
    X1: Any, X2: Any, *, alpha: float, width: int, scheme: str, c: float = 1.0, bias: bool = False
) -> np.ndarray:
    """K0 of the init ``scheme`` (module docstring; of the network with hidden biases when ``bias``), shape
    (n1, n2), float64 to rounding of the closed form."""
    scheme = check_kernel_scheme(scheme)
    alpha, width, c = (
        check_positive("alpha", alpha),
        check_int("width", width, minimum=1),
        check_positive("c", c),
    )
    X1, X2 = as_array("X1", X1, ndim=2), as_array("X2", X2, ndim=2)
    balanced = tangent_kernel(X1, X2, alpha=alpha, width=width, c=c, bias=bias)
    d = X1.shape[1]
    excess = SECOND_LAYER_MOMENTS["random_sign"](d, bias) - SECOND_LAYER_MOMENTS[scheme](d, bias)
    if excess == 0.0:
        return balanced
    if bias:
        X1, X2 = augment_inputs(X1), augment_inputs(X2)
    norms = np.linalg.norm(X1, axis=1)[:, None] * np.linalg.norm(X2, axis=1)[None, :]
    inner = X1 @ X2.T
    cosine = np.divide(inner, norms, out=np.ones_like(norms), where=norms > 0)
    theta = np.arccos(np.clip(cosine, -1.0, 1.0))
    gates = width * c**2 * alpha**2 * inner * (np.pi - theta) / (2 * np.pi)
    return balanced - excess * gates

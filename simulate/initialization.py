"""Initial parameters of the two-layer network f(x) = c sum_j v_j relu(<w_j, x> + b_j) at scale alpha
(docs/design.md section 2); the hidden biases b_j only with ``bias=True``.

w_j(0) = alpha * wbar_j with wbar_j ~ N(0, I_d / d). Hidden biases (``bias=True``): b_j(0) = alpha * bbar_j with
bbar_j ~ N(0, 1 / d), i.e. the augmented row (w_j, b_j) is drawn like one more input coordinate (the network on
(x, 1), :mod:`theory.augment`). Second layer by scheme, with ||.|| the norm of (w_j, b_j) when there are biases:

- ``random_sign`` (balanced): v_j(0) = s_j ||(w_j(0), b_j(0))||, s_j uniform in {-1, +1}, so the invariant
  v_j^2 - ||w_j||^2 - b_j^2 is 0;
- ``antisymmetric`` (balanced, f(.; theta(0)) == 0): neurons in adjacent pairs (w, b, +||(w, b)||),
  (w, b, -||(w, b)||) (the pair shares its bias);
- ``gaussian`` (unbalanced): v_j(0) ~ N(0, alpha^2 / d), independent of the biases.

The biases come from a third stream of the same seed sequence, so (W, v) without biases are bit for bit those of
before biases existed, and W and the signs (or the gaussian v) do not change when biases are switched on.

Every draw depends on the seed only (not on alpha, width or scheme): wbar and the second-layer variates are drawn at
unit scale from two streams of ``seed_sequence("init_params", {}, seed)`` and then multiplied by alpha. Hence, for
one seed, (W, v) at alpha equals alpha times (W, v) at alpha = 1 bit for bit (an alpha sweep compares the same
directions), and the ``random_sign`` and ``gaussian`` draws at width m are the first m rows of those at any larger
width. The ``antisymmetric`` pair directions are the first m / 2 rows of the ``random_sign`` directions.

Precision of f(.; theta(0)) == 0 under ``antisymmetric``: evaluated as products v_j relu(<w_j, x>) followed by a
sequential or pairwise sum (numpy's ``sum``), it is exactly 0.0: adjacent pairs a, -a cancel in the first partial
sum they share, or in mirrored partial sums. Other evaluations leave rounding residues: a matrix product that fuses
multiply and add (BLAS gemv/gemm, torch.matmul) rounds a + (-a) after only one of the two products, and torch's
blocked sums regroup the terms. Measured here and tested: |f(x)| <= eps * sum_j |v_j| relu(<w_j, x>), eps = 2^-52
(typically below 0.1 eps times that sum).
"""

from __future__ import annotations

import numpy as np

from fls.simulate.data import seed_sequence
from fls.theory.validation import ParameterError, check_choice, check_int, check_positive

#: Initialization schemes, docs/design.md section 2.
INIT_SCHEMES = ("random_sign", "antisymmetric", "gaussian")


def init_params(
    width: int, dim: int, *, alpha: float, scheme: str, seed: int, bias: bool = False
) -> tuple[np.ndarray, ...]:
    """Return (W, v), float64 arrays of shapes (width, dim) and (width,), drawn as the module docstring states;
    with ``bias=True``, (W, v, b) with the hidden biases b (width,).

    alpha must be positive and finite (1e-12 ... 1e3 and beyond, as long as alpha^2 stays a normal float);
    ``antisymmetric`` needs an even width.
    """
    if not isinstance(bias, bool):
        raise ParameterError(f"bias must be True or False, got {bias!r}")
    width = check_int("width", width)
    dim = check_int("dim", dim)
    alpha = check_positive("alpha", alpha)
    scheme = check_choice("scheme", scheme, INIT_SCHEMES)
    seed = check_int("seed", seed, minimum=0)
    if scheme == "antisymmetric" and width % 2:
        raise ParameterError(
            f"width = {width} is out of range for scheme 'antisymmetric' (neurons come in pairs (w, +v), (w, -v)); "
            "allowed: even integers >= 2"
        )
    direction_seq, output_seq, bias_seq = seed_sequence("init_params", {}, seed).spawn(3)
    distinct = width // 2 if scheme == "antisymmetric" else width
    wbar = np.random.default_rng(direction_seq).standard_normal((distinct, dim)) / np.sqrt(dim)
    if bias:  # the row (w_j, b_j): one more coordinate drawn like the others
        bbar = np.random.default_rng(bias_seq).standard_normal(distinct) / np.sqrt(dim)
        wbar = np.concatenate([wbar, bbar[:, None]], axis=1)
    if scheme == "gaussian":
        vbar = np.random.default_rng(output_seq).standard_normal(width) / np.sqrt(dim)
    elif scheme == "random_sign":
        signs = np.where(np.random.default_rng(output_seq).random(width) < 0.5, -1.0, 1.0)
        vbar = signs * np.linalg.norm(wbar, axis=1)
    else:
        wbar = np.repeat(wbar, 2, axis=0)
        vbar = np.linalg.norm(wbar, axis=1) * np.tile([1.0, -1.0], distinct)
    if not bias:
        return alpha * wbar, alpha * vbar
    return alpha * wbar[:, :dim], alpha * vbar, alpha * wbar[:, dim]

"""The derived gradient flow compiled to fast numpy and torch code.

:func:`theory.symbolic.derive` splits each summand of the field into a neuron factor, a pair factor and a sample
factor. Here each factor is turned into an elementwise function (``sympy.lambdify``) for numpy and for torch, and
the sum over samples becomes a matrix product, so one evaluation of

    W' = a(v, c) * ((B(P) * s(f, y)) @ X),     v' = a_v(c) * (B_v(P) @ s(f, y)),     P = W X^T, f = c v relu(P)

costs two (m, n, d) matrix products — no Python loop over neurons or samples. The same body serves numpy arrays
(W of shape (m, d)) and batched torch tensors (W of shape (E, m, d), an ensemble axis in front), because it uses
only ``@``, broadcasting and ``swapaxes``.

Named special functions compile to numerically stable kernels: softplus -> ``logaddexp`` / ``softplus``,
sigmoid -> ``expit`` / ``sigmoid``, relu'(0) = 0 -> ``heaviside(P, 0)`` / ``P > 0``. Precision: the result
equals the exact field to float64 rounding (tests compare with autograd and finite differences at 1e-10).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import scipy.special
import sympy as sp

from theory import symbolic as S
from theory.validation import ParameterError, as_array, as_labels, check_choice, check_positive


def numpy_namespace() -> dict[str, Callable[..., Any]]:
    """The stable numpy kernels of the named sympy functions, for ``sympy.lambdify`` of derived expressions."""
    return {
        "Expit": scipy.special.expit,
        "Softplus": lambda z: np.logaddexp(0.0, z),
        "ReLU": lambda z: np.maximum(z, 0.0),
        "Heaviside": lambda z, h0: (z > 0).astype(z.dtype) if h0 == 0 else np.heaviside(z, h0),
        "exp": np.exp,
        "log": np.log,
    }


def torch_namespace() -> dict[str, Callable[..., Any]]:
    """The torch kernels of the named sympy functions, for ``sympy.lambdify`` of derived expressions."""
    import torch

    return {
        "Expit": torch.sigmoid,
        "Softplus": lambda z: torch.logaddexp(torch.zeros_like(z), z),  # exact; F.softplus linearizes past 20
        "ReLU": torch.relu,
        "Heaviside": lambda z, h0: (
            (z > 0).to(z.dtype) if h0 == 0 else torch.heaviside(z, torch.full_like(z, h0))
        ),
        "exp": torch.exp,
        "log": torch.log,
    }


def _lambdify(args: tuple[sp.Symbol, ...], expr: sp.Expr, namespace: dict[str, Callable[..., Any]]):
    return sp.lambdify(args, expr, modules=[namespace])


@dataclass(frozen=True)
class _Kernels:
    """The elementwise pieces of one loss's field, for one backend."""

    neuron_W: Callable[..., Any]  # (v_p, c, n) -> neuron factor of W'
    pair_W: Callable[..., Any]  # P -> pair factor of W'
    neuron_v: Callable[..., Any]  # (c, n) -> neuron factor of v'
    pair_v: Callable[..., Any]  # P -> pair factor of v' (relu)
    sample: Callable[..., Any]  # (f, y_i) -> sample factor
    loss: Callable[..., Any]  # u -> l(u)


def _kernels(derivation: S.Derivation, namespace: dict[str, Callable[..., Any]]) -> _Kernels:
    nW, pW, sW = derivation.factors_W
    nv, pv, sv = derivation.factors_v
    if sp.simplify(sW - sv) != 0:
        raise RuntimeError(
            "the W and v fields have different sample factors; the compiled layout assumes one"
        )
    return _Kernels(
        neuron_W=_lambdify((S.vp, S.c, S.n), nW, namespace),
        pair_W=_lambdify((S.P,), pW, namespace),
        neuron_v=_lambdify((S.c, S.n), nv, namespace),
        pair_v=_lambdify((S.P,), pv, namespace),
        sample=_lambdify((S.f, S.yi), sW, namespace),
        loss=_lambdify((S.u,), derivation.loss, namespace),
    )


class CompiledField:
    """The two-layer ReLU network and its derived gradient-flow field for one loss, on numpy or torch.

    Shapes: W (..., m, d), v (..., m), X (n, d) or (..., n, d), y (n,) or (..., n), c a scalar or (...,) array.
    The leading ``...`` is an optional ensemble axis (torch); numpy callers normally pass single models.
    Inputs are not validated here (hot path): use :func:`vector_field` at API boundaries.
    """

    def __init__(self, loss: str) -> None:
        self.loss_name = check_choice("loss", loss, S.LOSSES)
        self.derivation = S.derive(loss)
        self._numpy = _kernels(self.derivation, numpy_namespace())
        self._torch: _Kernels | None = None

    def _backend(self, array: Any) -> _Kernels:
        if isinstance(array, np.ndarray):
            return self._numpy
        if self._torch is None:
            self._torch = _kernels(self.derivation, torch_namespace())
        return self._torch

    @staticmethod
    def _col(c: Any) -> Any:
        """c with a trailing axis, so a per-member multiplier broadcasts over samples or neurons."""
        return c[..., None] if hasattr(c, "ndim") and c.ndim > 0 else c

    def preactivations(self, W: Any, X: Any) -> Any:
        """P = W X^T, shape (..., m, n): P[j, i] = <w_j, x_i>."""
        return W @ X.swapaxes(-1, -2)

    def output_from_preactivations(self, P: Any, v: Any, c: Any) -> Any:
        """f(x_i) = c sum_j v_j relu(P_ji), shape (..., n)."""
        return self._output(self._backend(P).pair_v(P), v, c)

    def _output(self, relu: Any, v: Any, c: Any) -> Any:
        return self._col(c) * (v[..., None, :] @ relu)[..., 0, :]

    def output(self, W: Any, v: Any, X: Any, c: Any = 1.0) -> Any:
        """The network f(x) = c sum_j v_j relu(<w_j, x>) on the rows of X."""
        return self.output_from_preactivations(self.preactivations(W, X), v, c)

    def losses(self, f: Any, y: Any) -> Any:
        """Per-sample loss l(y_i f(x_i))."""
        return self._backend(f).loss(y * f)

    def risk(self, W: Any, v: Any, X: Any, y: Any, c: Any = 1.0) -> Any:
        """Empirical risk R = (1/n) sum_i l(y_i f(x_i)), shape (...)."""
        return self.losses(self.output(W, v, X, c), y).mean(-1)

    def sample_factor(self, f: Any, y: Any) -> Any:
        """s_i = -l'(y_i f_i) y_i: the weight of sample i in the field (for logistic loss r_i y_i)."""
        return self._backend(f).sample(f, y)

    def field(self, W: Any, v: Any, X: Any, y: Any, c: Any = 1.0, gates: Any = None) -> tuple[Any, Any]:
        """(dW, dv) = -grad R at (W, v).

        ``gates``, if given, replaces the pair factor relu'(P) of W' (shape (..., m, n), values in [0, 1]): the
        flow engine passes its activation pattern with sliding weights mu there (the Filippov selection).
        """
        kern = self._backend(W)
        n = X.shape[-2]
        P = self.preactivations(W, X)
        relu = kern.pair_v(P)  # the pair factor of v' is relu(P), the same as in f
        s = kern.sample(self._output(relu, v, c), y)  # (..., n)
        pair = kern.pair_W(P) if gates is None else gates
        dW = kern.neuron_W(v, self._col(c), n)[..., None] * ((pair * s[..., None, :]) @ X)
        dv = kern.neuron_v(self._col(c), n) * (relu @ s[..., None])[..., 0]
        return dW, dv


@cache
def compile_field(loss: str = "logistic") -> CompiledField:
    """The compiled field of ``loss`` (cached: the sympy derivation runs once per process and loss)."""
    return CompiledField(loss)


def validate_network(
    W: Any, v: Any, X: Any, y: Any | None = None, *, c: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, float]:
    """Check the shapes and values of (W, v, X, y, c) for a single two-layer network; return float64 copies."""
    X = as_array("X", X, ndim=2)
    n, d = X.shape
    W = as_array("W", W, ndim=2, shape=(None, d))
    v = as_array("v", v, ndim=1, shape=(W.shape[0],))
    labels = None if y is None else as_labels("y", y, n=n)
    return W, v, X, labels, check_positive("c", c)


def vector_field(
    W: Any, v: Any, X: Any, y: Any, *, c: float = 1.0, loss: str = "logistic"
) -> tuple[np.ndarray, np.ndarray]:
    """The derived gradient-flow field (dW, dv) = -grad R of DESIGN.md section 2, numpy float64.

        w_j' = (c / n) v_j sum_i r_i y_i 1[<w_j, x_i> > 0] x_i,     v_j' = (c / n) sum_i r_i y_i relu(<w_j, x_i>)

    with r_i = -l'(y_i f(x_i)). W has shape (m, d), v (m,), X (n, d), y (n,) in {-1, +1}.
    """
    W, v, X, y, c = validate_network(W, v, X, y, c=c)
    field = compile_field(loss)
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.all(np.isfinite(field.output(W, v, X, c)))
    if not finite:
        raise ParameterError("the network output overflowed at these parameters; W and v are too large")
    return field.field(W, v, X, y, c)

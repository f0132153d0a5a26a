"""The derived gradient flow compiled to fast numpy and torch code.

:func:`theory.symbolic.derive` splits each summand of the field into a neuron factor, a pair factor and a sample
factor. Each factor is printed as the source of an elementwise Python function (:mod:`theory.fieldsource`), which
is kept in an on-disk cache (:mod:`theory.fieldcache`: a new process reads it in milliseconds instead of
importing sympy and deriving for about 2 s) and executed here with numpy's and with torch's special functions.
The sum over samples becomes a matrix product, so one evaluation of

    W' = a(v, c) * (B(P) @ (s(f, y) * X)),     v' = a_v(c) * (relu(P) @ s(f, y)),     P = W X^T, f = c v relu(P)

costs two (m, n, d) matrix products — no Python loop over neurons or samples. The same body serves numpy arrays
(W of shape (m, d)) and batched torch tensors (W of shape (E, m, d), an ensemble axis in front), because it uses
only ``@``, broadcasting and ``swapaxes``.

The (m, n) pair arrays are the only large intermediates; everything else is O(m d + n d). They are therefore built
in place in a per-thread workspace that is reused between calls with the same shapes: the sample factor is folded
into X (n, d) rather than into B (m, n), relu(P) and B(P) take one pass each over P (numpy: B = [P > 0] and
relu = P * B; torch: relu in place and B = sign(relu)), and the matrix products write into preallocated buffers
(a fresh (m, n) array per call costs page faults comparable to the arithmetic). An ensemble is evaluated in blocks
of members whose intermediates fit in cache (:data:`BLOCK_ELEMENTS`). At the size of
``benchmarks/vector_field.py`` (n = 200, d = 100, m = 1000, one thread) the torch field costs about 2.4 numpy
matmul-equivalents and the numpy field 2.8 (2.5 with ``out=``).

Named special functions compile to numerically stable kernels: softplus -> ``logaddexp``, sigmoid ->
:func:`expit` / ``sigmoid``; the pair factors ReLU(P) and Heaviside(P, 0) (relu'(0) = 0) are checked to be what the derivation
gives and run as the in-place passes above. Precision: the result equals the exact field to float64 rounding (tests compare with autograd and finite differences at 1e-10).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from fls.theory import fieldcache
from fls.theory.augment import augment_inputs, augment_weights, split_weights
from fls.theory.losses import LOSSES, as_sample_weight, as_targets
from fls.theory.validation import ParameterError, as_array, check_choice, check_positive

if TYPE_CHECKING:
    from fls.theory.symbolic import Derivation


def expit(z: Any) -> np.ndarray:
    """The logistic sigmoid 1 / (1 + exp(-z)) to a few ulp for every float64 z, without overflow.

    With e = exp(-|z|) <= 1: 1 / (1 + e) for z >= 0 and e / (1 + e) for z < 0 (no cancellation on either side).
    The numerator is exp(min(z, 0)), which is exactly 1 for z >= 0 and exactly e for z < 0 (min(z, 0) = -|z|
    there), so both sides are one expression of five ufunc calls with no ``np.where``: the flow engine forms
    sample factors of a few dozen samples thousands of times per run, where each numpy call's overhead, not
    the arithmetic, is the cost (docs/flow.md, "Cost"). Same values as ``scipy.special.expit`` to a few ulp
    (tests compare them) without importing scipy.special, which would cost a starting process more than the
    rest of :func:`compile_field` does.
    """
    denominator = np.exp(np.negative(np.abs(z)))
    denominator += 1.0
    return np.divide(np.exp(np.minimum(z, 0.0)), denominator)


def numpy_namespace() -> dict[str, Callable[..., Any]]:
    """The stable numpy kernels of the named functions of the derivation, for executing the kernel sources."""
    return {
        "Expit": expit,
        "Softplus": lambda z: np.logaddexp(0.0, z),
        "exp": np.exp,
        "log": np.log,
    }


def torch_namespace() -> dict[str, Callable[..., Any]]:
    """The torch kernels of the named functions of the derivation, for executing the kernel sources."""
    import torch

    return {
        "Expit": torch.sigmoid,
        "Softplus": lambda z: torch.logaddexp(torch.zeros_like(z), z),  # exact; F.softplus linearizes past 20
        "exp": torch.exp,
        "log": torch.log,
    }


#: An ensemble (W of shape (E, m, d)) is evaluated in blocks of members whose (block, m, n) intermediates hold at
#: most about this many elements (4 MiB of float64), so that each elementwise pass over them runs in cache rather
#: than in main memory; ``benchmarks/train.py`` measures the batched step.
BLOCK_ELEMENTS = 2**19
#: Buffers the per-thread workspace keeps before it starts over (a few shapes: full blocks and the last one).
WORKSPACE_BUFFERS = 8


@dataclass(frozen=True)
class _Kernels:
    """The elementwise pieces of one loss's field, for one backend, and the in-place array operations."""

    neuron_W: Callable[..., Any]  # (v_p, c, n) -> neuron factor of W'
    neuron_v: Callable[..., Any]  # (c, n) -> neuron factor of v'
    sample: Callable[..., Any]  # (f, y_i) -> sample factor
    sample_slope: Callable[..., Any]  # (f, y_i) -> d(sample factor)/df
    loss: Callable[..., Any]  # (f, y_i) -> l(f, y_i)
    empty: Callable[[Any, tuple[int, ...]], Any]  # (like, shape) -> uninitialized array
    matmul: Callable[..., Any]  # (a, b, out) -> a @ b written into out
    step_relu: Callable[..., Any]  # (P, out) -> (Heaviside(P, 0) as 0.0 / 1.0 into out, relu(P) over P)
    multiply: Callable[..., Any]  # (a, b, out) -> a * b written into out
    relu_: Callable[[Any], Any]  # P -> relu(P) written over P
    broadcast: Callable[[Any, Any], Any]  # (value, like) -> value broadcast to like's shape (a constant kernel)


def _numpy_step_relu(P: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    step = np.greater(P, 0.0, out=out)
    return step, np.multiply(P, step, out=P)  # one pass; np.maximum(P, 0) is slower


def _torch_step_relu(P: Any, out: Any) -> tuple[Any, Any]:
    import torch

    relu = torch.relu_(P)
    return torch.sign(relu, out=out), relu  # 0 or 1 on relu >= 0; faster than a comparison into floats


def _numpy_operations() -> dict[str, Callable[..., Any]]:
    return {
        "empty": lambda like, shape: np.empty(shape, like.dtype),
        "matmul": lambda a, b, out: np.matmul(a, b, out=out),
        "step_relu": _numpy_step_relu,
        "multiply": lambda a, b, out: np.multiply(a, b, out=out),
        "relu_": lambda P: np.maximum(P, 0.0, out=P),
        "broadcast": lambda value, like: np.broadcast_to(value, np.shape(like)),
    }


def _torch_operations() -> dict[str, Callable[..., Any]]:
    import torch

    return {
        "empty": lambda like, shape: like.new_empty(shape),
        "matmul": lambda a, b, out: torch.matmul(a, b, out=out),
        "step_relu": _torch_step_relu,
        "multiply": lambda a, b, out: torch.mul(a, b, out=out),
        "relu_": torch.relu_,
        "broadcast": lambda value, like: torch.as_tensor(value, dtype=like.dtype, device=like.device).expand_as(
            like
        ),
    }


def _kernels(
    sources: dict[str, str],
    namespace: dict[str, Callable[..., Any]],
    operations: dict[str, Callable[..., Any]],
) -> _Kernels:
    """The kernels of ``sources`` (:mod:`theory.fieldsource`) executed with ``namespace``'s special functions."""
    functions = {}
    for name, source in sources.items():
        scope: dict[str, Any] = dict(namespace)
        exec(compile(source, f"<fls field kernel {name}>", "exec"), scope)  # noqa: S102 (our own generated code)
        functions[name] = scope[name]
    return _Kernels(**functions, **operations)


def kernel_sources(loss: str, bias: bool = False) -> tuple[dict[str, str], str]:
    """The kernel sources of ``loss`` (hidden biases when ``bias``) and where they came from (a
    ``theory.fieldcache`` origin).

    A verified cache entry is used as is (no sympy import); otherwise the field is derived, and the entry written
    for the next process when the cache directory allows it.
    """
    key = fieldcache.cache_key(loss, bias)
    sources = fieldcache.read_entry(key)
    if sources is not None:
        return sources, fieldcache.HIT
    from fls.theory.fieldsource import kernel_sources as derive_sources  # sympy: only on a cache miss

    sources = derive_sources(loss, bias)
    return sources, (fieldcache.STORED if fieldcache.write_entry(key, sources) else fieldcache.UNSTORED)


class _Workspace(threading.local):
    """Per-thread buffers for the (..., m, n) and (..., m, d) intermediates of the field, one per name and shape,
    reused while the dtype and device stay the same (at most :data:`WORKSPACE_BUFFERS` are kept)."""

    def __init__(self) -> None:
        self.buffers: dict[tuple[str, tuple[int, ...]], Any] = {}

    def get(self, name: str, like: Any, shape: tuple[int, ...], kern: _Kernels) -> Any:
        buffer = self.buffers.get((name, shape))
        if (
            buffer is None
            or type(buffer) is not type(like)
            or buffer.dtype != like.dtype
            or getattr(buffer, "device", None) != getattr(like, "device", None)
        ):
            if len(self.buffers) >= WORKSPACE_BUFFERS:
                self.buffers.clear()
            buffer = self.buffers[(name, shape)] = kern.empty(like, shape)
        return buffer


class CompiledField:
    """The two-layer ReLU network and its derived gradient-flow field for one loss, on numpy or torch.

    Shapes: W (..., m, d), v (..., m), X (n, d) or (..., n, d), y (n,) or (..., n), c a scalar or (...,) array.
    The leading ``...`` is an optional ensemble axis (torch); numpy callers normally pass single models.
    ``weights`` (n,) or (..., n), where a method takes them, are the normalized sample weights w_i (mean 1,
    :func:`theory.losses.as_sample_weight`); None is the plain mean (bit for bit the unweighted code path).
    With ``bias`` (the field of the biased derivation), W and X are the augmented arrays (w_j, b_j) and
    (x_i, 1) of :mod:`theory.augment`. Inputs are not validated here (hot path): use :func:`vector_field` at
    API boundaries.
    """

    def __init__(self, loss: str, bias: bool = False) -> None:
        self.loss_name = check_choice("loss", loss, LOSSES)
        self.bias = bool(bias)
        self._sources, self.source_origin = kernel_sources(self.loss_name, self.bias)
        self._numpy = _kernels(self._sources, numpy_namespace(), _numpy_operations())
        self._torch: _Kernels | None = None
        self._workspace = _Workspace()

    @cached_property
    def derivation(self) -> Derivation:
        """The sympy derivation of this field (:func:`theory.symbolic.derive`); imports sympy on first use."""
        from fls.theory.symbolic import derive

        return derive(self.loss_name, self.bias)

    def _backend(self, array: Any) -> _Kernels:
        if isinstance(array, np.ndarray):
            return self._numpy
        if self._torch is None:
            self._torch = _kernels(self._sources, torch_namespace(), _torch_operations())
        return self._torch

    @staticmethod
    def _col(c: Any) -> Any:
        """c with a trailing axis, so a per-member multiplier broadcasts over samples or neurons."""
        return c[..., None] if hasattr(c, "ndim") and c.ndim > 0 else c

    def preactivations(self, W: Any, X: Any) -> Any:
        """P = W X^T, shape (..., m, n): P[j, i] = <w_j, x_i>."""
        return W @ X.swapaxes(-1, -2)

    def _output(self, relu: Any, v: Any, c: Any) -> Any:
        """f(x_i) = c sum_j v_j relu_ji, shape (..., n), from the relu of the preactivations."""
        return self._col(c) * (v[..., None, :] @ relu)[..., 0, :]

    def output(self, W: Any, v: Any, X: Any, c: Any = 1.0) -> Any:
        """The network f(x) = c sum_j v_j relu(<w_j, x>) on the rows of X."""
        return self._output(self._backend(W).relu_(self.preactivations(W, X)), v, c)

    def losses(self, f: Any, y: Any, weights: Any = None) -> Any:
        """Per-sample weighted loss w_i l(f(x_i), y_i) (l(f(x_i), y_i) without weights)."""
        losses = self._backend(f).loss(f, y)
        return losses if weights is None else losses * weights

    def risk(self, W: Any, v: Any, X: Any, y: Any, c: Any = 1.0, weights: Any = None) -> Any:
        """Empirical risk R = (1/n) sum_i w_i l(f(x_i), y_i), shape (...)."""
        return self.losses(self.output(W, v, X, c), y, weights).mean(-1)

    def sample_factor(self, f: Any, y: Any, weights: Any = None) -> Any:
        """w_i s_i with s_i = -dl/df (f_i, y_i): the weight of sample i in the field (logistic: r_i y_i)."""
        s = self._backend(f).sample(f, y)
        return s if weights is None else s * weights

    def numpy_sample_factor(self, weights: np.ndarray | None = None) -> Callable[[Any, Any], np.ndarray]:
        """:meth:`sample_factor` on numpy arrays as one function, (f, y) -> w_i s_i, the same values bit for bit:
        the numpy kernel itself without weights. The flow engine forms the sample factors of a few dozen
        samples about ten times per event, where the backend dispatch's two extra calls cost half of the
        kernel's arithmetic (docs/flow.md, "Cost")."""
        kernel = self._numpy.sample
        if weights is None:
            return kernel
        return lambda f, y: kernel(f, y) * weights

    def sample_slope(self, f: Any, y: Any, weights: Any = None) -> Any:
        """d(w_i s_i)/df_i, derived by sympy (the flow engine's analytic Jacobian uses it); an array of f's shape
        also where the derivative is a constant (squared loss: -1)."""
        kern = self._backend(f)
        slope = kern.broadcast(kern.sample_slope(f, y), f)
        return slope if weights is None else slope * weights

    def field(
        self,
        W: Any,
        v: Any,
        X: Any,
        y: Any,
        c: Any = 1.0,
        gates: Any = None,
        *,
        out: tuple[Any, Any] | None = None,
        weights: Any = None,
    ) -> tuple[Any, Any]:
        """(dW, dv) = -grad R at (W, v); see :meth:`field_and_output`."""
        return self.field_and_output(W, v, X, y, c, gates, out=out, weights=weights)[:2]

    def field_and_output(
        self,
        W: Any,
        v: Any,
        X: Any,
        y: Any,
        c: Any = 1.0,
        gates: Any = None,
        *,
        out: tuple[Any, Any] | None = None,
        sample: Callable[[Any, Any], Any] | None = None,
        weights: Any = None,
    ) -> tuple[Any, Any, Any]:
        """(dW, dv, f): the field -grad R at (W, v) and the network output f (..., n) it was computed from.

        ``gates``, if given, replaces the pair factor relu'(P) of W' (shape (..., m, n), values in [0, 1]): the
        flow engine passes its activation pattern with sliding weights mu there (the Filippov selection).
        ``out``, if given, is a pair of arrays of the shapes of (W, v) that receive the result (no allocation).
        ``sample``, if given, replaces the derived sample factor s(f, y) = -l'(y f) y, for a loss that is not a
        function of the derived loss. ``weights``, if given, multiply the sample factor (weighted risk).
        Tensors that require grad are not supported (the products write into buffers); differentiate
        :meth:`risk` instead.
        """
        kern = self._backend(W)
        size, m, n = (W.shape[0] if W.ndim == 3 else 1), W.shape[-2], X.shape[-2]
        if W.ndim != 3 or size * m * n <= BLOCK_ELEMENTS:
            return self._field_block(kern, W, v, X, y, c, gates, out, sample, weights)
        per_block = max(1, BLOCK_ELEMENTS // (m * n))
        dW, dv = out if out is not None else (kern.empty(W, tuple(W.shape)), kern.empty(v, tuple(v.shape)))
        f = kern.empty(W, (size, n))
        for start in range(0, size, per_block):
            rows = slice(start, start + per_block)

            def part(a: Any, ndim: int, rows: slice = rows) -> Any:
                """The block's members of an argument that has the member axis (ndim axes), else itself."""
                return a[rows] if getattr(a, "ndim", 0) == ndim else a

            _, _, f[rows] = self._field_block(
                kern,
                W[rows],
                v[rows],
                part(X, 3),
                part(y, 2),
                part(c, 1),
                part(gates, 3),
                (dW[rows], dv[rows]),
                sample,
                part(weights, 2),
            )
        return dW, dv, f

    def _field_block(
        self,
        kern: _Kernels,
        W: Any,
        v: Any,
        X: Any,
        y: Any,
        c: Any,
        gates: Any,
        out: tuple[Any, Any] | None,
        sample: Callable[[Any, Any], Any] | None,
        weights: Any,
    ) -> tuple[Any, Any, Any]:
        """:meth:`field_and_output` on one block of members (or one network)."""
        n = X.shape[-2]
        batch = tuple(W.shape[:-2])
        m, d = W.shape[-2:]
        P = kern.matmul(W, X.swapaxes(-1, -2), self._workspace.get("P", W, (*batch, m, n), kern))
        if gates is None:
            gates, relu = kern.step_relu(P, self._workspace.get("gates", W, (*batch, m, n), kern))
        else:
            relu = kern.relu_(P)
        f = self._output(relu, v, c)
        s = (kern.sample if sample is None else sample)(f, y)  # (..., n)
        if weights is not None:
            s = s * weights
        gated = kern.matmul(gates, s[..., None] * X, self._workspace.get("gated", W, (*batch, m, d), kern))
        dW_out, dv_out = (None, None) if out is None else out
        dW = kern.multiply(kern.neuron_W(v, self._col(c), n)[..., None], gated, dW_out)
        dv = kern.multiply(kern.neuron_v(self._col(c), n), (relu @ s[..., None])[..., 0], dv_out)
        return dW, dv, f


@cache
def compile_field(loss: str = "logistic", bias: bool = False) -> CompiledField:
    """The compiled field of ``loss`` (hidden biases when ``bias``), once per process; its kernel source comes from
    the on-disk cache of :mod:`theory.fieldcache` when a verified entry exists (no sympy import), else from the
    derivation."""
    return CompiledField(loss, bias)


def validate_network(
    W: Any, v: Any, X: Any, y: Any | None = None, *, c: float = 1.0, loss: str = "logistic"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, float]:
    """Check the shapes and values of (W, v, X, y, c) for a single two-layer network; return float64 copies.

    The targets y must be of the kind ``loss`` accepts (:func:`theory.losses.as_targets`).
    """
    X = as_array("X", X, ndim=2)
    n, d = X.shape
    W = as_array("W", W, ndim=2, shape=(None, d))
    v = as_array("v", v, ndim=1, shape=(W.shape[0],))
    targets = None if y is None else as_targets("y", y, loss=loss, n=n)
    return W, v, X, targets, check_positive("c", c)


def vector_field(
    W: Any,
    v: Any,
    X: Any,
    y: Any,
    *,
    c: float = 1.0,
    loss: str = "logistic",
    b: Any = None,
    sample_weight: Any = None,
) -> tuple[np.ndarray, ...]:
    """The derived gradient-flow field (dW, dv) = -grad R of docs/design.md section 2, numpy float64.

        w_j' = (c / n) v_j sum_i w_i s_i 1[P_ji > 0] x_i,     v_j' = (c / n) sum_i w_i s_i relu(P_ji),
        b_j' = (c / n) v_j sum_i w_i s_i 1[P_ji > 0]          (with biases),

    with P_ji = <w_j, x_i> (+ b_j), s_i = -dl/df (f(x_i), y_i) (logistic: r_i y_i, squared: y_i - f(x_i)) and
    w_i the normalized sample weights (1 without ``sample_weight``). W has shape (m, d), v (m,), X (n, d), y (n,)
    (labels in {-1, +1} for a margin loss, real for ``squared``), b (m,) or None, sample_weight (n,) >= 0 or
    None. Returns (dW, dv), and (dW, dv, db) when ``b`` is given.
    """
    W, v, X, y, c = validate_network(W, v, X, y, c=c, loss=loss)
    weights = as_sample_weight(sample_weight, X.shape[0])
    biased = b is not None
    if biased:
        W, X = augment_weights(W, b), augment_inputs(X)
    field = compile_field(loss, biased)
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.all(np.isfinite(field.output(W, v, X, c)))
    if not finite:
        raise ParameterError("the network output overflowed at these parameters; W and v are too large")
    dW, dv = field.field(W, v, X, y, c, weights=weights)
    if not biased:
        return dW, dv
    dW, db = split_weights(dW)
    return dW, dv, db

"""The small-initialization limit (strong feature learning) of docs/design.md section 2.

While |f| << 1 every sample factor is its value at f = 0 (r_i = 1/2 for the logistic loss; every loss, real
targets, sample weights and hidden biases through :func:`pulled_data`: y_i below reads q_i = 2 w_i s_i(0) and x_i
reads (x_i, 1) with biases), and a balanced neuron (v = sign(v) ||w||) splits into a
direction u = w / ||w|| on the unit sphere and a log-norm, with

    g(u) = (1/n) sum_i (1/2) y_i 1[<u, x_i> > 0] x_i,        H(u) = <u, g(u)>,
    u' = c sign(v) (I - u u^T) g(u),                         (log ||w||)' = c sign(v) H(u).

H is piecewise linear (g is constant on each activation region), so the direction flow is, region by region,
the Riemannian gradient flow of a linear function on the sphere: positive neurons climb H, negative ones
descend it, and its attracting stationary points are the *extreme vectors* (:func:`extreme_vectors`).

Under orthogonal separability (every same-label pair positively correlated, every opposite pair negatively) a
positive neuron active on exactly the positive points keeps that activation pattern, g = x+ / (2n), and its
cosine psi = <u, x+ / ||x+||> and norm solve in closed form (:func:`tanh_alignment`, :func:`aligned_norm`):

    psi(t) = tanh(lambda+ (t - t0) + artanh psi(t0)),         lambda+ = c ||x+|| / (2n),
    ||w(t)|| = ||w(t0)|| cosh(lambda+ (t - t0) + artanh psi(t0)) / cosh(artanh psi(t0)).

The negative class is the mirror image (a negative neuron active on exactly the negative points, x-, lambda-).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fls.theory.augment import augment_inputs
from fls.theory.compiled import compile_field
from fls.theory.directionflow import DirectionFlow, Rest
from fls.theory.losses import as_sample_weight, as_targets
from fls.theory.validation import (
    ParameterError,
    as_array,
    as_labels,
    check_in_range,
    check_int,
    check_positive,
)

if TYPE_CHECKING:
    import sympy as sp

# ------------------------------------------------------------------------------------------------------------
# Orthogonal separability and the class sums
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrthogonalSeparability:
    """Whether (X, y) is orthogonally separable, with the two inner products that decide it.

    Attributes:
        holds: every same-label pair i != j has <x_i, x_j> > 0 and every opposite-label pair <x_i, x_j> < 0.
        min_same_label: min over same-label pairs i != j of <x_i, x_j> (+inf when no such pair exists).
        max_opposite_label: max over opposite-label pairs of <x_i, x_j> (-inf when one class is empty).
    """

    holds: bool
    min_same_label: float
    max_opposite_label: float

    @property
    def margin(self) -> float:
        """min(min_same_label, -max_opposite_label): positive exactly when the condition holds."""
        return min(self.min_same_label, -self.max_opposite_label)


def _data(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    X = as_array("X", X, ndim=2)
    if X.shape[0] == 0:
        raise ParameterError("X has no rows; at least one sample is needed")
    return X, as_labels("y", y, n=X.shape[0])


def orthogonal_separability(X: Any, y: Any) -> OrthogonalSeparability:
    """Check orthogonal separability: same-label pairs positively, opposite pairs negatively correlated.

    This is the condition under which the extreme vectors of the small-initialization flow are the normalized
    class sums x+/||x+|| and x-/||x-|| and the tanh law holds (module docstring). Pairs i = j are excluded.
    """
    X, y = _data(X, y)
    gram = X @ X.T
    same = y[:, None] == y[None, :]
    np.fill_diagonal(same, False)
    opposite = y[:, None] != y[None, :]
    min_same = float(gram[same].min()) if same.any() else np.inf
    max_opposite = float(gram[opposite].max()) if opposite.any() else -np.inf
    return OrthogonalSeparability(
        holds=bool(min_same > 0 and max_opposite < 0),
        min_same_label=min_same,
        max_opposite_label=max_opposite,
    )


def class_sums(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """(x+, x-): the sums of the positive-class and of the negative-class points, each of shape (d,)."""
    X, y = _data(X, y)
    return X[y > 0].sum(axis=0), X[y < 0].sum(axis=0)


def alignment_rates(X: Any, y: Any, *, c: float = 1.0) -> tuple[float, float]:
    """(lambda+, lambda-) = (c ||x+|| / (2n), c ||x-|| / (2n)): the rates of the tanh law of each class."""
    c = check_positive("c", c)
    X, y = _data(X, y)
    x_plus, x_minus = class_sums(X, y)
    n = len(y)
    return c * float(np.linalg.norm(x_plus)) / (2 * n), c * float(np.linalg.norm(x_minus)) / (2 * n)


# ------------------------------------------------------------------------------------------------------------
# The directional field
# ------------------------------------------------------------------------------------------------------------


def unit_rows(U: Any, d: int, name: str = "U") -> np.ndarray:
    """Rows of U normalized to unit length (any non-zero w stands for its direction)."""
    U = as_array(name, U, ndim=2, shape=(None, d))
    norms = np.linalg.norm(U, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ParameterError(f"{name} has a zero row; every row must be a non-zero direction")
    return U / norms


def _signs(sign: Any, k: int) -> np.ndarray:
    """sign as a (k,) array of +-1 (a scalar applies to every direction)."""
    return as_labels("sign", [sign] * k if np.ndim(sign) == 0 else sign, n=k)


def pulled_data(
    X: Any, y: Any, *, loss: str = "logistic", sample_weight: Any = None, bias: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(X, q) of the small-initialization limit of a model: the inputs ((x_i, 1) with hidden biases,
    :mod:`theory.augment`) and the pulls q_i = 2 w_i s_i(0), twice each sample's factor in the field at f = 0.

    While |f| << 1 the sample factor s_i = -dl/df (f_i, y_i) is its value at f = 0: y_i / 2 for the logistic
    loss (so q = y, the paper's case), y_i for the exponential and the squared loss; w_i are the normalized
    sample weights. Every formula of this module reads y_i as q_i, so the limit covers every loss, real
    targets, weights and biases.
    """
    if not isinstance(bias, bool):
        raise ParameterError(f"bias must be True or False, got {bias!r}")
    X = as_array("X", X, ndim=2)
    y = as_targets("y", y, loss=loss, n=X.shape[0])
    weights = as_sample_weight(sample_weight, X.shape[0])
    pull = 2.0 * compile_field(loss).sample_factor(np.zeros_like(y), y, weights)
    if not np.any(pull != 0):
        raise ParameterError("every sample has zero pull at f = 0 (all targets or weights 0); nothing is learned")
    return (augment_inputs(X) if bias else X), pull


def _half_correlation(U: np.ndarray, X: np.ndarray, q: np.ndarray) -> np.ndarray:
    """g(u) for unit rows of U, unchecked (relu'(0) = 0: a point on its surface counts as inactive)."""
    return ((U @ X.T > 0) * q) @ X / (2 * X.shape[0])


def half_correlation(U: Any, X: Any, y: Any, **model: Any) -> np.ndarray:
    """g(u) = (1/n) sum_i (1/2) q_i 1[<u, x_i> > 0] x_i for each row u of U; shape (k, d) (k, d + 1 with biases).

    q = y for the logistic loss; ``model`` (loss, sample_weight, bias) as in :func:`pulled_data`.
    """
    X, q = pulled_data(X, y, **model)
    return _half_correlation(unit_rows(U, X.shape[1]), X, q)


def alignment_potential(U: Any, X: Any, y: Any, **model: Any) -> np.ndarray:
    """H(u) = <u, g(u)> for each row of U (rows normalized first); shape (k,); ``model`` as in
    :func:`pulled_data`."""
    X, q = pulled_data(X, y, **model)
    U = unit_rows(U, X.shape[1])
    return np.einsum("kd,kd->k", U, _half_correlation(U, X, q))


def directional_field(U: Any, X: Any, y: Any, *, sign: Any, c: float = 1.0, **model: Any) -> np.ndarray:
    """u' = c sign(v) (I - u u^T) g(u) for each row u of U (normalized first); shape (k, d).

    ``sign`` is sign(v_j): +1 or -1, one for all rows or one per row. ``model`` (loss, sample_weight, bias) as
    in :func:`pulled_data`; with biases u is the direction of (w_j, b_j), shape (k, d + 1).
    """
    X, y = pulled_data(X, y, **model)
    U = unit_rows(U, X.shape[1])
    s = _signs(sign, U.shape[0])
    c = check_positive("c", c)
    g = _half_correlation(U, X, y)
    H = np.einsum("kd,kd->k", U, g)
    return (c * s)[:, None] * (g - H[:, None] * U)


def log_norm_rate(U: Any, X: Any, y: Any, *, sign: Any, c: float = 1.0, **model: Any) -> np.ndarray:
    """(log ||w||)' = c sign(v) H(u) for each row of U; shape (k,); ``model`` as in :func:`pulled_data`."""
    H = alignment_potential(U, X, y, **model)
    return check_positive("c", c) * _signs(sign, H.shape[0]) * H


# ------------------------------------------------------------------------------------------------------------
# Closed forms under orthogonal separability
# ------------------------------------------------------------------------------------------------------------


def _law_inputs(t: Any, rate: Any, psi0: Any, t0: Any) -> tuple[np.ndarray, float]:
    """Validated (t, phase) with phase = rate (t - t0) + artanh psi0."""
    t_arr = as_array("t", np.reshape(t, -1), ndim=1).reshape(np.shape(t))  # any shape, checked flat
    rate = check_positive("rate", rate)
    psi0 = check_in_range("psi0", psi0, -1.0, 1.0, closed="neither")
    t0 = check_in_range("t0", t0, -np.inf, np.inf, closed="neither")
    return rate * (t_arr - t0) + np.arctanh(psi0), float(np.arctanh(psi0))


def _log_cosh(z: Any) -> Any:
    """log cosh z = |z| + log1p(exp(-2|z|)) - log 2, without overflow for large |z|."""
    return np.abs(z) + np.log1p(np.exp(-2 * np.abs(z))) - np.log(2.0)


def tanh_alignment(t: Any, *, rate: float, psi0: float, t0: float = 0.0) -> np.ndarray:
    """psi(t) = tanh(rate (t - t0) + artanh psi0): the cosine of an aligning neuron with its class sum.

    Holds exactly while g(u) = x+/(2n), i.e. while a positive neuron is active on every positive point and on
    no negative one (``rate`` = lambda+); under orthogonal separability that pattern, once entered, is kept
    for ever. The negative class is the same with x-, lambda- and a negative neuron.
    """
    phase, _ = _law_inputs(t, rate, psi0, t0)
    return np.tanh(phase)


def aligned_norm(t: Any, *, rate: float, psi0: float, norm0: float, t0: float = 0.0) -> np.ndarray:
    """||w(t)|| = norm0 cosh(rate (t - t0) + artanh psi0) / cosh(artanh psi0), from (log||w||)' = rate psi.

    Valid under the same activation pattern as :func:`tanh_alignment` (there H(u) = psi ||x+|| / (2n)).
    """
    norm0 = check_positive("norm0", norm0)
    phase, a0 = _law_inputs(t, rate, psi0, t0)
    return np.exp(np.log(norm0) + _log_cosh(phase) - _log_cosh(a0))


def escape_time(*, rate: float, psi0: float, norm0: float, c: float = 1.0, t0: float = 0.0) -> float:
    """The time an aligning neuron's norm reaches 1/sqrt(c): the end of the small-norm phase.

    Threshold: at ||w|| = 1/sqrt(c) one balanced neuron contributes c v ||w|| = c ||w||^2 = 1 per unit of
    <u, x> to the output, so r_i = 1/2 stops being a good approximation (the data models have ||x|| ~ 1).
    Solving :func:`aligned_norm` for it gives exactly

        t_alpha = t0 + (arcosh(cosh(a0) / (sqrt(c) norm0)) - a0) / rate,         a0 = artanh psi0,

    and with norm0 = alpha (the init has ||w|| ~ alpha), as alpha -> 0,

        t_alpha = [log(1/alpha) - log(sqrt(c)) + log(2 / (1 + psi0))] / rate + o(1),

    whose leading term is the log(1/alpha) / lambda+ of docs/design.md section 2. Another O(1) threshold (e.g. the m aligned
    neurons together reaching |f| = 1) shifts t_alpha by O(1) / rate only. Requires sqrt(c) norm0 < 1.
    """
    c = check_positive("c", c)
    norm0 = check_positive("norm0", norm0)
    if np.sqrt(c) * norm0 >= 1.0:
        raise ParameterError(
            f"norm0 = {norm0!r} is out of range; allowed: (0, 1/sqrt(c)) = (0, {1 / np.sqrt(c)!r}) "
            "(already escaped)"
        )
    _, a0 = _law_inputs(0.0, rate, psi0, t0)
    # arcosh(e^L) = L + log(1 + sqrt(1 - e^-2L)), L = log(cosh(a0) / (sqrt(c) norm0)) > 0: no overflow
    level = _log_cosh(a0) - np.log(np.sqrt(c) * norm0)
    arcosh = level + np.log1p(np.sqrt(1.0 - np.exp(-2.0 * level)))
    return float(t0 + (arcosh - a0) / rate)


# ------------------------------------------------------------------------------------------------------------
# Extreme vectors
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtremeVector:
    """One attracting stationary point of the directional flow of one sign.

    Attributes:
        direction: the unit vector u*, shape (d,).
        sign: +1 (a positive neuron, climbs H) or -1 (a negative neuron, descends H).
        value: H(u*) = sign * ||P_S g_A|| (A the active points, S the sliding ones, P_S the projector onto the
            orthogonal complement of their span).
        basin: fraction of the starts of this sign that converged here.
        count: number of those starts.
        active: indices i with <u*, x_i> > 0.
        sliding: indices i with <u*, x_i> = 0 on which the flow slides (empty for a point inside a region).
        residual: the Filippov stationarity residual min over mu in [0, 1]^S of
            ||(I - u u^T)(g_A + sum_{i in S} mu_i y_i x_i / (2n))|| (0 up to rounding).
    """

    direction: np.ndarray
    sign: int
    value: float
    basin: float
    count: int
    active: tuple[int, ...]
    sliding: tuple[int, ...]
    residual: float


@dataclass(frozen=True)
class ExtremeVectorSearch:
    """Result of :func:`extreme_vectors`.

    Attributes:
        vectors: the extreme vectors, positive sign first, each sign by decreasing basin.
        n_starts: starts per sign.
        dead: per sign, the fraction of starts that ended with g = 0 (inactive on every point, or a sliding
            face where P_S g_A = 0): the stationary set H = 0, not an isolated point.
        unresolved: per sign, the number of starts not settled within ``max_events`` mode changes, or stopped
            on an unstable equilibrium (0 in a converged search).
        tol: the stationarity tolerance every returned vector meets (relative to the scale G of g).
    """

    vectors: tuple[ExtremeVector, ...]
    n_starts: int
    dead: dict[int, float]
    unresolved: dict[int, int]
    tol: float

    def of_sign(self, sign: int) -> tuple[ExtremeVector, ...]:
        """The extreme vectors of positive (+1) or negative (-1) neurons."""
        return tuple(e for e in self.vectors if e.sign == sign)


def extreme_vectors(
    X: Any,
    y: Any,
    *,
    n_starts: int = 256,
    seed: int = 0,
    starts: Any = None,
    tol: float = 1e-10,
    max_events: int | None = None,
    loss: str = "logistic",
    sample_weight: Any = None,
    bias: bool = False,
) -> ExtremeVectorSearch:
    """All attracting stationary points of the directional flow, for positive and for negative neurons.

    The flow is followed exactly (see :class:`DirectionFlow`: closed-form great-circle pieces between
    activation events, Filippov sliding with the minimal-norm selection) from ``n_starts`` directions uniform
    on the sphere (``np.random.default_rng(seed)``) or from the rows of ``starts``, for sign +1 (climbing H)
    and sign -1 (descending H). Each end point u* = s P_S g_A / ||P_S g_A|| is exact up to rounding; it is
    accepted when its Filippov stationarity residual is <= ``tol`` * G, G = mean |q_i| ||x_i|| / 2 (residuals
    measured here: ~1e-17). End points are deduplicated by their mode (A, S). The stationary points do not
    depend on c (c only rescales time). Starts that end where g = 0 count in ``dead``; starts needing more
    than ``max_events`` (default 20 n + 100) mode changes count in ``unresolved`` and are never silently
    dropped. ``loss``, ``sample_weight``, ``bias``: the model (:func:`theory.smallinit.pulled_data`: labels
    read as the pulls q_i, inputs as (x_i, 1) with biases, directions of (w_j, b_j)).
    """
    X, y = pulled_data(X, y, loss=loss, sample_weight=sample_weight, bias=bias)
    d = X.shape[1]
    tol = check_in_range("tol", tol, 0.0, 1e-3, closed="right")
    max_events = 20 * X.shape[0] + 100 if max_events is None else check_int("max_events", max_events)
    if starts is None:
        n_starts = check_int("n_starts", n_starts, minimum=1)
        starts = np.random.default_rng(check_int("seed", seed, minimum=0)).standard_normal((n_starts, d))
    U0 = unit_rows(starts, d, name="starts")
    total = U0.shape[0]
    vectors: list[ExtremeVector] = []
    dead: dict[int, float] = {}
    unresolved: dict[int, int] = {}
    for sign in (1, -1):
        flow = DirectionFlow(X, y, sign, tol=tol)
        rests = [flow.run(u, max_events) for u in U0]
        dead[sign] = sum(r.kind == "dead" for r in rests) / total
        unresolved[sign] = sum(r.kind == "unresolved" for r in rests)
        groups: dict[tuple, list[Rest]] = {}
        for rest in rests:
            if rest.kind == "point":
                groups.setdefault((rest.active, rest.sliding), []).append(rest)
        found = [
            ExtremeVector(
                direction=members[0].direction,
                sign=sign,
                value=members[0].value,
                basin=len(members) / total,
                count=len(members),
                active=key[0],
                sliding=key[1],
                residual=max(m.residual for m in members),
            )
            for key, members in groups.items()
        ]
        vectors.extend(sorted(found, key=lambda e: -e.count))
    return ExtremeVectorSearch(
        vectors=tuple(vectors), n_starts=total, dead=dead, unresolved=unresolved, tol=tol
    )


# ------------------------------------------------------------------------------------------------------------
# Symbolic forms for the documentation
# ------------------------------------------------------------------------------------------------------------


def equations() -> list[tuple[str, sp.Expr | sp.Eq, str]]:
    """The main equations of this module as sympy objects: (name, equation, one-sentence meaning)."""
    import sympy as sp  # for the documentation only: numerical callers do not pay for it

    t, t0, c, n = sp.symbols("t t_0 c n", positive=True)
    d = sp.Symbol("d", integer=True, positive=True)
    psi0 = sp.Symbol("psi_0", real=True)
    norm0, x_plus = sp.Symbol(r"\|w_{0}\|", positive=True), sp.Symbol(r"\|x_{+}\|", positive=True)
    lam, alpha = sp.symbols("lambda_+ alpha", positive=True)
    psi, w_norm = sp.Function("psi"), sp.Function(r"\|w\|")
    s, H = sp.Symbol("s"), sp.Symbol("H(u)")
    u, g = sp.MatrixSymbol("u", d, 1), sp.MatrixSymbol("g(u)", d, 1)
    phase = lam * (t - t0) + sp.atanh(psi0)
    return [
        (
            "direction flow",
            sp.Eq(sp.MatrixSymbol(r"\dot{u}", d, 1), c * s * (sp.Identity(d) - u * u.T) * g),
            "The direction of a balanced neuron, s = sign(v), follows the projected half-correlation g(u).",
        ),
        (
            "log-norm growth",
            sp.Eq(sp.Derivative(sp.log(w_norm(t)), t), c * s * H),
            "A balanced neuron's norm grows at rate c sign(v) H(u), H(u) = <u, g(u)>, while |f| << 1.",
        ),
        (
            "class rate",
            sp.Eq(lam, c * x_plus / (2 * n)),
            "The alignment rate of the positive class; the negative class has c ||x-|| / (2n).",
        ),
        (
            "tanh law",
            sp.Eq(psi(t), sp.tanh(phase)),
            "Cosine with x+ of a neuron active on just the positive points, under orthogonal separability.",
        ),
        (
            "aligned norm",
            sp.Eq(w_norm(t), norm0 * sp.cosh(phase) / sp.cosh(sp.atanh(psi0))),
            "The neuron's norm along the tanh law, the integral of (log ||w||)' = lambda+ psi.",
        ),
        (
            "escape time",
            sp.Eq(
                sp.Symbol("t_alpha"),
                t0 + (sp.acosh(sp.cosh(sp.atanh(psi0)) / (sp.sqrt(c) * norm0)) - sp.atanh(psi0)) / lam,
            ),
            "When the aligning neuron reaches norm 1/sqrt(c): then c ||w||^2 = 1 and r_i = 1/2 fails.",
        ),
        (
            "escape time, leading order",
            sp.Eq(sp.Symbol("t_alpha"), sp.log(1 / alpha) / lam),
            "As alpha -> 0 (||w_0|| = alpha), ||w|| ~ alpha e^{lambda+ t} is O(1) at log(1/alpha) / lambda+.",
        ),
    ]

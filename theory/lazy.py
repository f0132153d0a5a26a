"""The lazy limit (weak feature learning) of docs/design.md section 2: the tangent kernel and kernel gradient flow.

The tangent kernel of f(x) = c sum_j v_j relu(<w_j, x>) sums over parameters:

    K(x, x') = c^2 sum_j [ relu(<w_j, x>) relu(<w_j, x'>) + v_j^2 1[<w_j, x> > 0] 1[<w_j, x'> > 0] <x, x'> ].

For a balanced init (w_j = alpha z_j / sqrt(d), z_j ~ N(0, I_d), v_j^2 = ||w_j||^2; random_sign and
antisymmetric alike) its mean is, with theta = angle(x, x') and J(theta) = sin theta + (pi - theta) cos theta,

    K0(x, x') = m c^2 alpha^2 [ ||x|| ||x'|| J(theta) / (2 pi d) + <x, x'> (pi - theta) / (2 pi) ]

(E relu(<z, x>) relu(<z, x'>) = ||x|| ||x'|| J / (2 pi); ||z||^2 is independent of the direction of z, which
alone sets the indicators, and E ||z||^2 = d). Under random_sign the initial function f0 has mean 0 and the
covariance

    E f0(x) f0(x') = m c^2 alpha^4 (d + 2) / d^2 * ||x|| ||x'|| J(theta) / (2 pi)

(the signs kill the cross terms; E ||z||^4 = d (d + 2)). With hidden biases (b_j drawn like one more coordinate,
:func:`simulate.initialization.init_params`) the rows (w_j, b_j) ~ alpha N(0, I_(d+1) / d) act on x~ = (x, 1)
(:mod:`theory.augment`), and the same two expectations give, with theta~ = angle(x~, x~'),

    K0(x, x') = m c^2 alpha^2 [ ||x~|| ||x~'|| J(theta~) / (2 pi d) + ((d + 1) / d) <x~, x~'> (pi - theta~) / (2 pi) ]

(E ||z||^2 = d + 1 in d + 1 dimensions). With f(theta(0)) = 0 and alpha -> infinity, training
is the kernel gradient flow f' = -(1/n) K l'(y f) y in function space (:func:`kernel_gradient_flow`).

The closed forms are built once in sympy (:func:`equations`) and compiled with ``lambdify``, so the documented
and the computed formula are the same expression.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.integrate import solve_ivp

from fls.theory.augment import augment_inputs, augment_weights
from fls.theory.compiled import compile_field, validate_network
from fls.theory.losses import LOSSES, as_sample_weight, as_targets
from fls.theory.validation import ParameterError, as_array, check_choice, check_int, check_positive

if TYPE_CHECKING:
    import sympy as sp

# ------------------------------------------------------------------------------------------------------------
# Closed forms (sympy, compiled once)
# ------------------------------------------------------------------------------------------------------------


@cache
def _closed_forms() -> dict[str, Any]:
    """The symbols (m, c, alpha, d, ||x||, ||x'||, theta) and the sympy closed forms of this module.

    sympy is imported here, on first use of a closed form, so importing this module does not load it
    (docs/design.md section 1). J(theta) = sin theta + (pi - theta) cos theta is 2 pi E relu(<z, x>) relu(<z, x'>)
    for unit x, x' at angle theta.
    """
    import sympy as sp

    m, d = sp.symbols("m d", integer=True, positive=True)
    c, alpha = sp.symbols("c alpha", positive=True)
    norm1, norm2 = sp.symbols(r"\|x\| \|x'\|", nonnegative=True)
    theta = sp.Symbol("theta", nonnegative=True)
    arc_cosine = sp.sin(theta) + (sp.pi - theta) * sp.cos(theta)
    inner = norm1 * norm2 * sp.cos(theta)
    features = norm1 * norm2 * arc_cosine / (2 * sp.pi * d)
    gates = inner * (sp.pi - theta) / (2 * sp.pi)
    return {
        "symbols": (m, c, alpha, d, norm1, norm2, theta),
        "arc_cosine": arc_cosine,
        "tangent_kernel": m * c**2 * alpha**2 * (features + gates),
        # with biases: norms and angle of the augmented inputs (x, 1); d is the dimension of x
        "tangent_kernel_bias": m * c**2 * alpha**2 * (features + (d + 1) / d * gates),
        "covariance": m * c**2 * alpha**4 * (d + 2) / d**2 * norm1 * norm2 * arc_cosine / (2 * sp.pi),
    }


@cache
def _compiled(name: str) -> Callable[..., np.ndarray]:
    import sympy as sp

    forms = _closed_forms()
    return sp.lambdify(forms["symbols"], forms[name], modules="numpy")


def _pair_geometry(X1: Any, X2: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Norms (n1, 1), (1, n2) and angles (n1, n2) of all pairs; a zero vector gets angle 0 (terms are 0)."""
    X1 = as_array("X1", X1, ndim=2)
    X2 = as_array("X2", X2, ndim=2, shape=(None, X1.shape[1]))
    norm1 = np.linalg.norm(X1, axis=1)[:, None]
    norm2 = np.linalg.norm(X2, axis=1)[None, :]
    denominator = norm1 * norm2
    cosine = np.divide(X1 @ X2.T, denominator, out=np.ones_like(denominator), where=denominator > 0)
    return norm1, norm2, np.arccos(np.clip(cosine, -1.0, 1.0)), X1.shape[1]


def _kernel_closed_form(
    name: str, X1: Any, X2: Any, alpha: Any, width: Any, c: Any, bias: bool = False
) -> np.ndarray:
    alpha = check_positive("alpha", alpha)
    width = check_int("width", width, minimum=1)
    c = check_positive("c", c)
    if bias:
        X1 = augment_inputs(as_array("X1", X1, ndim=2))
        X2 = augment_inputs(as_array("X2", X2, ndim=2, shape=(None, X1.shape[1] - 1)))
    norm1, norm2, theta, d = _pair_geometry(X1, X2)
    return np.asarray(_compiled(name)(width, c, alpha, d - bias, norm1, norm2, theta), dtype=np.float64)


def tangent_kernel(
    X1: Any, X2: Any, *, alpha: float, width: int, c: float = 1.0, bias: bool = False
) -> np.ndarray:
    """The infinite-width mean tangent kernel K0 of a balanced init, shape (n1, n2) (module docstring).

        K0(x, x') = m c^2 alpha^2 [ ||x|| ||x'|| J(theta) / (2 pi d) + <x, x'> (pi - theta) / (2 pi) ]

    with m = ``width``, d the input dimension and theta = angle(x, x'); with hidden biases (``bias``) the form
    of the module docstring on x~ = (x, 1). The angle is arccos of the clipped cosine; the error this leaves in
    K0 is O(eps) because dJ/dtheta = -(pi - theta) sin theta vanishes at theta = 0.
    """
    if not isinstance(bias, bool):
        raise ParameterError(f"bias must be True or False, got {bias!r}")
    return _kernel_closed_form("tangent_kernel_bias" if bias else "tangent_kernel", X1, X2, alpha, width, c, bias)


def initial_function_covariance(X1: Any, X2: Any, *, alpha: float, width: int, c: float = 1.0) -> np.ndarray:
    """Covariance of the initial function f0 under ``random_sign`` init, shape (n1, n2) (module docstring).

    E f0(x) f0(x') = m c^2 alpha^4 (d + 2) / d^2 * ||x|| ||x'|| J(theta) / (2 pi)
    """
    return _kernel_closed_form("covariance", X1, X2, alpha, width, c)


def empirical_tangent_kernel(
    W: Any, v: Any, X1: Any, X2: Any, *, c: float = 1.0, b: Any = None
) -> np.ndarray:
    """The finite-width tangent kernel sum_theta df(x)/dtheta df(x')/dtheta of the network (W, v), (n1, n2);
    with hidden biases ``b`` (m,) the parameters are (W, b, v), i.e. the formula below on (x, 1) and (w_j, b_j).

    From the Jacobian in closed form (relu'(0) = 0): df/dv_j = c relu(<w_j, x>) and
    df/dw_j = c v_j 1[<w_j, x> > 0] x, so

        K = c^2 [ relu(X1 W^T) relu(X2 W^T)^T + ((1[X1 W^T > 0] v) (1[X2 W^T > 0] v)^T) * (X1 X2^T) ]:

    two (n, m) x (m, n) products, no loop over neurons.
    """
    if b is not None:
        X1 = augment_inputs(as_array("X1", X1, ndim=2))
        X2 = augment_inputs(as_array("X2", X2, ndim=2, shape=(None, X1.shape[1] - 1)))
        W = augment_weights(as_array("W", W, ndim=2, shape=(None, X1.shape[1] - 1)), b)
    W, v, X1, _, c = validate_network(W, v, X1, c=c)
    X2 = as_array("X2", X2, ndim=2, shape=(None, W.shape[1]))
    pre1, pre2 = X1 @ W.T, X2 @ W.T
    features = np.maximum(pre1, 0.0) @ np.maximum(pre2, 0.0).T
    gates = ((pre1 > 0) * v) @ ((pre2 > 0) * v).T
    return c**2 * (features + gates * (X1 @ X2.T))


# ------------------------------------------------------------------------------------------------------------
# Kernel gradient flow
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelFlowSolution:
    """Outcome of :func:`kernel_gradient_flow`.

    Attributes:
        status: ``"target_reached"`` (R <= target_risk at ``t_stop``), ``"not_reached"`` (t_max came
            first; the outputs are those at t_max and are not a result) or ``"failed"`` (the integrator
            failed; see message).
        message: why it stopped.
        reached: status == "target_reached".
        t_stop: the stopping time (the event time, located on the dense output to the solver's tolerance).
        f_train: train outputs at t_stop, shape (n,).
        f_test: test outputs at t_stop, shape (n_test,) (empty without a test kernel).
        coefficients: a(t_stop) with f_train = f0_train + K a and f_test = f0_test + K_test_train a.
        t: the solver's step times, shape (T,).
        risk: the training risk at those times, shape (T,).
        rhs_evals: right-hand-side evaluations.
    """

    status: str
    message: str
    reached: bool
    t_stop: float
    f_train: np.ndarray
    f_test: np.ndarray
    coefficients: np.ndarray
    t: np.ndarray
    risk: np.ndarray
    rhs_evals: int


def _psd_kernel(name: str, K: Any) -> np.ndarray:
    """A non-empty square kernel matrix, symmetric and positive semi-definite to 1e-6 of its scale (so a kernel
    computed in single precision passes), returned exactly symmetrized."""
    K = as_array(name, K, ndim=2)
    if K.shape[0] != K.shape[1] or K.shape[0] == 0:
        raise ParameterError(f"{name} must be a non-empty square matrix, got shape {K.shape}")
    if not np.allclose(K, K.T, rtol=0.0, atol=1e-6 * float(np.abs(K).max())):
        raise ParameterError(f"{name} must be symmetric (to 1e-6 of its largest entry)")
    K = (K + K.T) / 2
    eigenvalues = np.linalg.eigvalsh(K)
    if eigenvalues[0] < -1e-6 * np.abs(eigenvalues).max():
        raise ParameterError(
            f"{name} must be positive semi-definite; its smallest eigenvalue is {eigenvalues[0]!r} "
            f"(largest {eigenvalues[-1]!r})"
        )
    return K


def kernel_gradient_flow(
    K_train: Any,
    y: Any,
    *,
    K_test_train: Any = None,
    f0_train: Any = None,
    f0_test: Any = None,
    target_risk: float,
    t_max: float,
    loss: str = "logistic",
    rtol: float = 1e-10,
    atol: float = 1e-12,
    sample_weight: Any = None,
) -> KernelFlowSolution:
    """Kernel gradient flow of the mean loss in function space, stopped when the training risk hits a target.

        f' = -(1/n) K l'(y f) y,      f_test' = -(1/n) K_test_train l'(y f) y,

    integrated as a(t) in R^n with a' = -(1/n) l'(y f) y, f = f0_train + K a and
    f_test = f0_test + K_test_train a (one n-dimensional ODE serves train and test), by DOP853 at (``rtol``,
    ``atol``); the stopping rule tau = inf{t : R(t) <= target_risk} is a terminal event located on the dense
    output. With K positive semi-definite the risk is non-increasing: R' = -(1/n^2) s^T K s <= 0 with
    s = l'(y f) y. The sample factor -l'(y f) y and the loss come from the derived model
    (:func:`theory.compiled.compile_field`; its first call in a process derives them, a few seconds).

    Args:
        K_train: (n, n) kernel on the training set (symmetric, PSD; it is symmetrized exactly).
        y: (n,) labels in {-1, +1} for a margin loss, real targets for ``squared``.
        K_test_train: optional (n_test, n) kernel between test and training points.
        f0_train / f0_test: initial outputs (default 0: the antisymmetric init).
        target_risk: the stopping risk eps > 0.
        t_max: the time limit; not reaching eps by then gives status ``not_reached``.
        sample_weight: (n,) weights >= 0 of the risk (normalized to mean 1, :mod:`theory.losses`), or None.
    """
    K = _psd_kernel("K_train", K_train)
    n = K.shape[0]
    loss = check_choice("loss", loss, LOSSES)
    labels = as_targets("y", y, loss=loss, n=n)
    weights = as_sample_weight(sample_weight, n)
    K_test = (
        np.zeros((0, n))
        if K_test_train is None
        else as_array("K_test_train", K_test_train, ndim=2, shape=(None, n))
    )
    f0 = np.zeros(n) if f0_train is None else as_array("f0_train", f0_train, ndim=1, shape=(n,))
    if f0_test is not None and K_test_train is None:
        raise ParameterError(
            "f0_test needs K_test_train (the test outputs move through the test-train kernel)"
        )
    f0_t = (
        np.zeros(K_test.shape[0])
        if f0_test is None
        else as_array("f0_test", f0_test, ndim=1, shape=(len(K_test),))
    )
    target_risk = check_positive("target_risk", target_risk)
    t_max = check_positive("t_max", t_max)
    rtol, atol = check_positive("rtol", rtol), check_positive("atol", atol)
    field = compile_field(loss)

    def risk_of(a: np.ndarray) -> float:
        return float(field.losses(f0 + K @ a, labels, weights).mean())

    def rhs(_: float, a: np.ndarray) -> np.ndarray:
        return field.sample_factor(f0 + K @ a, labels, weights) / n

    def target_event(_: float, a: np.ndarray) -> float:
        return risk_of(a) - target_risk

    target_event.terminal = True  # type: ignore[attr-defined]
    target_event.direction = -1  # type: ignore[attr-defined]

    a0 = np.zeros(n)
    if risk_of(a0) <= target_risk:
        return _solution(
            "target_reached",
            "the initial risk is already <= target_risk",
            0.0,
            a0,
            f0,
            K,
            f0_t,
            K_test,
            np.zeros(1),
            np.array([risk_of(a0)]),
            0,
        )
    sol = solve_ivp(rhs, (0.0, t_max), a0, method="DOP853", rtol=rtol, atol=atol, events=target_event)
    risks = np.array([risk_of(a) for a in sol.y.T])
    if sol.status == -1:
        status, message, t_stop, a_stop = "failed", sol.message, float(sol.t[-1]), sol.y[:, -1]
    elif sol.status == 1:
        t_stop, a_stop = float(sol.t_events[0][0]), sol.y_events[0][0]
        status, message = "target_reached", f"risk reached {target_risk!r} at t = {t_stop!r}"
    else:
        status, t_stop, a_stop = "not_reached", t_max, sol.y[:, -1]
        message = f"risk {risks[-1]!r} > target {target_risk!r} at t_max = {t_max!r}"
    return _solution(status, message, t_stop, a_stop, f0, K, f0_t, K_test, sol.t, risks, sol.nfev)


def _solution(
    status: str,
    message: str,
    t_stop: float,
    a: np.ndarray,
    f0: np.ndarray,
    K: np.ndarray,
    f0_test: np.ndarray,
    K_test: np.ndarray,
    t: np.ndarray,
    risk: np.ndarray,
    rhs_evals: int,
) -> KernelFlowSolution:
    return KernelFlowSolution(
        status=status,
        message=message,
        reached=status == "target_reached",
        t_stop=t_stop,
        f_train=f0 + K @ a,
        f_test=f0_test + K_test @ a,
        coefficients=np.asarray(a, dtype=np.float64).copy(),
        t=np.asarray(t, dtype=np.float64),
        risk=risk,
        rhs_evals=int(rhs_evals),
    )


# ------------------------------------------------------------------------------------------------------------
# Symbolic forms for the documentation
# ------------------------------------------------------------------------------------------------------------


def equations() -> list[tuple[str, sp.Expr | sp.Eq, str]]:
    """The main equations of this module as sympy objects: (name, equation, one-sentence meaning)."""
    import sympy as sp

    forms = _closed_forms()
    theta = forms["symbols"][-1]
    n = sp.Symbol("n", integer=True, positive=True)
    x, x2 = sp.symbols("x x'")
    return [
        (
            "arc-cosine factor",
            sp.Eq(sp.Function("J")(theta), forms["arc_cosine"]),
            "2 pi E relu(<z, x>) relu(<z, x'>) for unit x, x' at angle theta and z ~ N(0, I).",
        ),
        (
            "tangent kernel K0",
            sp.Eq(sp.Function("K_0")(x, x2), forms["tangent_kernel"]),
            "Mean tangent kernel of a width-m balanced init at scale alpha (second- plus first-layer part).",
        ),
        (
            "tangent kernel K0 with hidden biases",
            sp.Eq(sp.Function("K_0")(x, x2), forms["tangent_kernel_bias"]),
            "The same with biases b_j drawn like one more coordinate; norms and angle are those of (x, 1), (x', 1).",
        ),
        (
            "f0 covariance",
            sp.Eq(sp.Function("Cov")(sp.Function("f_0")(x), sp.Function("f_0")(x2)), forms["covariance"]),
            "Covariance of f0 under random_sign init, the source of over-fitting at small FLS.",
        ),
        (
            "kernel gradient flow",
            sp.Eq(
                sp.MatrixSymbol(r"\dot{f}", n, 1),
                -sp.MatrixSymbol("K", n, n) * sp.MatrixSymbol(r"l'(y \odot f) \odot y", n, 1) / n,
            ),
            "The lazy-limit training dynamics of the n training outputs under the tangent kernel K.",
        ),
    ]

"""Kernel methods as peers of the network (docs/design.md section 4, ``kernel``): the same data, the same stopping rule.

A kernel predictor is f(x) = K(x, X) a, fitted on the training set (X, y). Kernels (:data:`KERNELS`), for the
network f(x) = c sum_j v_j relu(<w_j, x>) with parameters (W, v) at init or at the stopping time:

- ``tangent``: the empirical tangent kernel sum_theta df(x)/dtheta df(x')/dtheta (:func:`theory.lazy.
  empirical_tangent_kernel`); at the stopping time this is the *after-kernel* of the trained network;
- ``conjugate``: the kernel of the last hidden layer, Phi(x) Phi(x')^T with Phi(x) = relu(W x) (m features);
- ``tangent_closed``: the infinite-width mean of ``tangent`` at init (:func:`theory.lazy.tangent_kernel`);
- ``conjugate_closed``: the infinite-width mean of ``conjugate`` at init, the arc-cosine kernel of degree 1,

      E sum_j relu(<w_j, x>) relu(<w_j, x'>) = m alpha^2 ||x|| ||x'|| J(theta) / (2 pi d),
      J(theta) = sin theta + (pi - theta) cos theta,   w_j ~ N(0, alpha^2 I_d / d)

  (:func:`conjugate_kernel_closed`; it is the f0 covariance of :func:`theory.lazy.initial_function_covariance`
  divided by c^2 alpha^2 (d + 2) / d: under random_sign v_j^2 = ||w_j||^2, and for z ~ N(0, I_d)
  E ||z||^2 relu(<z, x>) relu(<z, x'>) = (d + 2) E relu(<z, x>) relu(<z, x'>), the product being 2-homogeneous).

Fits (each returns a :class:`simulate.result.RunResult`, engine ``kernel-ridge`` or ``kernel-flow``):

- :func:`kernel_regression`: kernel ridge(less) regression a = (K + lambda I)^{-1} y by Cholesky. K is only
  positive semi-definite (a finite network's kernel has rank at most m (d + 1); the conjugate kernel at most m),
  so a jitter delta I is added where needed: delta = 0, then 1e-10, 1e-9, ... 1e-5 times the mean diagonal s,
  the first for which the factorization exists and its smallest pivot squared is at least
  :data:`PIVOT_FLOOR` s. A smaller pivot means cond(K) beyond ~1e10: the rounding noise of a computed K in its
  null space (~2^-52 n s) would then reach the fit amplified by 1 / pivot^2, and Cholesky can succeed on such a
  matrix with an answer that is noise. The result reports the jitter (``info["jitter"]``, absolute, and
  ``info["relative_jitter"]``). As delta -> 0 the fit tends to the minimum-norm least-squares fit (the ridgeless
  limit); with delta = 1e-10 s it differs from it by O(delta / sigma^2), sigma the smallest nonzero eigenvalue.
- :func:`kernel_logistic_regression`: kernel gradient flow of the logistic (or exponential) loss,
  f' = -(1/n) K l'(y f) y, stopped at the network's own rule tau_eps = inf{t : R(t) <= eps}
  (:func:`theory.lazy.kernel_gradient_flow`). The kernel is divided by its mean diagonal first: scaling K by s
  only rescales time by 1/s, so the stopped predictor is the same and one t_max serves every kernel.

Deep networks: :func:`deep_tangent_kernel` forms the empirical tangent kernel of any torch module with one output
from per-sample Jacobians (``torch.func.jacrev`` under ``vmap``).

Precision: float64 throughout. A ridgeless fit of a positive definite K interpolates its training targets to the
accuracy of the solve (relative residual ~ cond(K) 2^-52, plus the jitter's share where one was needed; reported
as ``info["train_residual"]``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.linalg

from fls.simulate.result import RunResult
from fls.theory.augment import augment_inputs, augment_weights
from fls.theory.lazy import (
    empirical_tangent_kernel,
    initial_function_covariance,
    kernel_gradient_flow,
    tangent_kernel,
)
from fls.theory.losses import LOSSES
from fls.theory.validation import (
    ParameterError,
    as_array,
    as_labels,
    check_choice,
    check_int,
    check_positive,
)

#: Kernels :func:`kernel_matrices` builds (module docstring).
KERNELS = ("tangent", "conjugate", "tangent_closed", "conjugate_closed")

#: Smallest accepted pivot^2 of the Cholesky factor, relative to the mean diagonal of K (module docstring).
PIVOT_FLOOR = 1e-10

#: Jitters tried in turn, relative to the mean diagonal of K (module docstring).
JITTER_LADDER = (0.0, *(10.0**p for p in range(-10, -4)))


def conjugate_kernel(W: Any, X1: Any, X2: Any) -> np.ndarray:
    """The empirical conjugate kernel relu(X1 W^T) relu(X2 W^T)^T of the hidden layer, shape (n1, n2)."""
    W = as_array("W", W, ndim=2)
    X1 = as_array("X1", X1, ndim=2, shape=(None, W.shape[1]))
    X2 = as_array("X2", X2, ndim=2, shape=(None, W.shape[1]))
    return np.maximum(X1 @ W.T, 0.0) @ np.maximum(X2 @ W.T, 0.0).T


def conjugate_kernel_closed(X1: Any, X2: Any, *, alpha: float, width: int = 1) -> np.ndarray:
    """The infinite-width mean of :func:`conjugate_kernel` at init, m alpha^2 ||x|| ||x'|| J(theta) / (2 pi d).

    Computed as the closed-form f0 covariance m c^2 alpha^4 (d + 2) / d^2 ||x|| ||x'|| J / (2 pi) of
    :func:`theory.lazy.initial_function_covariance` (at c = 1) times d / (alpha^2 (d + 2)): one formula in theory/.
    """
    covariance = initial_function_covariance(X1, X2, alpha=alpha, width=width)
    d = np.shape(X1)[1]
    return covariance * d / (float(alpha) ** 2 * (d + 2))


def kernel_matrices(
    kernel: str,
    X: Any,
    X_test: Any,
    *,
    W: Any = None,
    v: Any = None,
    c: float = 1.0,
    alpha: float | None = None,
    b: Any = None,
    bias: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(K(X, X), K(X_test, X)) for ``kernel`` in :data:`KERNELS`.

    The empirical kernels need the network's parameters (``W`` and, for ``tangent``, ``v`` and ``c``; a network
    with hidden biases also ``b``); the closed forms need the init scale ``alpha`` and take the width from ``W``
    when it is given (else 1: a ridgeless fit does not depend on the kernel's scale). ``bias`` (or a given ``b``)
    selects the networks with hidden biases: the kernels of the bias-free network on (x, 1) (the tangent closed
    form of :func:`theory.lazy.tangent_kernel` with ``bias``; ``conjugate_closed`` has no biased form).
    """
    kernel = check_choice("kernel", kernel, KERNELS)
    bias = bias or b is not None
    if bias and kernel == "conjugate_closed":
        raise ParameterError("kernel = 'conjugate_closed' has no form with hidden biases; allowed: bias = False")
    if bias and kernel == "conjugate":
        if W is None:
            raise ParameterError("kernel = 'conjugate' needs the network's parameters; allowed: W and b given")
        if b is None:
            raise ParameterError("kernel = 'conjugate' with bias needs the hidden biases; allowed: b given")
        W, X, X_test = augment_weights(W, b), augment_inputs(X), augment_inputs(X_test)
    if kernel in ("tangent", "conjugate"):
        if W is None or (kernel == "tangent" and v is None):
            raise ParameterError(
                f"kernel = {kernel!r} needs the network's parameters; allowed: W and v given"
            )
        if kernel == "tangent":
            return (
                empirical_tangent_kernel(W, v, X, X, c=c, b=b),
                empirical_tangent_kernel(W, v, X_test, X, c=c, b=b),
            )
        return conjugate_kernel(W, X, X), conjugate_kernel(W, X_test, X)
    if alpha is None:
        raise ParameterError(f"kernel = {kernel!r} needs the init scale; allowed: alpha > 0")
    width = 1 if W is None else np.shape(W)[0]
    if kernel == "tangent_closed":
        return (
            tangent_kernel(X, X, alpha=alpha, width=width, c=c, bias=bias),
            tangent_kernel(X_test, X, alpha=alpha, width=width, c=c, bias=bias),
        )
    return (
        conjugate_kernel_closed(X, X, alpha=alpha, width=width),
        conjugate_kernel_closed(X_test, X, alpha=alpha, width=width),
    )


def _square_kernel(K_train: Any, K_test_train: Any) -> tuple[np.ndarray, np.ndarray]:
    """K_train square and symmetric (to 1e-10 of its largest entry), K_test_train with as many columns."""
    K = as_array("K_train", K_train, ndim=2)
    if K.shape[0] != K.shape[1]:
        raise ParameterError(f"K_train must be square, got shape {K.shape}")
    size = float(np.abs(K).max()) if K.size else 0.0
    if not np.allclose(K, K.T, rtol=0.0, atol=1e-10 * size):
        raise ParameterError("K_train must be symmetric (to 1e-10 of its largest entry)")
    return K, as_array("K_test_train", K_test_train, ndim=2, shape=(None, K.shape[0]))


def _empty_parameters() -> tuple[np.ndarray, np.ndarray]:
    """A kernel predictor has no network parameters: W, v of a result are empty ((0, 0) and (0,))."""
    return np.zeros((0, 0)), np.zeros(0)


def kernel_regression(K_train: Any, y: Any, K_test_train: Any, *, ridge: float = 0.0) -> RunResult:
    """Kernel ridge(less) regression a = (K + ridge I)^{-1} y by Cholesky, with the jitter that was needed.

    Args:
        K_train: (n, n) symmetric positive semi-definite kernel on the training points.
        y: (n,) real targets (labels in {-1, +1} are targets too: the squared loss on them).
        K_test_train: (n_test, n) kernel between test and training points.
        ridge: lambda >= 0 added to the diagonal (0: ridgeless).

    Returns a result with status ``target_reached`` (the exact solution) or ``failed`` (no jitter of
    :data:`JITTER_LADDER` made K + ridge I factor with an accepted pivot), engine ``kernel-ridge``,
    ``risk`` = [mean (f - y)^2 / 2] on the training set, the fit's values ``f_train`` and ``f_test``, and
    ``info`` with ``coefficients``, ``jitter``, ``relative_jitter``, ``train_residual`` (||(K + ridge I) a - y|| / ||y||: the
    residual of the unjittered system).
    """
    start = time.perf_counter()
    K, K_test = _square_kernel(K_train, K_test_train)
    targets = as_array("y", y, ndim=1, shape=(K.shape[0],))
    ridge = check_positive("ridge", ridge, allow_zero=True)
    scale = float(np.mean(np.diag(K))) if K.size else 0.0
    W, v = _empty_parameters()
    for relative in JITTER_LADDER:
        jitter = relative * scale
        try:
            factor = scipy.linalg.cho_factor(K + (ridge + jitter) * np.eye(K.shape[0]), lower=True)
        except np.linalg.LinAlgError:
            continue
        if relative < PIVOT_FLOOR and np.min(np.diag(factor[0])) ** 2 < PIVOT_FLOOR * scale:
            continue
        a = scipy.linalg.cho_solve(factor, targets)
        f_train = K @ a
        residual = float(np.linalg.norm(f_train + ridge * a - targets) / max(np.linalg.norm(targets), 1e-300))
        risk = float(np.mean((f_train - targets) ** 2) / 2)
        return RunResult(
            status="target_reached",
            message=f"exact solve, ridge {ridge!r}, jitter {jitter!r}",
            engine="kernel-ridge",
            t_stop=0.0,
            W=W,
            v=v,
            t=np.zeros(1),
            risk=np.array([risk]),
            wall_time=time.perf_counter() - start,
            f_train=f_train,
            f_test=K_test @ a,
            info={
                "coefficients": a,
                "ridge": ridge,
                "jitter": jitter,
                "relative_jitter": relative,
                "train_residual": residual,
            },
        )
    return RunResult(
        status="failed",
        message=f"K + ridge I did not factor with jitter up to {JITTER_LADDER[-1]!r} x mean diag",
        engine="kernel-ridge",
        t_stop=0.0,
        W=W,
        v=v,
        t=np.zeros(0),
        risk=np.zeros(0),
        wall_time=time.perf_counter() - start,
        info={"jitter": float("nan"), "relative_jitter": float("nan")},
    )


def kernel_logistic_regression(
    K_train: Any,
    y: Any,
    K_test_train: Any,
    *,
    target_risk: float,
    t_max: float = 1e6,
    loss: str = "logistic",
    sample_weight: Any = None,
) -> RunResult:
    """Kernel gradient flow of ``loss`` on labels y in {-1, +1}, stopped at R <= target_risk (the network's rule).

    K is divided by its mean diagonal s before the flow (module docstring); ``t`` and ``t_stop`` are in that
    normalized time (gradient-flow time with the unnormalized kernel is t / s). Status ``target_reached``,
    ``not_reached`` (t_max came first; not a result) or ``failed``; engine ``kernel-flow``; the fit's values
    ``f_train`` and ``f_test``; ``info`` holds ``coefficients`` (of the normalized kernel) and ``kernel_scale`` = s.
    ``sample_weight`` (n,) >= 0 weighs the risk (normalized to mean 1, :mod:`theory.losses`). For real targets
    and the squared loss, use :func:`theory.lazy.kernel_gradient_flow` (any loss) or :func:`kernel_regression`.
    """
    start = time.perf_counter()
    K, K_test = _square_kernel(K_train, K_test_train)
    labels = as_labels("y", y, n=K.shape[0])
    loss = check_choice("loss", loss, tuple(name for name in LOSSES if name != "squared"))
    scale = float(np.mean(np.diag(K)))
    if not scale > 0:
        raise ParameterError("K_train has a zero diagonal; allowed: a kernel with some nonzero feature")
    solution = kernel_gradient_flow(
        (K + K.T) / (2 * scale),
        labels,
        K_test_train=K_test / scale,
        target_risk=target_risk,
        t_max=t_max,
        loss=loss,
        sample_weight=sample_weight,
    )
    W, v = _empty_parameters()
    return RunResult(
        status=solution.status,
        message=solution.message,
        engine="kernel-flow",
        t_stop=solution.t_stop,
        W=W,
        v=v,
        t=solution.t,
        risk=solution.risk,
        rhs_evals=solution.rhs_evals,
        wall_time=time.perf_counter() - start,
        f_train=solution.f_train,
        f_test=solution.f_test,
        info={
            "coefficients": solution.coefficients,
            "kernel_scale": scale,
            "loss": loss,
        },
    )


def deep_tangent_kernel(model: Any, X1: Any, X2: Any, *, c: float = 1.0, chunk: int = 256) -> np.ndarray:
    """The empirical tangent kernel c^2 J(X1) J(X2)^T of a torch module with one output, shape (n1, n2).

    J(X) is the (n, P) Jacobian of the outputs with respect to all P parameters, one row per sample from
    ``torch.func.jacrev`` of ``functional_call`` under ``vmap`` (``chunk`` samples at a time), in the module's
    dtype. For a bias-free two-layer ReLU module this equals :func:`theory.lazy.empirical_tangent_kernel`.
    """
    import torch
    from torch.func import functional_call, jacrev, vmap

    c = check_positive("c", c)
    chunk = check_int("chunk", chunk)
    params = {name: p.detach() for name, p in model.named_parameters()}
    dtype = next(iter(params.values())).dtype
    X1 = as_array("X1", X1, ndim=2)
    X2 = as_array("X2", X2, ndim=2, shape=(None, X1.shape[1]))

    def output(p: dict[str, Any], x: Any) -> Any:
        return functional_call(model, p, (x[None, :],)).reshape(())

    per_sample = vmap(jacrev(output), in_dims=(None, 0))

    def jacobian(X: np.ndarray) -> Any:
        rows = []
        for i in range(0, len(X), chunk):
            grads = per_sample(params, torch.as_tensor(X[i : i + chunk], dtype=dtype))
            rows.append(torch.cat([g.reshape(g.shape[0], -1) for g in grads.values()], dim=1))
        return torch.cat(rows)

    J1 = jacobian(X1)
    J2 = J1 if X2 is X1 else jacobian(X2)
    return (c**2 * (J1 @ J2.T)).detach().cpu().numpy().astype(np.float64)

"""The theory's numbers for the runs of a sweep (docs/design.md section 5, "The layers"), computed from the
same data, initializations and stop rule.

Three limits of docs/design.md section 2, each turned into numbers a run can be compared with:

- small alpha (strong feature learning): while |f| << 1 every balanced neuron follows the directional flow
  u' = c sign(v) (I - u u^T) g(u), (log ||w||)' = c sign(v) H(u) (:mod:`theory.smallinit`), towards an extreme
  vector; the small-norm phase ends at the escape time of :func:`theory.smallinit.escape_time` with rate
  lambda+ and the positive group's norm alpha sqrt(m / 2) (:func:`predicted_escape_time`); the extreme vector
  reached from the class sum x+ gives the predicted Psi (:func:`small_alpha_limit`). The network reduced to
  its extreme vectors, whose test error is claim (d)'s small-alpha prediction, is :mod:`compare.extremenet`.
- large alpha (lazy): kernel gradient flow of the logistic loss with the infinite-width tangent kernel K0 of
  the run's init scheme (:func:`theory.schemekernel.scheme_tangent_kernel`: the balanced schemes' closed form,
  the ``gaussian`` scheme's with a first-layer term 1/d as large; a scheme without a derived K0 is refused
  with the reason), started from the network's own initial function f0 (zero for the
  antisymmetric init, a random function for random_sign), stopped at the same target risk
  (:func:`lazy_limit`).
- boundaries in the (FLS, second axis) plane (:func:`boundaries`): alignment completes before escape when the
  escape time exceeds the time the tanh law needs to reach Psi = :data:`compare.regimes.ALIGNED_PSI`; with
  psi0 = 0 that is arcosh(1 / (sqrt(c) alpha sqrt(m/2))) >= artanh(ALIGNED_PSI), i.e. FLS >= (m / 2) / (1 -
  ALIGNED_PSI^2) (the rate lambda+ cancels). The initial function is of order one, and over-fitting through f0
  sets in, when its standard deviation on the training points reaches 1
  (:func:`theory.lazy.initial_function_covariance`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fls.compare import metrics
from fls.compare.regimes import ALIGNED_PSI
from fls.simulate.data import Dataset
from fls.simulate.result import RunResult
from fls.theory.augment import augment_inputs, augment_weights
from fls.theory.lazy import initial_function_covariance, kernel_gradient_flow
from fls.theory.schemekernel import scheme_tangent_kernel
from fls.theory.smallinit import (
    alignment_rates,
    class_sums,
    escape_time,
    extreme_vectors,
)
from fls.theory.validation import check_in_range, check_positive

#: Standard deviation of f0 on the training points at the over-fitting boundary.
F0_SCALE = 1.0


#: Relative tolerance of the kernel flow (the test errors it feeds are Monte-Carlo estimates, SE ~ 3e-3).
LAZY_RTOL = 1e-8


def unit_tangent_kernels(
    dataset: Dataset, *, width: int, c: float, scheme: str, bias: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(K0(train, train), K0(test, train)) at alpha = 1 of the init ``scheme`` (of the network with hidden
    biases when ``bias``; :func:`theory.schemekernel.scheme_tangent_kernel`, which refuses a scheme without a
    derived K0)."""
    return (
        scheme_tangent_kernel(dataset.X, dataset.X, alpha=1.0, width=width, c=c, scheme=scheme, bias=bias),
        scheme_tangent_kernel(
            dataset.X_test, dataset.X, alpha=1.0, width=width, c=c, scheme=scheme, bias=bias
        ),
    )


def lazy_limit(
    dataset: Dataset,
    W0: np.ndarray,
    v0: np.ndarray,
    *,
    alpha: float,
    c: float,
    eps: float,
    t_max: float,
    scheme: str,
    loss: str = "logistic",
    unit_kernels: tuple[np.ndarray, np.ndarray] | None = None,
    sample_weight: np.ndarray | None = None,
    b0: np.ndarray | None = None,
) -> RunResult:
    """Kernel gradient flow with K0 of the init ``scheme`` that drew (W0, v0) (width m = len(v0), scale alpha,
    multiplier c) from f0 = the network at (W0, v0), stopped at training risk eps; f_test = f0_test +
    K0(test, train) a(tau) (theory.lazy).

    The result record of every engine (engine ``kernel``): the flow's status, message, stopping time, risk
    over time and rhs evaluations, and its predictions ``f_train``, ``f_test``; W and v are empty (a kernel
    predictor has no network). Its test error: :func:`lazy_test_error`.

    K0 is proportional to alpha^2, so a caller with several alphas may pass ``unit_kernels`` = (K0(train,
    train), K0(test, train)) at alpha = 1 (same width, c and scheme) to skip computing them again. ``sample_weight``
    (n,) or None weighs the kernel flow's risk like the network's. Hidden biases b0 (m,) make K0 and f0 those of
    the network with biases (the bias-free ones on inputs (x, 1), :mod:`theory.augment`)."""
    if unit_kernels is None:
        unit_kernels = unit_tangent_kernels(dataset, width=len(v0), c=c, scheme=scheme, bias=b0 is not None)
    K, K_test = (alpha**2 * kernel for kernel in unit_kernels)
    rows, X, X_test = W0, dataset.X, dataset.X_test
    if b0 is not None:
        rows, X, X_test = augment_weights(W0, b0), augment_inputs(X), augment_inputs(X_test)
    flow = kernel_gradient_flow(
        K,
        dataset.y,
        K_test_train=K_test,
        f0_train=metrics.network_outputs(rows, v0, X, c),
        f0_test=metrics.network_outputs(rows, v0, X_test, c),
        target_risk=eps,
        t_max=t_max,
        loss=loss,
        sample_weight=sample_weight,
        rtol=LAZY_RTOL,
        atol=LAZY_RTOL * 1e-2,
    )
    return RunResult(
        status=flow.status,
        message=flow.message,
        engine="kernel",
        t_stop=flow.t_stop,
        W=np.zeros((0, dataset.d)),
        v=np.zeros(0),
        t=flow.t,
        risk=flow.risk,
        rhs_evals=flow.rhs_evals,
        f_train=flow.f_train,
        f_test=flow.f_test,
    )


def lazy_test_error(result: RunResult, dataset: Dataset) -> tuple[float, float]:
    """(error rate, its standard error) of a lazy-limit result on the test set; NaN when it has no result."""
    if not result.ok:
        return float("nan"), float("nan")
    return metrics.error_rate(result.f_test, dataset.y_test)


@dataclass(frozen=True)
class SmallAlphaLimit:
    """Where the directional flow takes the class sums, and the alignment rate.

    Attributes:
        u_plus: unit extreme vector a positive neuron reaches from x+ (NaN when the flow ends on a dead
            face or does not settle).
        psi: cos(u+, x+), the predicted Psi at small alpha.
        cos_bayes: cos(u+, s) with s the Bayes direction (NaN without one).
        lambda_plus: c ||x+|| / (2n), the alignment rate of the positive class.
    """

    u_plus: np.ndarray
    psi: float
    cos_bayes: float
    lambda_plus: float


def small_alpha_limit(dataset: Dataset, *, c: float = 1.0) -> SmallAlphaLimit:
    """The exact (event-driven) directional flow of a positive neuron started at x+ (theory.smallinit)."""
    x_plus, _ = class_sums(dataset.X, dataset.y)
    found = extreme_vectors(dataset.X, dataset.y, starts=x_plus[None, :]).of_sign(1)
    u_plus = found[0].direction if found else np.full(dataset.d, np.nan)
    bayes = dataset.bayes_direction
    return SmallAlphaLimit(
        u_plus=u_plus,
        psi=metrics.cosine(u_plus, x_plus),
        cos_bayes=metrics.cosine(u_plus, bayes) if bayes is not None else float("nan"),
        lambda_plus=alignment_rates(dataset.X, dataset.y, c=c)[0],
    )


def predicted_escape_time(lambda_plus: float, *, alpha: float, width: int, c: float = 1.0) -> float:
    """End of the small-norm phase for the positive group (norm alpha sqrt(m/2), psi0 = 0); NaN when the group
    starts already escaped (sqrt(c) alpha sqrt(m/2) >= 1)."""
    norm0 = check_positive("alpha", alpha) * np.sqrt(width / 2)
    if np.sqrt(c) * norm0 >= 1.0:
        return float("nan")
    return escape_time(rate=lambda_plus, psi0=0.0, norm0=norm0, c=c)


def alignment_boundary_fls(width: int, *, aligned_psi: float = ALIGNED_PSI) -> float:
    """FLS above which the tanh law reaches Psi = aligned_psi before the escape time (module docstring)."""
    aligned_psi = check_in_range("aligned_psi", aligned_psi, 0.0, 1.0, closed="neither")
    return (width / 2) / (1.0 - aligned_psi**2)


def f0_boundary_fls(X: np.ndarray, *, width: int, scale: float = F0_SCALE) -> float:
    """FLS below which the initial function's standard deviation on the rows of X exceeds ``scale``.

    Var f0(x) is proportional to c^2 alpha^4 = 1 / FLS^2 (theory.lazy.initial_function_covariance), so with V1
    the mean variance at FLS = 1 the boundary is FLS = sqrt(V1) / scale.
    """
    variance = np.diag(initial_function_covariance(X, X, alpha=1.0, width=width, c=1.0)).mean()
    return float(np.sqrt(variance) / check_positive("scale", scale))


def boundaries(dataset: Dataset, *, width: int) -> dict[str, float]:
    """The predicted regime boundaries, as FLS values, for one data set and width (module docstring)."""
    return {"alignment": alignment_boundary_fls(width), "f0": f0_boundary_fls(dataset.X, width=width)}

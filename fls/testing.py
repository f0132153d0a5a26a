"""Property tests of derivations: hypothesis strategies for models, and checkers against independent references.

A theorist who derives something about the two-layer network f(x) = c sum_j v_j relu(<w_j, x> + b_j) (a field,
a kernel, a conserved quantity) can hold it against references that share no code with the derivation
(docs/testing.md shows one in a few lines; the project's own tests use this module too):

- :func:`problems`: a hypothesis strategy for whole models: data (labels or real targets, as the loss allows),
  parameters, output multiplier, loss, hidden biases or not, sample weights or not;
- :func:`assert_field_matches_autograd`: a vector field against torch autograd of the weighted risk, written
  here directly in torch (relative error <= ``rtol``, default 1e-10);
- :func:`assert_field_matches_mpmath`: the same against 40-digit central differences of the risk in mpmath
  (h = 1e-15: truncation ~h^2 and rounding ~1e-40 / h, both far below the default 1e-10; valid off the
  activation surfaces, so problems with a pre-activation within 1e-6 of 0 are skipped by the caller);
- :func:`assert_kernel_matches_monte_carlo`: a closed-form kernel against the empirical tangent kernel of a wide
  network drawn by :func:`simulate.initialization.init_params`, within 5 Monte-Carlo standard errors (plus
  1e-12 of the terms for rounding);
- :func:`assert_trajectory_matches_flow`: a predicted trajectory against the exact flow
  (:func:`simulate.flow.integrate_flow`), to ``atol`` at the given times.

Every checker raises AssertionError with the largest discrepancy when the derivation is wrong. The module needs
hypothesis (the ``dev`` extra) and, for the autograd checker, torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
from hypothesis import strategies as st

from fls.theory.losses import LOSSES, TARGET_KINDS, as_sample_weight


@dataclass(frozen=True)
class Problem:
    """One model: parameters (W (m, d), v (m,), b (m,) or None), data (X (n, d), y (n,)), c, loss, weights."""

    W: np.ndarray
    v: np.ndarray
    b: np.ndarray | None
    X: np.ndarray
    y: np.ndarray
    c: float
    loss: str
    sample_weight: np.ndarray | None

    def options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`theory.vector_field` and the engines for this model."""
        return {"c": self.c, "loss": self.loss, "b": self.b, "sample_weight": self.sample_weight}


@st.composite
def problems(
    draw: Callable[..., Any],
    *,
    max_m: int = 8,
    max_d: int = 6,
    max_n: int = 10,
    losses: Sequence[str] = LOSSES,
    bias: bool | None = None,
    weighted: bool | None = None,
) -> Problem:
    """A :class:`Problem` with every option drawn: the loss from ``losses``; labels +-1 for a margin loss, real
    targets N(0, 1) for ``squared``; hidden biases and sample weights (uniform in [0, 3), one of them 1 so the sum
    is positive) each drawn unless ``bias`` / ``weighted`` fix them. Parameters are Gaussian at the scale of a
    unit-variance network, from a drawn numpy seed."""
    m, d, n = draw(st.integers(1, max_m)), draw(st.integers(1, max_d)), draw(st.integers(1, max_n))
    loss = draw(st.sampled_from(tuple(losses)))
    with_bias = draw(st.booleans()) if bias is None else bias
    with_weights = draw(st.booleans()) if weighted is None else weighted
    c = draw(st.floats(0.1, 5.0))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    W = rng.normal(size=(m, d)) / np.sqrt(d)
    v = rng.normal(size=m) / np.sqrt(m)
    b = rng.normal(size=m) / np.sqrt(d) if with_bias else None
    X = rng.normal(size=(n, d))
    y = rng.normal(size=n) if TARGET_KINDS[loss] == "real" else rng.choice([-1.0, 1.0], size=n)
    weights = None
    if with_weights:
        weights = rng.uniform(0.0, 3.0, size=n)
        weights[rng.integers(n)] = 1.0
    return Problem(W, v, b, X, y, c, loss, weights)


def torch_loss(name: str, f: Any, y: Any) -> Any:
    """The loss l(f, y) written directly in torch (independent of the derivation), elementwise."""
    import torch

    if name == "logistic":
        return torch.logaddexp(torch.zeros_like(f), -y * f)
    if name == "exponential":
        return torch.exp(-y * f)
    return 0.5 * (f - y) ** 2


#: The same losses in mpmath.
MP_LOSSES: dict[str, Callable[[Any, Any], Any]] = {
    "logistic": lambda f, y: mpmath.log1p(mpmath.exp(-y * f)),
    "exponential": lambda f, y: mpmath.exp(-y * f),
    "squared": lambda f, y: (f - y) ** 2 / 2,
}


def _relative_error(mine: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(mine - reference) / max(np.linalg.norm(reference), 1e-300))


def _flat(parts: Sequence[np.ndarray | None]) -> np.ndarray:
    return np.concatenate([np.ravel(p) for p in parts if p is not None])


def torch_gradient(problem: Problem) -> np.ndarray:
    """grad R of the problem by torch autograd, flattened in the order (W, v, b)."""
    import torch

    p = problem
    W = torch.tensor(p.W, requires_grad=True)
    v = torch.tensor(p.v, requires_grad=True)
    b = None if p.b is None else torch.tensor(p.b, requires_grad=True)
    pre = torch.tensor(p.X) @ W.T + (0.0 if b is None else b)
    f = p.c * torch.relu(pre) @ v
    weights = as_sample_weight(p.sample_weight, len(p.y))
    losses = torch_loss(p.loss, f, torch.tensor(p.y))
    (losses if weights is None else losses * torch.tensor(weights)).mean().backward()
    return _flat([W.grad.numpy(), v.grad.numpy(), None if b is None else b.grad.numpy()])


def assert_field_matches_autograd(
    field: Callable[[Problem], Sequence[np.ndarray]], problem: Problem, *, rtol: float = 1e-10
) -> None:
    """``field(problem)`` -> (dW, dv) or (dW, dv, db) must equal -grad R by torch autograd to ``rtol``
    (relative, in the Euclidean norm of all components; a zero gradient must give a zero field)."""
    mine = _flat(field(problem))
    reference = -torch_gradient(problem)
    if np.linalg.norm(reference) == 0:
        assert np.linalg.norm(mine) == 0, f"the gradient is 0 but the field has norm {np.linalg.norm(mine)}"
        return
    error = _relative_error(mine, reference)
    assert error <= rtol, f"field differs from torch autograd: relative error {error:.3e} > {rtol:g}"


def mp_risk(problem: Problem, theta: Sequence[Any]) -> Any:
    """The weighted risk at the flattened parameters ``theta`` (order W, v, b) in mpmath, written here."""
    p = problem
    m, d = p.W.shape
    W = [[theta[j * d + k] for k in range(d)] for j in range(m)]
    v = theta[m * d : m * d + m]
    b = theta[m * d + m :] if p.b is not None else [0] * m
    weights = as_sample_weight(p.sample_weight, len(p.y))
    total = mpmath.mpf(0)
    for i, (x_i, y_i) in enumerate(zip(p.X.tolist(), p.y.tolist(), strict=True)):
        pre = [mpmath.fsum(W[j][k] * x_i[k] for k in range(d)) + b[j] for j in range(m)]
        f = mpmath.mpf(p.c) * mpmath.fsum(v[j] * max(pre[j], 0) for j in range(m))
        total += (1 if weights is None else mpmath.mpf(weights[i])) * MP_LOSSES[p.loss](f, mpmath.mpf(y_i))
    return total / len(p.y)


def assert_field_matches_mpmath(
    field: Callable[[Problem], Sequence[np.ndarray]], problem: Problem, *, rtol: float = 1e-10, dps: int = 40
) -> None:
    """``field(problem)`` must equal minus the ``dps``-digit central differences of the risk (h = 1e-15) to
    ``rtol``. Only valid off the activation surfaces: callers skip problems with a pre-activation near 0."""
    theta0 = _flat([problem.W, problem.v, problem.b])
    with mpmath.workdps(dps):
        theta = [mpmath.mpf(t) for t in theta0]
        h = mpmath.mpf("1e-15")
        differences = []
        for index in range(len(theta)):
            plus, minus = list(theta), list(theta)
            plus[index] += h
            minus[index] -= h
            differences.append(float((mp_risk(problem, plus) - mp_risk(problem, minus)) / (2 * h)))
    reference = -np.array(differences)
    mine = _flat(field(problem))
    scale = max(np.linalg.norm(reference), 1e-12)
    error = float(np.linalg.norm(mine - reference) / scale)
    assert error <= rtol, f"field differs from {dps}-digit differences: relative error {error:.3e} > {rtol:g}"


def assert_kernel_matches_monte_carlo(
    kernel: Callable[..., np.ndarray],
    X: Any,
    *,
    alpha: float,
    width: int = 20_000,
    c: float = 1.0,
    bias: bool = False,
    seed: int = 0,
    sigmas: float = 5.0,
) -> None:
    """``kernel(X, X, alpha=, width=, c=)`` (a closed-form infinite-width mean tangent kernel) must lie within
    ``sigmas`` Monte-Carlo standard errors of the tangent kernel of one network of ``width`` neurons drawn by
    :func:`simulate.initialization.init_params` (random_sign, with hidden biases when ``bias``); the standard
    error is estimated from the per-neuron terms, plus 1e-12 of their absolute sum for rounding."""
    from fls.simulate.initialization import init_params

    X = np.asarray(X, dtype=np.float64)
    drawn = init_params(width, X.shape[1], alpha=alpha, scheme="random_sign", seed=seed, bias=bias)
    W, v = drawn[0], drawn[1]
    Xa = np.concatenate([X, np.ones((len(X), 1))], axis=1) if bias else X
    Wa = np.concatenate([W, drawn[2][:, None]], axis=1) if bias else W
    pre = Xa @ Wa.T  # (n, m)
    relu, gate = np.maximum(pre, 0.0), (pre > 0) * v
    # per-neuron terms of K(x_a, x_b): c^2 [relu_a relu_b + v^2 1_a 1_b <x~_a, x~_b>], shape (n, n, m)
    inner = (Xa @ Xa.T)[:, :, None]
    terms = c**2 * (relu[:, None, :] * relu[None, :, :] + gate[:, None, :] * gate[None, :, :] * inner)
    estimate = terms.sum(-1)
    standard_error = np.sqrt(width * terms.var(-1))
    closed = np.asarray(kernel(X, X, alpha=alpha, width=width, c=c), dtype=np.float64)
    slack = sigmas * standard_error + 1e-12 * np.abs(terms).sum(-1)
    gap = np.abs(closed - estimate)
    worst = np.unravel_index(np.argmax(gap - slack), gap.shape)
    assert np.all(gap <= slack), (
        f"closed form differs from the Monte-Carlo network at {tuple(int(i) for i in worst)}: "
        f"{closed[worst]:.6g} vs {estimate[worst]:.6g} +- {standard_error[worst]:.2g} (allowed {sigmas:g} sigma)"
    )


def assert_trajectory_matches_flow(
    predicted: Callable[[float], tuple[np.ndarray, ...]],
    problem: Problem,
    *,
    times: Sequence[float],
    atol: float = 1e-8,
) -> None:
    """``predicted(t)`` -> (W, v) (or (W, v, b) with biases) must equal the exact flow
    (:func:`simulate.flow.integrate_flow` at rtol 1e-12, atol 1e-14) to ``atol`` at every time of ``times``."""
    from fls.simulate.flow import integrate_flow

    p = problem
    result = integrate_flow(
        p.W, p.v, p.X, p.y, c=p.c, loss=p.loss, b0=p.b, sample_weight=p.sample_weight,
        t_max=float(max(times)), rtol=1e-12, atol=1e-14, save_at=np.asarray(times, dtype=float),
    )  # fmt: skip
    assert result.ok, f"the exact flow did not run to t = {max(times)}: {result.status} ({result.message})"
    assert result.dense is not None, "the exact flow has no dense output for this run"
    for t in times:
        reference, mine = _flat(result.dense(float(t))), _flat(predicted(float(t)))
        gap = float(np.max(np.abs(mine - reference)))
        assert gap <= atol, f"trajectory differs from the exact flow at t = {t}: max gap {gap:.3e} > {atol:g}"

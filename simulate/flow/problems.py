"""Small fixed problems on which the flow engine is checked and benchmarked.

- :func:`stall_problem` — docs/design.md section 4's 20-point problem: n = 20 points uniform on the unit sphere in
  d = 3, labels from the fixed linear rule y = sign(x_1), m = 20 neurons with the paper's ``random_sign``
  init. Plain ODE solvers stall on it near t ~ 2 (sliding), the hybrid engine crosses ~200 activation surfaces
  and enters ~15-35 sliding episodes on its way to R = 1e-2.
- :func:`switching_problem` — m = 4 neurons, n = 5 points in d = 3, alpha = 1: small enough for the mpmath
  reference, and its trajectory to R = 0.1 (t ~ 31.8) crosses activation surfaces, slides and leaves sliding.
- :func:`repeated_sample_problem` — 186 samples in d = 2 on 31 distinct surfaces (repeated samples and
  multiples of each other, docs/flow.md "Repeated and collinear samples"), any width.
"""

from __future__ import annotations

import numpy as np

from fls.simulate.initialization import init_params
from fls.theory.validation import check_int, check_positive


def _unit_rows(points: np.ndarray) -> np.ndarray:
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def stall_problem(alpha: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(W0, v0, X, y) of the 20-point stall problem at init scale ``alpha`` (data and init from ``seed``)."""
    alpha = check_positive("alpha", alpha)
    seed = check_int("seed", seed, minimum=0)
    X = _unit_rows(np.random.default_rng(seed).standard_normal((20, 3)))
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    W, v = init_params(20, 3, alpha=alpha, scheme="random_sign", seed=seed)
    return W, v, X, y


def switching_problem() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(W0, v0, X, y) of the small crossing-and-sliding problem (balanced init, alpha = 1, target R = 0.1)."""
    rng = np.random.default_rng(6)
    X = _unit_rows(rng.standard_normal((5, 3)))
    y = np.where(rng.random(5) < 0.5, -1.0, 1.0)
    W = rng.standard_normal((4, 3)) / np.sqrt(3)
    v = np.where(rng.random(4) < 0.5, -1.0, 1.0) * np.linalg.norm(W, axis=1)
    return W, v, X, y


def repeated_sample_problem(
    width: int, alpha: float, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(W0, v0, X, y): 186 samples in d = 2 drawn from 31 distinct points (repeats, the usual way to weight
    samples, and multiples 2x and -x of some of them), labels y = sign(x_1 + 0.3 x_2), ``width`` neurons with
    the ``random_sign`` init at scale ``alpha``. Every sample shares its surface with others."""
    width = check_int("width", width, minimum=1)
    alpha = check_positive("alpha", alpha)
    seed = check_int("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    points = rng.standard_normal((31, 2))
    X = np.concatenate([points, points[rng.integers(0, 31, 145)], 2.0 * points[:5], -points[5:10]])
    y = np.where(X @ np.array([1.0, 0.3]) > 0, 1.0, -1.0)
    W, v = init_params(width, 2, alpha=alpha, scheme="random_sign", seed=seed)
    return W, v, X, y

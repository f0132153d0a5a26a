"""Data-span coordinates: the plain flow written in the span of the samples, for n < d.

Every velocity of a first-layer row is a combination of samples (w_j' = (c/n) v_j sum_i q_ji x_i, with the
Filippov weights of sliding pairs, and the projections at events move w_j along samples too), so

    w_j(t) = w_j(0) + sum_i lambda_ji(t) x_i        for all t.

The state (Lambda, v) holds m (n + 1) numbers instead of m (d + 1). With the Gram matrix K = X X^T and the
initial pre-activations P^0 = W(0) X^T:

    P = W X^T = P^0 + Lambda K,      Lambda' = (c/n) v . Q,      v' = (c/n) (A . P) s,
    ||w_j||^2 = ||w_j(0)||^2 + sum_i lambda_ji (P^0_ji + P_ji),

(Q: the mode's weighted gates, A: its active pairs, s: the sample factors), so the field costs one m x n by
n x n product instead of two m x d by d x n ones, and every vector operation of the integrator runs on a
state about d / n times shorter (the paper's n = 40, d = 100: 2.5 times). It is the same flow: the network
(W, v) is recovered exactly as W(0) + Lambda X. The invariant v_j^2 - ||w_j||^2 stays a diagnostic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fls.simulate.flow import jit
from fls.simulate.flow.arithmetic import Arithmetic
from fls.simulate.flow.chain import SlidingWeights, amplitude_jacobian
from fls.simulate.flow.coords import Coordinates
from fls.simulate.flow.coupled_jacobian import CoupledJacobian
from fls.simulate.flow.output_screen import PRODUCT_SCREEN_MIN_PAIRS, bound_norms, product_excursion
from fls.simulate.flow.tolerance import componentwise

#: The p = 2^SQUARINGS of the p-norm that stands for a maximum over the d components in
#: :meth:`SpanCoordinates.state_tolerance`: at least the maximum and at most d^(1/p) times it.
SQUARINGS = 3
NORM_ORDER = 2**SQUARINGS
#: How far a neuron's weight tolerances may have fallen since they were converted before its row of the span
#: tolerance is converted again (:meth:`SpanCoordinates.state_tolerance`): a reused row is scaled by a factor
#: in [1 - REUSE_FRACTION, 1] that keeps it within equation (2) at the state it is used at.
REUSE_FRACTION = 0.125


@dataclass
class ConvertedRows:
    """The rows of the span tolerance as last converted (:meth:`SpanCoordinates.state_tolerance`): the state's
    rows Lambda^c (m, n) they were converted at, tau (m, n) of equation (2) there, and S (m,), the least
    weight tolerance per unit of ||lambda_j||_1 (min_k T_jk / max_i |x_ik|)."""

    Lambda: np.ndarray
    tau: np.ndarray
    slack: np.ndarray


class SpanCoordinates(Coordinates):
    """The state (Lambda, v) flattened: Lambda (m, n) row-major, then v; W(0) is fixed at construction."""

    name = "span"
    polynomial_guards = True
    gates_are_rows = True  # lambda_j' = (c/n) v_j q_j
    screen_min_pairs = PRODUCT_SCREEN_MIN_PAIRS  # the sliding weights' screen from this many pairs on

    def __init__(self, X: Any, y: Any, c: float, W0: np.ndarray, arithmetic: Arithmetic) -> None:
        super().__init__(X, y, c, len(W0), arithmetic)
        self.row = self.n  # lambda_j: one number per representative sample
        self.W0 = arithmetic.convert(W0)
        self.gram = self.X @ self.XT
        self.P0 = self.W0 @ self.XT
        self.norms0 = np.einsum("ji,ji->j", self.W0, self.W0)  # ||w_j(0)||^2
        self.twice_P0 = 2 * self.P0
        absolute = np.abs(np.asarray(self.X, dtype=np.float64))
        self.largest_x = absolute.max(axis=1)  # max_k |x_ik| (n,)
        self.largest_column = absolute.max(axis=0)  # max_i |x_ik| (d,): how far w_jk moves per unit of lambda_j
        self._converted: dict[tuple[float, float], ConvertedRows] = {}  # per (rtol, atol): state_tolerance
        self._kept_product: tuple[Any, ...] | None = None  # (state, its rows, Lambda K, work): output
        self._x_spectral_norm: float | None = None  # sigma_max(X), for contribution_excursion (float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.scaled_x_powers = np.nan_to_num((absolute / self.largest_x[:, None]) ** NORM_ORDER).T  # (d, n)
        # the compiled tolerance (float64 only: the reference arithmetic's rows are mpmath numbers), which reads
        # the scaled powers row by row
        self._tolerance_kernel = jit.kernels("span_tolerance_kernel") if arithmetic.name == "float64" else None
        self._tolerance_data = (
            self.W0, self.X, self.largest_column, self.largest_x, np.ascontiguousarray(self.scaled_x_powers)
        )

    def pack(self, W: np.ndarray, v: np.ndarray) -> Any:
        """(Lambda, v) of the network (W, v); W - W(0) is taken onto the span of the samples. At the start
        (W = W(0), every run's first state) Lambda = 0 without the product X (W - W(0))^T and the solve, which
        cost 48 ms at m = 20000, n = 40, d = 100 (docs/flow.md "Width")."""
        shift = self.arith.convert(W) - self.W0
        if self.arith.name == "float64" and not shift.any():
            return np.concatenate([np.zeros(self.m * self.n), self.arith.convert(v)])
        Lambda = self.arith.lstsq(self.gram, self.X @ shift.T).T
        return np.concatenate([Lambda.reshape(-1), self.arith.convert(v)])

    def network(self, Y: Any) -> tuple[Any, Any]:
        Lambda, v = self._split(Y)
        return self.W0 + Lambda @ self.X, v

    def signs(self, Y: Any) -> np.ndarray:
        return np.sign(self.arith.to_float(self._split(Y)[1]))

    def _norms2(self, Lambda: Any, LK: Any) -> Any:
        """||w_j||^2 = ||w_j(0)||^2 + sum_i lambda_ji (2 P^0 + Lambda K)_ji, shape (..., m); LK = Lambda K.

        At w_j = 0 (reachable in d = 1) this is 0 up to a roundoff of either sign: square roots take its
        absolute value."""
        return self.norms0 + np.einsum("...i,...i->...", Lambda, self.twice_P0 + LK)

    def invariant(self, Y: Any) -> Any:
        Lambda, v = self._split(Y)
        return v * v - self._norms2(Lambda, self._product_at(Y, Lambda))

    def output(self, Y: Any, weights: SlidingWeights) -> Any:
        """:meth:`Coordinates.output`, with the product Lambda K at one float64 state Y (size,) kept: the step's
        observer reads the invariant at the same state (an event's, after its outputs), which then costs O(m n)
        instead of a second O(m n^2) product, one field evaluation at m = 20000, n = 40 (docs/flow.md "Width").
        D = Lambda K + P^0 is the sum :meth:`parts` forms, so the outputs are bitwise the same."""
        if np.ndim(Y) != 1 or self.arith.name != "float64":
            return super().output(Y, weights)
        Lambda, v = self._split(Y)
        if self._kept_product is None:  # buffers kept from event to event: no fresh (m, n) arrays to fault in
            self._kept_product = (None, *np.empty((3, *Lambda.shape)))
        _, rows, product, D = self._kept_product
        np.copyto(rows, Lambda)
        np.matmul(Lambda, self.gram, out=product)
        self._kept_product = (Y, rows, product, D)
        return self.output_of_parts(np.add(product, self.P0, out=D), v, weights, overwrite=True)

    def _product_at(self, Y: Any, Lambda: Any) -> Any:
        """Lambda K at the state Y whose rows are Lambda: the one :meth:`output` kept when it was formed at this
        state (the same array, its rows unchanged since: compared by value), else formed afresh."""
        kept = self._kept_product
        if kept is not None and kept[0] is Y and np.array_equal(kept[1], Lambda):
            return kept[2]  # read before the next output overwrites it
        return Lambda @ self.gram

    def parts(self, Y: Any) -> tuple[Any, Any, Any]:
        Lambda, v = self._split(Y)
        D = Lambda @ self.gram
        D += self.P0  # in the product's buffer: one (..., m, n) array per evaluation, not two
        return D, v, v

    def neuron_parts(self, Y: Any, neurons: list[int]) -> tuple[Any, Any]:
        """The rows ``neurons`` of :meth:`parts`' D and amp at one state Y (size,)."""
        Lambda, v = self._split(Y)
        return self.P0[neurons] + Lambda[neurons] @ self.gram, v[neurons]

    def contribution_excursion(self, C: np.ndarray, row_sizes: np.ndarray | None = None) -> np.ndarray:
        """E_j >= sup over theta in [0, 1] of ||v_j w_j (theta) - v_j w_j (0)|| (m,) at the states sum_k C_k
        theta^k (the screen of the sliding weights' guards, :mod:`simulate.flow.output_screen`), O(p m n):
        w_j = w_j(0) + lambda_j X, so its theta^k coefficient is bounded by sigma ||lambda_k,j|| (sigma: the
        largest singular value of X), plus ||w_j(0)|| for k = 0, and v_j is the state's own polynomial
        (:func:`~simulate.flow.output_screen.product_excursion`). ``row_sizes``: ||lambda_k,j|| (p + 1, m) of
        :func:`~simulate.flow.output_screen.bound_norms`, when the caller has formed them."""
        if self._x_spectral_norm is None:
            X = np.asarray(self.arith.to_float(self.X), dtype=np.float64)
            self._x_spectral_norm = float(np.linalg.norm(X, 2)) if X.size else 0.0
        Lambda, v = self._split(np.asarray(C, dtype=np.float64))
        rows = self._x_spectral_norm * (bound_norms(Lambda) if row_sizes is None else row_sizes)
        rows[0] += np.sqrt(np.asarray(self.arith.to_float(self.norms0), dtype=np.float64))
        return product_excursion(np.abs(v), rows)

    def state_tolerance(self, Y: Any, rtol: float, atol: float, out: Any = None) -> Any:
        """The error allowed per step in lambda_ji and v_j (docs/flow.md, "Options"; :mod:`simulate.flow.tolerance`,
        equation (2)). An error dlambda_ji moves w_jk by x_ik dlambda_ji, so (2) is

            tau_ji = min_k T_jk / |x_ik| = 1 / max_k (|x_ik| / T_jk),      T_jk = atol + rtol |w_jk|,

        at the state's weights w_j = w_j(0) + sum_i lambda_ji x_i; v_j is a weight itself (T = atol + rtol |v_j|).
        The maximum over k is taken as a p-norm (p = :data:`NORM_ORDER`), which is at least the maximum and at
        most d^(1/p) times it: tau is never looser than (2) and at most 1.8 times tighter at d = 100, and costs
        two matrix products (O(m n d), as a field evaluation in plain coordinates) where the exact minimum, an
        (m, n, d) array, cost 3 ms a step at m = 100, n = 40, d = 100. The state's own rule gave lambda (0 at
        the start) atol alone, with weights of 100 and atol 1e-14 about 1e8 times tighter than the plain rule,
        below the field's roundoff.

        A row tau_j is converted again only when its weights may have moved enough to change it: since the
        conversion at lambda_j^c, |dw_jk| <= ||lambda_j - lambda_j^c||_1 max_i |x_ik|, so every T_jk is still at
        least (1 - e_j) times its converted value with e_j = rtol ||lambda_j - lambda_j^c||_1 / S_j and
        S_j = min_k T_jk / max_i |x_ik|; tau is increasing in T and of degree 1, so (1 - e_j) tau_j^c is within
        (2) at the new state. While e_j <= :data:`REUSE_FRACTION` that scaled row is used (O(n) per neuron, no
        product), at most 1 / (1 - e_j) tighter than a fresh conversion; beyond it the row is converted afresh.
        The rows are kept by value (a copy of lambda^c), never by the identity of a state's buffer. ``out``: a
        float64 array (size,) to write the tolerance into, else a fresh one."""
        Lambda, v = self._split(np.asarray(Y, dtype=np.float64))
        kept = self._converted.get((rtol, atol))
        if kept is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                tolerances = self._row_tolerances(Lambda, self.W0, rtol, atol)
            kept = self._converted[(rtol, atol)] = ConvertedRows(Lambda.copy(), *tolerances)
            return np.concatenate([kept.tau.reshape(-1), componentwise(v, rtol, atol)], out=out)
        tolerance = np.empty(len(Y)) if out is None else out  # in place, no concatenation of two temporaries
        if self._tolerance_kernel is not None:  # the same rule in one call (its precision)
            self._tolerance_kernel.state_tolerance(
                Lambda, v, kept.Lambda, kept.tau, kept.slack, self._tolerance_data, rtol, atol, REUSE_FRACTION,
                SQUARINGS, tolerance,
            )
            return tolerance
        with np.errstate(divide="ignore", invalid="ignore"):  # one context per step: each costs a few us
            kept_share = 1.0 - rtol * np.abs(Lambda - kept.Lambda).sum(axis=1) / kept.slack  # 1 - e_j
            stale = (~(kept_share >= 1.0 - REUSE_FRACTION)).nonzero()[0]  # a NaN converts afresh too
            if stale.size:
                kept.Lambda[stale] = Lambda[stale]
                kept.tau[stale], kept.slack[stale] = self._row_tolerances(Lambda[stale], self.W0[stale], rtol, atol)
                kept_share[stale] = 1.0
        np.multiply(kept.tau, kept_share[:, None], out=tolerance[: kept.tau.size].reshape(kept.tau.shape))
        tolerance[kept.tau.size :] = componentwise(v, rtol, atol)
        return tolerance

    def _row_tolerances(self, Lambda: np.ndarray, W0: Any, rtol: float, atol: float) -> tuple[Any, Any]:
        """(tau (k, n) of equation (2) as a p-norm, S (k,)) for the rows Lambda (k, n) of neurons whose initial
        rows are W0 (k, d) (:meth:`state_tolerance`, which calls it with division by 0 and inf / inf silenced:
        a component no sample moves has slack inf, a sample x_i = 0 a tau of inf or nan)."""
        W = W0 + Lambda @ self.X if Lambda.any() else W0  # at Lambda = 0 (the start): W(0), no O(k n d) product
        allowed = componentwise(W, rtol, atol)  # T (k, d)
        slack = (allowed / self.largest_column).min(axis=1)  # a component no sample moves: inf
        least = allowed.min(axis=1)  # scaled by each neuron's least and each sample's largest, the p-th
        ratios = np.divide(least[:, None], allowed, out=allowed)  # in [0, 1], as the powers below
        for _ in range(SQUARINGS):  # the p-th power by repeated squaring, cheaper than a power
            np.multiply(ratios, ratios, out=ratios)
        sums = ratios @ self.scaled_x_powers
        # a sum that underflows (every term below 1e-38) leaves the bound least / max_k |x_ik|, tighter
        norms = np.where(sums > 0, sums, 1.0) ** (1.0 / NORM_ORDER)
        tau = least[:, None] / (norms * self.largest_x)
        finite = np.isfinite(tau)
        if finite.all():  # the common case: no sample x_i = 0
            return tau, slack
        return np.where(finite, tau, componentwise(Lambda, rtol, atol)), slack

    def _row_scale(self, Y: Any) -> Any:
        Lambda, v = self._split(Y)
        return self._guard_scale(self.arith.sqrt(abs(self._norms2(Lambda, Lambda @ self.gram))), v)

    def _velocity(self, v: Any, AP: Any, Q: Any, s: Any, dLambda: Any, dv: Any) -> None:
        np.multiply(Q, (self.rate * v)[:, None], out=dLambda)
        np.matmul(AP, self.rate * s, out=dv)

    def cosine(self, Y: Any, j: int, i: int) -> Any:
        """cos angle(w_j, x_i) at one state Y (size,), in O(n^2)."""
        n = self.n
        row = Y[j * n : (j + 1) * n]
        P_j = self.P0[j] + row @ self.gram
        norm = self.arith.sqrt(abs(np.array([self.norms0[j] + row @ (self.P0[j] + P_j)])))
        v_j = Y[self.m * n + j : self.m * n + j + 1]
        return P_j[i] / (self._guard_scale(norm, v_j)[0] * self.x_norms[i])

    def project(self, Y: Any, j: int, samples: Any) -> None:
        """Put neuron j exactly on the surfaces <w_j, x_i> = 0, i in ``samples`` (in place): the orthogonal
        projection w_j - X_T^T K_TT^{-1} X_T w_j moves only lambda_jT, by K_TT^{-1} P_jT."""
        if len(samples) == 0:
            return
        Lambda = self._split(Y)[0]
        if len(samples) == 1:  # one surface (the common case): lambda_ji -= P_ji / ||x_i||^2
            i = samples[0]
            Lambda[j, i] -= (self.P0[j, i] + Lambda[j] @ self.gram[:, i]) / self.gram[i, i]
            return
        P_T = self.P0[j, samples] + Lambda[j] @ self.gram[:, samples]
        Lambda[j, samples] -= self.arith.lstsq(self.gram[np.ix_(samples, samples)], P_T)

    def pair_preactivations(self, Ys: Any, j: int, i: int) -> tuple[Any, Any]:
        n = self.n
        values = self.P0[j, i] + Ys[:, j * n : (j + 1) * n] @ self.gram[:, i]
        return values, self._row_scale(Ys[0])[j] * self.x_norms[i]

    @property
    def row_map(self) -> Any:
        return self.gram

    @property
    def preactivation_offset(self) -> np.ndarray:
        return self.P0

    def start_preactivations(self, rows0: Any, neurons: Any) -> Any:
        return self.P0[neurons] + rows0[neurons] @ self.gram  # P^0: the pre-activations' constant term

    def start_scale(self, rows0: Any, amp0: Any, D0: Any, neurons: Any) -> Any:
        Lambda = rows0[neurons]
        norms2 = self.norms0[neurons] + np.einsum("ji,ji->j", Lambda, self.P0[neurons] + D0)  # 2 P^0 + Lambda K
        return self._guard_scale(self.arith.sqrt(abs(norms2)), amp0[neurons])

    def coupled_jacobian(self, Y: np.ndarray, weights: SlidingWeights, loss: str) -> CoupledJacobian:
        """The analytic Jacobian of :meth:`rhs` (float64) as neurons' blocks plus the coupling through the
        outputs (:mod:`~simulate.flow.coupled_jacobian`), for implicit methods: D = P^0 + Lambda K, so
        dD_ji/dlambda_j = K_i, and lambda_j' = (c/n) v_j q_j (:func:`~simulate.flow.chain.amplitude_jacobian`
        with Z = K and the identity for Y, which gives the equations). ``loss`` is the arithmetic's."""
        Lambda = self._split(Y)[0]
        return amplitude_jacobian(self, weights, Y, self.P0 + Lambda @ self.gram, self.gram, None)

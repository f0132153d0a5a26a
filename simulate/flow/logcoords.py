"""Direction / log-norm coordinates for balanced neurons: tiny initial scales without loss of precision.

A balanced neuron has v_j = sign_j ||w_j|| for all time (v_j^2 - ||w_j||^2 = 0 is conserved and sign_j fixed).
Write w_j = exp(rho_j) u_j / ||u_j||. With h_j = X^T q_j (q the mode's weighted gates) the flow w_j' = (c/n)
v_j h_j becomes, with u-hat = u / ||u||,

    rho_j' = (c/n) sign_j <u-hat_j, h_j>,            u_j' = (c/n) sign_j ||u_j|| (I - u-hat_j u-hat_j^T) h_j,

and the output is f_i = c sum_j sign_j exp(2 rho_j) relu(<u-hat_j, x_i>). The right-hand side does not depend
on the scale except through f, so at alpha = 1e-12 the directions (O(1)) and log-norms (O(log alpha)) are
integrated to the relative tolerance while plain (W, v) of size 1e-12 would sit below any absolute tolerance.
u_j' has no radial part, so ||u_j|| drifts only by the integration error and never matters (u is renormalized
where used). The invariant is exact by construction (drift 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fls.simulate.flow import jit
from fls.simulate.flow.arithmetic import Arithmetic
from fls.simulate.flow.carried_outputs import CARRY_MIN_PAIRS
from fls.simulate.flow.chain import SlidingWeights, factor_derivatives, gate_map
from fls.simulate.flow.coords import Coordinates
from fls.simulate.flow.coupled_jacobian import CoupledJacobian, neuron_index
from fls.simulate.flow.kept_units import KeptUnits
from fls.simulate.flow.output_screen import bound_norms
from fls.simulate.flow.rk_step import FUSED_MIN_SIZE
from fls.simulate.flow.tolerance import componentwise

_EPS = float(np.finfo(np.float64).eps)
#: Below this atol the rounding argument of :func:`direction_rule_rows` could meet underflow: every row is formed.
_ATOL_FLOOR = float(np.finfo(np.float64).tiny) / _EPS


def direction_rule_rows(U: np.ndarray, radius: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """The rows j (sorted indices) of the directions U (m, d) with radii r_j = exp(rho_j) (m,) where the
    directions' rule of :meth:`LogCoordinates.state_tolerance`, T_jk = (atol + rtol r_j |u_jk| / ||u_j||)
    ||u_j|| / r_j = atol ||u_j|| / r_j + rtol |u_jk|, may be below the state's own atol + rtol |u_jk|.

    It exceeds it by atol (||u_j|| / r_j - 1) >= atol where ||u_j|| >= 2 r_j, and both are formed with at
    most 8 roundings of relative size eps / 2 each, so where also atol >= 16 eps rtol ||u_j|| (>= 16 eps rtol
    |u_jk|) the computed directions' rule is at least the computed own rule, and the smaller of the two is
    the own rule, bit for bit. The norms here are :func:`~simulate.flow.output_screen.bound_norms` (a few
    roundings off, covered by a relative slack of 1e-9), half the cost of the exact ones. On the stall data
    at m = 20000 (r_j ~ 1e-5, ||u_j|| ~ 1) no row is left, which saves six passes over the directions and
    their exact norms per step. Every row where atol is 0, below :data:`_ATOL_FLOOR`, or a radius is NaN."""
    if not atol >= _ATOL_FLOOR:
        return np.arange(len(radius))
    norms = bound_norms(U)
    own_rule = (2 * radius <= norms * (1 - 1e-9)) & (16 * _EPS * rtol * (1 + 1e-9) * norms <= atol)
    return (~own_rule).nonzero()[0]


class LogCoordinates(Coordinates):
    """The state (U, rho) flattened: U row-major (m, d), then rho (m,); ``sign`` holds sign(v_j)."""

    name = "log"
    amplitude_is_state = False  # rho_j' comes from h_j = X^T q_j, offsets included
    #: <u_j, x_i> (unnormalized u) is linear in the state, so the pair guards of an explicit step are
    #: polynomials in time; the amplitude is not (:meth:`step_outputs`).
    polynomial_guards = True

    def __init__(self, X: Any, y: Any, c: float, sign: np.ndarray, arithmetic: Arithmetic) -> None:
        super().__init__(X, y, c, len(sign), arithmetic)
        self.sign = np.asarray(sign, dtype=np.float64)
        self.sign_a = arithmetic.convert(self.sign)
        self.kept_units = KeptUnits()  # the directions' units at the last event's outputs, for the restart
        # the tolerance in one compiled pass (log_tolerance_kernel, docs/flow.md "Width"), or None
        self._tolerance_kernel = jit.kernels("log_tolerance_kernel") if arithmetic.name == "float64" else None

    def pack(self, W: np.ndarray, v: np.ndarray) -> Any:
        W_a = self.arith.convert(W)
        norms = self.arith.row_norms(W_a)
        return np.concatenate([(W_a / norms[:, None]).reshape(-1), self.arith.log(norms)])

    def _unit(self, Y: Any) -> tuple[Any, Any, Any]:
        U, rho = self._split(Y)
        return *self._normalize(U), rho

    def _normalize(self, U: Any) -> tuple[Any, Any]:
        """(U / ||u_j||, ||u_j||) of directions U (..., m, d), row by row."""
        norms = self.arith.row_norms(U)
        return U / norms[..., None], norms

    def output(self, Y: Any, weights: SlidingWeights) -> Any:
        """:meth:`Coordinates.output`; at one float64 state of a network from ``CARRY_MIN_PAIRS`` pairs (where
        events carry their outputs to the restart) the directions' units are kept for :meth:`velocity_parts`
        (:mod:`~simulate.flow.kept_units`)."""
        D, amp, units = self.parts(Y)
        if np.ndim(Y) == 1 and Y.dtype == np.float64 and self.m * self.n >= CARRY_MIN_PAIRS:
            self.kept_units.keep(self._split(Y)[0], units)
        return self.output_of_parts(D, amp, weights, overwrite=True)

    def network(self, Y: Any) -> tuple[Any, Any]:
        U_hat, _, rho = self._unit(Y)
        scale = self.arith.exp(rho)
        return scale[..., None] * U_hat, self.sign_a * scale

    def signs(self, Y: Any) -> np.ndarray:
        return self.sign

    def invariant(self, Y: Any) -> None:
        return None

    def parts(self, Y: Any) -> tuple[Any, Any, Any]:
        U_hat, norms, rho = self._unit(Y)
        return U_hat @ self.XT, self.sign_a * self.arith.exp(2 * rho), (U_hat, norms)

    def velocity_parts(self, Y: Any) -> tuple[Any, Any]:
        """(U-hat, ||u_j||), the ``aux`` of :meth:`parts`: the velocity reads the directions only, not D. The
        units kept at the last outputs (:meth:`output`) serve, formed afresh in the rows that differ."""
        return self.kept_units.units(self._split(Y)[0], self._normalize)

    def neuron_parts(self, Y: Any, neurons: list[int]) -> tuple[Any, Any]:
        """The rows ``neurons`` of :meth:`parts`' D and amp at one state Y (size,)."""
        U, rho = self._split(Y)
        U = U[neurons]
        amp = self.sign_a[neurons] * self.arith.exp(2 * rho[neurons])
        return (U / self.arith.row_norms(U)[:, None]) @ self.XT, amp

    def _step_states(self, C: np.ndarray, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The directions U (m, d, K) and the amplitudes sign_j exp(2 rho_j) / ||u_j|| (m, K) at the states
        sum_k C_k theta^k, theta in ``thetas`` (K,), time last: O(K p m d)."""
        K, k = len(thetas), self.m * self.d
        states = C.T @ (thetas[None, :] ** np.arange(len(C))[:, None])  # (size, K)
        U, rho = states[:k].reshape(self.m, self.d, K), states[k:]
        return U, self.sign_a[:, None] * self.arith.exp(2 * rho) / np.sqrt(np.einsum("jdk,jdk->jk", U, U))

    def step_amplitudes(self, C: np.ndarray, thetas: np.ndarray) -> np.ndarray:
        """sign_j exp(2 rho_j) / ||u_j|| (K, m) at the states sum_k C_k theta^k, theta in ``thetas`` (K,): with
        the pre-activation coefficients of :meth:`polynomial_parts`, f_i = c sum_j amp_j 1[active] <u_j, x_i>,
        O(K p m n) from those. Costs O(K p m d) (the norms of the directions), not the O(K m n d) of full
        states."""
        return self._step_states(C, thetas)[1].T

    def contribution_excursion(self, C: np.ndarray, row_sizes: np.ndarray | None = None) -> np.ndarray:
        """E_j >= sup over theta in [0, 1] of ||g_j(theta) - g_j(0)|| (m,), g_j = v_j w_j = a_j u_j with
        a_j = sign_j exp(2 rho_j) / ||u_j||, at the states sum_k C_k theta^k (the screen of the sliding weights'
        guards, :mod:`simulate.flow.output_screen`), in O(p m d):

            ||g_j - g_j(0)|| <= |a_j - a_j(0)| ||u_j|| + |a_j(0)| ||u_j - u_j(0)||,

        with ||u_j - u_j(0)|| <= M_j = sum_{k >= 1} ||C_k,u_j||, |rho_j - rho_j(0)| <= P_j = sum_{k >= 1}
        |C_k,rho_j|, so ||u_j|| lies in ||u_j(0)|| -+ M_j and |a_j| between exp(2 (rho_j(0) - P_j)) /
        (||u_j(0)|| + M_j) and exp(2 (rho_j(0) + P_j)) / (||u_j(0)|| - M_j). Infinite where M_j reaches
        ||u_j(0)|| (the direction's norm could pass through 0) or exp overflows. ``row_sizes``: the
        directions' coefficient norms ||C_k,u_j|| (p + 1, m) of :func:`~simulate.flow.output_screen.bound_norms`,
        when the caller has formed them (the step's pair screen reads the same norms). With the compiled
        kernels on, two compiled passes around numpy's exp (:mod:`~simulate.flow.excursion_kernel`), the same
        bits."""
        U, rho = self._split(np.asarray(C, dtype=np.float64))
        if row_sizes is None:
            row_sizes = bound_norms(U)
        norm0 = row_sizes[0]
        if len(row_sizes) > 1 and (kernel := jit.kernels("excursion_kernel")) is not None:
            moved, powers, bound = np.empty(self.m), np.empty((3, self.m)), np.empty(self.m)
            C = np.ascontiguousarray(C, dtype=np.float64)
            kernel.exponents(row_sizes, C, self.m * self.d, moved, powers)
            with np.errstate(over="ignore"):
                np.exp(powers, out=powers)
            kernel.bounds(norm0, moved, powers, bound)
            return bound
        moved = row_sizes[1:].sum(axis=0)
        log_moved = np.abs(rho[1:]).sum(axis=0)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            amp0 = np.exp(2 * rho[0]) / norm0
            lowest, highest = norm0 - moved, norm0 + moved
            amp_high = np.exp(2 * (rho[0] + log_moved)) / lowest
            amp_low = np.exp(2 * (rho[0] - log_moved)) / highest
            bound = np.maximum(amp_high - amp0, amp0 - amp_low) * highest + amp0 * moved
        return np.where((lowest > 0) & np.isfinite(bound), bound, np.inf)

    def step_outputs(self, C: np.ndarray, thetas: np.ndarray, active: Any) -> Any:
        """F (K, n) of the representatives at the states sum_k C_k theta^k, theta in ``thetas`` (K,), under the
        mode's ``active`` gates (m, n), without the pre-activation coefficients: F_i = c sum_j active_ji
        <a_j u_j, x_i> with the amplitude a_j of :meth:`step_amplitudes`, summed over the neurons first
        (active^T @ (a u), one (n, m) by (m, K d) product), so no (m, n) array is formed: O(K m n d) flops in
        one matrix product, cheaper than forming the coefficients when d is small."""
        U, amp = self._step_states(C, thetas)
        by_sample = active.T @ (amp[:, None, :] * U).reshape(self.m, -1)  # (n, d K)
        return self.c * np.einsum("ndk,nd->kn", by_sample.reshape(self.n, self.d, len(thetas)), self.X)

    def state_tolerance(self, Y: Any, rtol: float, atol: float, out: Any = None) -> Any:
        """The error allowed per step in u_jk and rho_j (docs/flow.md, "Options"; :mod:`simulate.flow.tolerance`,
        equation (2)), never looser than atol + rtol |y| on the state itself (the relative precision at small
        norms that log coordinates exist for).

        With r_j = exp(rho_j), w_j = r_j u_j / ||u_j|| and |v_j| = r_j: an error du_jk moves w_jk by
        r_j (1 - u_k^2 / ||u_j||^2) du_jk / ||u_j|| <= r_j du_jk / ||u_j||, so du_jk is held to ||u_j|| (atol +
        rtol |w_jk|) / r_j; an error drho_j moves every w_jk by w_jk drho_j and v_j by v_j drho_j, the largest
        of them v_j, so drho_j is held to (atol + rtol r_j) / r_j. At r_j = 80 that is 80 times tighter in
        atol than the state's own rule; below r_j = 1 the state's own rule is the stricter and stays.

        The directions' rule is formed only for the rows where it can be the stricter
        (:func:`direction_rule_rows`): elsewhere the result is the state's own rule, bit for bit as when every
        row is formed and the smaller taken (docs/flow.md, "Cost"). With the compiled kernels on and from
        :data:`~simulate.flow.rk_step.FUSED_MIN_SIZE` components, the own and log-norms' rules and the rows'
        test in one pass (:mod:`~simulate.flow.log_tolerance_kernel`), the same bits. ``out``: a float64 array
        (size,) to write it into, else a fresh one."""
        Y = np.asarray(Y, dtype=np.float64)
        U, rho = self._split(Y)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            radius = np.exp(rho)
            if self._tolerance_kernel is not None and Y.size >= FUSED_MIN_SIZE:
                tolerance = np.empty_like(Y) if out is None else out
                flags = np.empty(len(radius), dtype=np.bool_)
                every_row = not atol >= _ATOL_FLOOR
                self._tolerance_kernel.own_rules(Y, radius, self.d, rtol, atol, every_row, tolerance, flags)
                near = flags.nonzero()[0]
            else:
                # the same operations as componentwise's, in place (each pass over the state costs at m = 20000)
                tolerance = np.abs(Y, out=out)
                tolerance *= rtol
                tolerance += atol  # componentwise(Y, rtol, atol)
                per_neuron = self._split(tolerance)[1]
                by_log_norm = componentwise(radius, rtol, atol) / radius
                # fmin: a norm under- or overflowing exp (nan or inf) leaves the state's own rule
                np.fmin(per_neuron, by_log_norm, out=per_neuron)
                near = direction_rule_rows(U, radius, rtol, atol)
            if not len(near):
                return tolerance
            if len(near) == len(radius):
                near = slice(None)  # every row: views, not copies
            U, radius = U[near], radius[near]
            norms = np.sqrt(np.einsum("jd,jd->j", U, U))
            by_direction = np.multiply((radius / norms)[:, None], U)  # W
            np.abs(by_direction, out=by_direction)
            by_direction *= rtol
            by_direction += atol
            by_direction *= (norms / radius)[:, None]
        rows = self._split(tolerance)[0]
        rows[near] = np.fmin(rows[near], by_direction)
        return tolerance

    def _row_scale(self, Y: Any) -> None:
        return None  # the pre-activation factor is already that of the unit direction

    def _velocity(self, aux: tuple[Any, Any], AD: Any, Q: Any, s: Any, dU: Any, drho: Any) -> None:
        U_hat, norms = aux  # this evaluation's own: overwritten below (no (m, d) temporary is allocated)
        H = np.matmul(Q, self.X, out=dU)  # h_j, in the output's buffer
        along = np.einsum("jd,jd->j", U_hat, H)  # no reduction over a short axis
        np.multiply(self.rate * self.sign_a, along, out=drho)
        U_hat *= along[:, None]  # (I - u u^T) h = h - <u, h> u
        dU -= U_hat
        dU *= (self.rate * self.sign_a * norms)[:, None]

    def coupled_jacobian(self, Y: np.ndarray, weights: SlidingWeights, loss: str) -> CoupledJacobian:
        """The analytic Jacobian of :meth:`rhs` (float64) as neurons' blocks plus the coupling through the
        outputs (:mod:`~simulate.flow.coupled_jacobian`), for implicit methods.

        With u-hat_j = u_j / ||u_j||, D_ji = <u-hat_j, x_i>, a_j = sign_j exp(2 rho_j) and P_j = I - u-hat_j
        u-hat_j^T: dD_ji/du_j = P_j x_i / ||u_j||, so dF_i/du_j = c a_j A_ji P_j x_i / ||u_j|| and dF_i/drho_j
        = 2 c a_j A_ji D_ji (L alike with A = 1). With dh_j = G_j dSN (G_j = X^T Q_j, :mod:`~simulate.flow.chain`)
        and r_j = (c/n) sign_j:
        d rho_j'/dtheta = r_j [u-hat_j^T G_j dSN + e_{u_j}^T P_j h_j / ||u_j||],
        d u_j'/dtheta = r_j [||u_j|| P_j G_j dSN + e_{u_j} (h_j u-hat_j^T - u-hat_j h_j^T - <u-hat_j, h_j> P_j)]
        (the last from d/du_j of ||u_j|| h_j - <u_j, h_j> u_j / ||u_j||). ``loss`` is the arithmetic's.
        """
        m, d, k = self.m, self.d, self.n
        U, rho = self._split(Y)
        norms = np.sqrt(np.einsum("jd,jd->j", U, U))
        U_hat = U / norms[:, None]
        D = U_hat @ self.XT
        amp = self.sign * np.exp(2 * rho)
        opposite = self.samples.opposite
        f = self.samples.outputs(
            self.c * (amp @ (weights.active * D)), self.c * (amp @ D) if opposite else None
        )
        S, N = self.sample_factors(f)
        tangents = self.X[None, :, :] - D[:, :, None] * U_hat[:, None, :]  # ||u_j|| dD_ji/du_j: (m, k, d)
        tangents /= norms[:, None, None]

        def outputs_derivative(gates: np.ndarray) -> np.ndarray:  # dF (gates: the mode's A) or dL (gates 1)
            scaled = self.c * amp[:, None] * gates
            return np.concatenate(
                [(scaled[:, :, None] * tangents).transpose(1, 0, 2).reshape(k, m * d), 2 * (scaled * D).T],
                axis=1,
            )

        dL = outputs_derivative(np.ones((m, k))) if opposite else None
        dSN = factor_derivatives(
            self.samples, self.arith.sample_slope(f, self.y), outputs_derivative(weights.active), dL
        )
        G = np.einsum("jil,id->jdl", gate_map(weights, k, opposite), self.X)  # dh_j = G_j dSN
        along_G = np.einsum("jd,jdl->jl", U_hat, G)
        G -= U_hat[:, :, None] * along_G[:, None, :]  # P_j G_j
        rate = self.rate * self.sign
        left = np.concatenate(
            [((rate * norms)[:, None, None] * G).reshape(m * d, -1), rate[:, None] * along_G]
        )
        H = weights.weighted_gates(S, N) @ self.X
        along = np.einsum("jd,jd->j", U_hat, H)
        outer = U_hat[:, :, None] * U_hat[:, None, :]
        own = H[:, :, None] * U_hat[:, None, :] - U_hat[:, :, None] * H[:, None, :]
        own -= along[:, None, None] * (np.eye(d) - outer)
        blocks = np.zeros((m, d + 1, d + 1))  # (u_j, rho_j): rho_j acts only through the outputs
        blocks[:, :d, :d] = rate[:, None, None] * own
        blocks[:, d, :d] = (rate / norms)[:, None] * (H - along[:, None] * U_hat)
        return CoupledJacobian(blocks, neuron_index(m, d), left, dSN)

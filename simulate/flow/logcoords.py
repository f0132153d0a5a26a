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

from fls.simulate.flow.arithmetic import Arithmetic
from fls.simulate.flow.coords import Coordinates


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

    def pack(self, W: np.ndarray, v: np.ndarray) -> Any:
        W_a = self.arith.convert(W)
        norms = self.arith.row_norms(W_a)
        return np.concatenate([(W_a / norms[:, None]).reshape(-1), self.arith.log(norms)])

    def _unit(self, Y: Any) -> tuple[Any, Any, Any]:
        U, rho = self._split(Y)
        norms = self.arith.row_norms(U)
        return U / norms[..., None], norms, rho

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

    def step_outputs(self, C: np.ndarray, thetas: np.ndarray, active: Any) -> Any:
        """F (K, n) of the representatives at the states sum_k C_k theta^k, theta in ``thetas`` (K,), under the
        mode's ``active`` gates (m, n): F_i = c sum_j active_ji <a_j u_j, x_i> with the amplitude a_j =
        sign_j exp(2 rho_j) / ||u_j||, which is no polynomial in theta. Summed over neurons first
        (active^T @ (a u), one (n, m) by (m, K d) product), so no (m, n) array is formed per time: O(K m d + K
        m n d) flops in one matrix product."""
        K, k = len(thetas), self.m * self.d
        states = C.T @ (thetas[None, :] ** np.arange(len(C))[:, None])  # (size, K): time last, contiguous
        U, rho = states[:k].reshape(self.m, self.d, K), states[k:]
        amp = self.sign_a[:, None] * self.arith.exp(2 * rho) / np.sqrt(np.einsum("jdk,jdk->jk", U, U))
        by_sample = (active.T @ (amp[:, None, :] * U).reshape(self.m, -1)).reshape(self.n, self.d, K)
        return self.c * np.einsum("ndk,nd->kn", by_sample, self.X)

    def _row_scale(self, Y: Any) -> None:
        return None  # the pre-activation factor is already that of the unit direction

    def _velocity(self, aux: tuple[Any, Any], AD: Any, Q: Any, s: Any, dU: Any, drho: Any) -> None:
        U_hat, norms = aux
        H = Q @ self.X
        along = (U_hat * H).sum(-1)
        np.multiply(self.rate * self.sign_a, along, out=drho)
        np.multiply((self.rate * self.sign_a * norms)[:, None], H - along[:, None] * U_hat, out=dU)

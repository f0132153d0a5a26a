"""State coordinates of the flow and the field of one mode in them (plain (W, v); logcoords has the other).

The field of a mode is the gradient flow of docs/design.md section 2 with relu'(P) replaced by the mode's gates and
relu(P) by its smooth extension (the active pairs' P, 0 elsewhere):

    f_i = c sum_j v_j 1[j,i active] P_ji,     s_i = -l'(y_i f_i) y_i,     q = weighted gates (modes, eq. (1)),
    w_j' = (c/n) v_j sum_i q_ji x_i,            v_j' = (c/n) sum_i 1[j,i active] P_ji s_i.

On the piece's own region this equals the field of :func:`theory.vector_field` (tests check it to 1e-14);
beyond the region's boundary it continues the piece's smooth field, so Runge–Kutta stages that probe past an
event see a smooth right-hand side and the dense output stays accurate to the tolerance up to the event. ``s``
comes from the compiled derivation (:mod:`simulate.flow.arithmetic`), so every loss of :mod:`theory.symbolic`
is supported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fls.simulate.flow import jit
from fls.simulate.flow.arithmetic import Arithmetic
from fls.simulate.flow.chain import amplitude_jacobian
from fls.simulate.flow.coupled_jacobian import CoupledJacobian
from fls.simulate.flow.modes import SlidingWeights, project_onto_surfaces
from fls.simulate.flow.output_screen import PRODUCT_SCREEN_MIN_PAIRS, bound_norms, product_excursion
from fls.simulate.flow.samples import SampleGroups
from fls.simulate.flow.tolerance import componentwise

#: :attr:`Coordinates.preactivation_offset` where there is none.
_NO_OFFSET = np.empty((0, 0))


class Coordinates:
    """Common part of the coordinate systems: the network output and the field assembly of one mode.

    A state is a block of ``row`` numbers per neuron, row-major (m, row), then one number per neuron.
    Subclasses provide ``parts(Y) -> (D, amp, aux)``, with D[..., j, i] a pre-activation factor whose sign is
    that of <w_j, x_i>, amp[..., j] such that f_i = c sum_j amp_j 1[active] D_ji, and aux whatever
    ``_velocity`` reuses; ``_row_scale(Y)``, the factor s_j (..., m) with D_ji / (s_j ||x_i||) = cos angle(w_j,
    x_i), or None when it is 1 (in d = 1 a norm that stays positive instead, :meth:`_guard_scale`).
    """

    name = ""
    #: Whether the guards of a step follow from its polynomial dense output (:mod:`~simulate.flow.polynomial_guards`):
    #: D and amp are affine in the state, so polynomials in time along a step (:meth:`polynomial_parts`).
    polynomial_guards = False
    #: Whether the per-neuron numbers of the state are the output weights v (plain and span coordinates).
    amplitude_is_state = True
    #: Whether the weighted gates times (c/n) v_j are the first block's velocity itself (data-span
    #: coordinates), not a factor of it (plain: times X).
    gates_are_rows = False

    def __init__(
        self, X: Any, y: Any, c: float, m: int, arithmetic: Arithmetic, row: int | None = None
    ) -> None:
        self.arith = arithmetic
        self.X_all, self.y = X, y  # every sample, and every label (the stopping rules and the risk use them)
        self.samples = SampleGroups(X, y, arithmetic)
        if self.samples.opposite:  # the guards' output polynomials assume no offset: sample states instead
            self.polynomial_guards = False
        X = self.X = self.samples.X  # one representative per distinct surface (:mod:`~simulate.flow.samples`)
        self.XT = np.ascontiguousarray(X.T)  # the products with X^T run faster on a contiguous copy
        self.n, self.d = X.shape
        self.m = m
        self.row = self.d if row is None else row  # numbers per neuron in the first block of the state
        # c in the arithmetic itself, so c/n and every product with it are exact to its precision
        self.c = arithmetic.convert(np.array([c]))[0]
        self.rate = self.c / len(y)  # the neuron factor c/n of the mean-risk field, n counting every sample
        self.x_norms = arithmetic.row_norms(X)
        self._gates: Any = None  # the weighted gates' buffer of :meth:`rhs` from given outputs
        self._kernel = self._compiled_field()

    @property
    def size(self) -> int:
        """Length of the state vector."""
        return self.m * (self.row + 1)

    def state_tolerance(self, Y: Any, rtol: float, atol: float, out: Any = None) -> Any:
        """The error allowed per step in each component of the state Y (size,) for a weight error within atol +
        rtol |w| (:mod:`simulate.flow.tolerance`, equation (1)): atol + rtol |y| where the state is the weights
        themselves (plain coordinates); the other coordinate systems convert. ``out``: an array (size,) to
        write it into, else a fresh one."""
        if out is None:
            return componentwise(Y, rtol, atol)
        out[:] = componentwise(Y, rtol, atol)
        return out

    def _split(self, Y: Any) -> tuple[Any, Any]:
        """(row block (..., m, row), per-neuron part (..., m)) of states Y (..., size)."""
        k = self.m * self.row
        if Y.ndim == 1:  # the common case, spelled out: this runs several times per field evaluation
            return Y[:k].reshape(self.m, self.row), Y[k:]
        return Y[..., :k].reshape(*Y.shape[:-1], self.m, self.row), Y[..., k:]

    def row_block(self, Y: Any) -> Any:
        """The row block (m, row) of a state Y (size,), a view: the part an event's projection changes."""
        return self._split(Y)[0]

    def output(self, Y: Any, weights: SlidingWeights) -> Any:
        """f (..., n_samples) of every sample under the mode's smooth extension (the network output on the
        piece's region)."""
        D, amp, _ = self.parts(Y)
        return self.output_of_parts(D, amp, weights, overwrite=True)

    def output_of_parts(self, D: Any, amp: Any, weights: SlidingWeights, overwrite: bool = False) -> Any:
        """f (..., n_samples) from the parts (D, amp) of :meth:`parts` (on the representatives). ``overwrite``:
        D is the caller's and done with, so its active part is formed in its buffer (no fresh (m, n) array)."""
        L = self.c * (amp[..., None, :] @ D)[..., 0, :] if self.samples.opposite else None
        AD = np.multiply(weights.active, D, out=D) if overwrite else weights.active * D
        F = self.c * (amp[..., None, :] @ AD)[..., 0, :]
        return self.samples.outputs(F, L)

    def neuron_outputs(self, Y: Any, weights: SlidingWeights, neurons: list[int] | slice) -> Any:
        """The part of :meth:`output` (every sample's, (n_samples,)) that the neurons ``neurons`` (indices, or a
        slice: ``modes.neuron_rows``) contribute at one state Y (size,), in O(len(neurons) n row): the change
        of the output when an event moves only those neurons is the change of this part (docs/flow.md, "Cost")."""
        D, amp = self.neuron_parts(Y, neurons)
        L = self.c * (amp @ D) if self.samples.opposite else None
        return self.samples.outputs(self.c * (amp @ (weights.active[neurons] * D)), L)

    def sample_factors(self, f: Any) -> tuple[Any, Any]:
        """(S, N) of the representatives from every sample's output f (:mod:`~simulate.flow.samples`): the
        jump factor (the sample factor s when no samples were merged) and the offset (None without opposite
        samples)."""
        return self.samples.factors(f)

    def divide_by_row_scale(self, A: Any, Y: Any) -> Any:
        """A (..., m, n) divided in place by the row factors s_j of states Y (turns D / ||x_i|| into cosines)."""
        scale = self._row_scale(Y)
        if scale is not None:
            A /= scale[..., None]
        return A

    def _guard_scale(self, norms: Any, v: Any) -> Any:
        """The row factors s_j of the pair guards from the row norms ||w_j|| and the output weights v_j.

        ||w_j|| (the guards are cosines), except in d = 1 with the output weights in the state: there every
        surface is {w_j = 0}, where ||w_j|| vanishes and cos angle(w_j, x_i) = sign(w_j x_i) is 0 / 0, while a
        neuron passes through 0 (and swaps its active samples) or slides there. The guard side_ji w_j x_i /
        (sqrt(w_j^2 + v_j^2) |x_i|) has the cosine's sign, is smooth through the surface and 0 on it exactly:
        sqrt(w_j^2 + v_j^2) >= sqrt(|v_j^2 - w_j^2|) stays positive by the invariant unless the neuron is
        balanced, and a balanced neuron in d = 1 (w_j' and v_j' both proportional to |w_j|) never reaches 0
        in finite time. docs/flow.md, "Robustness".
        """
        if self.d == 1 and self.amplitude_is_state:
            return self.arith.sqrt(norms * norms + v * v)
        return norms

    def velocity_parts(self, Y: Any) -> Any:
        """The ``aux`` of :meth:`parts` at one state Y (size,) without D and amp, where the velocity reads
        neither (log coordinates); None where it does (the output weights' velocity reads the pre-activations)."""
        return None

    def rhs(self, Y: Any, weights: SlidingWeights, outputs: Any = None, out: Any = None) -> Any:
        """The field of the mode at the state Y (size,). ``outputs``: every sample's network output at Y under
        the mode (n_samples,), when known (carried from an event, :mod:`~simulate.flow.carried_outputs`):
        coordinates whose velocity reads no pre-activation (:meth:`velocity_parts`) then form none, the
        backward half of an evaluation only (docs/flow.md, "Cost"). ``out``: a contiguous array (size,) of Y's
        dtype to write the field into (an integrator's stage row: no fresh state-sized array and no copy),
        else a fresh one."""
        return self.rhs_and_factors(Y, weights, outputs, out)[0]

    def rhs_and_factors(
        self, Y: Any, weights: SlidingWeights, outputs: Any = None, out: Any = None
    ) -> tuple[Any, Any, Any]:
        """(:meth:`rhs`, the sample factors (S, N) of :meth:`sample_factors` it was formed with): the jumps at a
        piece's start, which its weight guards are scaled by, come with its first evaluation there instead of
        one more output evaluation (docs/flow.md, "Cost"). One compiled call after the pre-activations where
        :meth:`_compiled_field` applies."""
        if out is None:
            out = np.empty(self.size, dtype=Y.dtype)
        if self._kernel is not None and Y.ndim == 1:
            return self._compiled_rhs(Y, weights, out)
        aux = None if outputs is None else self.velocity_parts(Y)
        if aux is None:
            D, amp, aux = self.parts(Y)
            L = self.c * (amp @ D) if self.samples.opposite else None
            # the mode's smooth extension of relu(D), in D's own buffer unless D is needed below: a fresh (m, n)
            # array per evaluation costs page faults that can exceed the arithmetic (docs/flow.md, "Cost")
            AD = weights.active * D if self.samples.opposite else np.multiply(weights.active, D, out=D)
            outputs = self.samples.outputs(self.c * (amp @ AD), L)
        else:  # q goes to a buffer kept for these evaluations (a fresh (m, n) array costs page faults)
            if self._gates is None or self._gates.dtype != Y.dtype:
                self._gates = np.empty((self.m, self.n), dtype=Y.dtype)
            D, AD = None, self._gates
        s, offset = self.sample_factors(outputs)
        block, per_neuron = self._split(out)
        # where the velocity does not read AD (log coordinates), q takes its buffer
        Q = weights.weighted_gates(s, offset, None if self.amplitude_is_state else AD)
        self._velocity(aux, AD, Q, s, block, per_neuron)
        if offset is not None and self.amplitude_is_state:  # opposite samples: relu(-u) = relu(u) - u
            per_neuron += D @ (self.rate * offset)
        return out, s, offset

    def _compiled_field(self) -> Any:
        """The compiled field (:mod:`~simulate.flow.field_kernel`, :mod:`~simulate.flow.jit`) where it applies:
        float64, a loss it knows, no merged samples and the output weights in the state; else None."""
        if self.arith.name != "float64" or self.samples.merged or not self.amplitude_is_state:
            return None
        kernel = jit.kernels("field_kernel")
        if kernel is None or self.arith.loss not in kernel.LOSS_CODES:
            return None
        self._loss_code = kernel.LOSS_CODES[self.arith.loss]
        weights = self.arith.weights
        self._sample_weights = np.ones(self.n) if weights is None else np.ascontiguousarray(weights, np.float64)
        self._labels = np.ascontiguousarray(self.y, dtype=np.float64)
        return kernel

    def _compiled_rhs(self, Y: np.ndarray, weights: SlidingWeights, out: np.ndarray) -> tuple[Any, Any, None]:
        """:meth:`rhs_and_factors` by :func:`~simulate.flow.field_kernel.mode_field` (its precision), with
        :meth:`parts`' pre-activations D = R Z + D^0 (:attr:`row_map` Z, :attr:`preactivation_offset` D^0);
        in plain coordinates X maps the gates to the first block."""
        rows, amp = self._split(Y)
        if self._gates is None or self._gates.dtype != np.float64:
            self._gates = np.empty((self.m, self.n))
            self._preactivations = np.empty((self.m, self.n))  # D: a buffer, kept from call to call
        block, per_neuron = self._split(out)
        gates = block if self.gates_are_rows else self._gates
        s = np.empty(self.n)
        self._kernel.mode_field(
            rows, self.row_map, self.preactivation_offset, amp, weights.active, self.c, self._labels,
            self._sample_weights, self._loss_code, weights.pair_flat, weights.map, self.rate,
            self._preactivations, gates, per_neuron, s,
        )
        if not self.gates_are_rows:
            np.matmul(gates, self.X, out=block)
        return out, s, None

    def jacobian(self, Y: np.ndarray, weights: SlidingWeights, loss: str) -> np.ndarray:
        """The analytic Jacobian of :meth:`rhs` (float64), for implicit methods: :meth:`coupled_jacobian`'s."""
        return self.coupled_jacobian(Y, weights, loss).dense()

    def cosines(self, Y: Any) -> Any:
        """cos angle(w_j, x_i), shape (..., m, n): the guards of the activation surfaces."""
        return self.divide_by_row_scale(self.parts(Y)[0] / self.x_norms, Y)

    def cosine(self, Y: Any, j: int, i: int) -> Any:
        """cos angle(w_j, x_i) at one state Y (size,), in O(d) (the row block holds w_j's direction)."""
        row = Y[j * self.d : (j + 1) * self.d]
        v_j = Y[self.m * self.d + j : self.m * self.d + j + 1]
        norm = self._guard_scale(self.arith.sqrt(np.array([row @ row])), v_j)
        return (row @ self.X[i]) / (norm[0] * self.x_norms[i])

    def project(self, Y: Any, j: int, samples: Any) -> None:
        """Put neuron j of the state Y exactly on the surfaces <w_j, x_i> = 0, i in ``samples`` (in place), by
        the orthogonal projection of its direction (the row block holds it)."""
        directions = self._split(Y)[0]
        directions[j] = project_onto_surfaces(directions[j], self.X[samples], self.arith)

    def pair_preactivations(self, Ys: Any, j: int, i: int) -> tuple[Any, Any]:
        """<r_j, x_i> at the states Ys (K, size) for the neuron's row r_j (affine in the state, so a polynomial
        along a step), and ||r_j|| ||x_i|| at Ys[0]: values / scale has the sign of cos angle(w_j, x_i)."""
        rows = Ys[:, j * self.d : (j + 1) * self.d]
        norm = self._guard_scale(self.arith.row_norms(rows[:1]), Ys[:1, self.m * self.d + j])
        return rows @ self.X[i], norm[0] * self.x_norms[i]

    @property
    def row_map(self) -> Any:
        """Z (row, n) with D = R @ Z (+ a constant, :meth:`row_polynomials`) for the row block R of a state."""
        return self.XT

    @property
    def preactivation_offset(self) -> np.ndarray:
        """The constant D^0 (m, n) of D = R @ :attr:`row_map` + D^0, or an empty array where it is 0."""
        return _NO_OFFSET

    def row_polynomials(self, C: np.ndarray) -> tuple[Any, Any, Any, Any]:
        """For the states sum_k C_k theta^k (C: (p + 1, size), power basis) where D and amp are affine in the
        state: the row blocks' coefficients R (p + 1, m, row), amp's (p + 1, m) (None where amp is no
        polynomial), D at theta = 0 (m, n) and the row scale there (m,). D's coefficient k >= 1 is R_k @
        :attr:`row_map`, so a caller that needs only a few pairs' polynomials computes only those (O(p row)
        each) and screens the others with ||R_k,j|| ||Z_i|| (docs/flow.md, "Cost")."""
        rows, amp, amp0 = self.row_blocks(C)
        everyone = slice(None)
        D0 = self.start_preactivations(rows[0], everyone)
        return rows, amp, D0, self.start_scale(rows[0], amp0, D0, everyone)

    def row_blocks(self, C: np.ndarray) -> tuple[Any, Any, Any]:
        """(R (p + 1, m, row), amp's coefficients (p + 1, m) or None, the per-neuron numbers at theta = 0 (m,))
        of :meth:`row_polynomials`, without forming D."""
        rows, amp = self._split(C)
        return rows, amp if self.amplitude_is_state else None, amp[0]

    def start_preactivations(self, rows0: Any, neurons: Any) -> Any:
        """D at theta = 0 (k, n) of the neurons ``neurons`` (indices or a slice) from a step's row block there
        (m, row): O(k n row), so a step screened neuron by neuron forms only the rows it needs."""
        return rows0[neurons] @ self.XT

    def start_scale(self, rows0: Any, amp0: Any, D0: Any, neurons: Any) -> Any:
        """The row scale at theta = 0 (k,) of ``neurons``, from the row block rows0 (m, row), the per-neuron
        numbers amp0 (m,) and the neurons' :meth:`start_preactivations` D0 (k, n)."""
        return self._guard_scale(self.arith.row_norms(rows0[neurons]), amp0[neurons])

    def polynomial_parts(self, C: np.ndarray) -> tuple[Any, Any, Any]:
        """For the states sum_k C_k theta^k (C: (p + 1, size), power basis): the coefficients of D (p + 1, m, n)
        and of amp (p + 1, m, or None as in :meth:`row_polynomials`), and the row scale at theta = 0 (m,)."""
        rows, amp, D0, scale = self.row_polynomials(C)
        return self.all_coefficients(rows, D0), amp, scale

    def all_coefficients(self, rows: Any, D0: Any) -> Any:
        """Every pair's coefficients D_k (p + 1, m, n) from :meth:`row_polynomials`' R and D(0): D_k = R_k @
        :attr:`row_map` for k >= 1, written in place (the output guards need them all)."""
        D = np.empty((len(rows), *D0.shape), dtype=D0.dtype)
        D[0] = D0
        np.matmul(rows[1:], self.row_map, out=D[1:])
        return D


class PlainCoordinates(Coordinates):
    """The state (W, v) flattened: W row-major, then v; the invariant v_j^2 - ||w_j||^2 is a diagnostic."""

    name = "plain"
    polynomial_guards = True
    screen_min_pairs = PRODUCT_SCREEN_MIN_PAIRS  # the sliding weights' screen from this many pairs on

    def pack(self, W: np.ndarray, v: np.ndarray) -> Any:
        return self.arith.convert(np.concatenate([W.reshape(-1), v]))

    def network(self, Y: Any) -> tuple[Any, Any]:
        return self._split(Y)

    def signs(self, Y: Any) -> np.ndarray:
        return np.sign(self.arith.to_float(self._split(Y)[1]))

    def invariant(self, Y: Any) -> Any:
        W, v = self._split(Y)
        return v * v - np.einsum("...i,...i->...", W, W)

    def parts(self, Y: Any) -> tuple[Any, Any, Any]:
        W, v = self._split(Y)
        return W @ self.XT, v, v

    def neuron_parts(self, Y: Any, neurons: list[int]) -> tuple[Any, Any]:
        """The rows ``neurons`` of :meth:`parts`' D and amp at one state Y (size,)."""
        W, v = self._split(Y)
        return W[neurons] @ self.XT, v[neurons]

    def _row_scale(self, Y: Any) -> Any:
        W, v = self._split(Y)
        return self._guard_scale(self.arith.row_norms(W), v)

    def contribution_excursion(self, C: np.ndarray, row_sizes: np.ndarray | None = None) -> np.ndarray:
        """E_j >= sup over theta in [0, 1] of ||v_j w_j (theta) - v_j w_j (0)|| (m,) at the states sum_k C_k
        theta^k (the screen of the sliding weights' guards, :mod:`simulate.flow.output_screen`), O(p m d):
        v_j and w_j are the state's own polynomials (:func:`~simulate.flow.output_screen.product_excursion`).
        ``row_sizes``: ||C_k,w_j|| (p + 1, m) of :func:`~simulate.flow.output_screen.bound_norms`, when the
        caller has formed them."""
        W, v = self._split(np.asarray(C, dtype=np.float64))
        return product_excursion(np.abs(v), bound_norms(W) if row_sizes is None else row_sizes)

    def _velocity(self, v: Any, AP: Any, Q: Any, s: Any, dW: Any, dv: Any) -> None:
        Q *= (self.rate * v)[:, None]  # on (m, n) rather than on the (m, d) product
        np.matmul(Q, self.X, out=dW)
        np.matmul(AP, self.rate * s, out=dv)

    def coupled_jacobian(self, Y: np.ndarray, weights: SlidingWeights, loss: str) -> CoupledJacobian:
        """The analytic Jacobian of :meth:`rhs` (float64) as neurons' blocks plus the coupling through the
        outputs (:mod:`~simulate.flow.coupled_jacobian`), for implicit methods: dP_ji/dw_j = x_i and w_j' =
        (c/n) v_j X^T q_j (:func:`~simulate.flow.chain.amplitude_jacobian` with Z = Y = X, which gives the
        equations; merged opposite samples included). ``loss`` is the arithmetic's."""
        return amplitude_jacobian(self, weights, Y, self._split(Y)[0] @ self.XT, self.X, self.X)

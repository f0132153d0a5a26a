"""A screen for the output guards of an explicit step (the sliding weights' and the stopping rule's): the steps in
which no weight can reach 0 or 1 and the target cannot be reached.

The guards besides the pairs' are the sliding weights' (mu and 1 - mu, formed as (z - N_i) s_i and
(s_i - z + N_i) s_i in the unit of the jump at the piece's start,
:meth:`~simulate.flow.events.PieceGuards.weight_guards`) and the stopping rule's value, and they depend on the
state through every sample's output f alone. Forming those outputs along a step costs about two field
evaluations at m = 20000 on the stall data (docs/flow.md, "Cost"), while a bound on how far they can move
costs O(p m d + m n):

1. Under the piece's mode f_i = c sum_j A_ji <g_j, x_i> with g_j = v_j w_j (A: the active gates), so

       |f_i(t) - f_i(t_0)| <= |c| ||x_i|| sum_j A_ji E_j,      E_j >= ||g_j(t) - g_j(t_0)||,

   t_0 the piece's start, where its guards formed every output (``PieceGuards.start_outputs``). E_j is the
   sum over the piece's steps of each step's bound on sup ||g_j(theta) - g_j(0)|| over its dense output,
   theta in [0, 1], which the coordinates give (``contribution_excursion``: log coordinates,
   :meth:`~simulate.flow.logcoords.LogCoordinates.contribution_excursion`; plain and data-span coordinates,
   whose v_j and w_j are polynomials in theta, through :func:`product_excursion`). The gated sum is first
   bounded by sum_j E_j (O(m)): a step that this bound keeps inside is inside by the gated one too, and only
   the others form the (m, n) product (on the stall data at m = 20000 none does).
2. The sample factor s = -dl/df (times the sample's weight) does not increase in f for a convex loss (every
   loss of docs/design.md section 2), so s_i stays between its values at f_i(t_0) -+ that bound, and so does
   each representative's (a sum of samples' factors with positive scales, :mod:`~simulate.flow.samples`).
3. z = s @ map^T is linear in s: |z_k - z_k(t_0)| <= |map_k| @ |s - s(t_0)|. The weights' guards are then
   products of two intervals, whose least value bounds them from below.

4. The stopping rule bounds its value from below on the box of outputs f(t_0) -+ that bound
   (:meth:`~simulate.stopping.StopRule.lower_bound`: the least loss of a convex loss on each sample's
   interval, or the order statistic of the margins' upper ends); where that bound is above 0 the target
   cannot be reached in the step.

When both guards of every sliding pair stay above the touching tolerance (``Arithmetic.touch_tol``) and the
stopping rule's bound above 0, the step has no weight event, no weight at a bound and no stop, and its outputs
are not formed; the event's outputs, if a pair crosses, cost one output evaluation at the event instead. The
bounds are those of the step's dense output, which the sampled guards read too, so a stop located by them is
located the same way with the screen (the risk's decrease along the exact flow is not used: the dense output
is not the flow, and its risk may rise within the tolerances). The screen never drops a step the sampled guards
would stop: it is a bound, with a relative slack far above roundoff (:data:`EXCURSION_SLACK`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fls.simulate.flow import jit

#: Relative slack on the excursion bounds (their rounding, and the rounding of the outputs they bound).
EXCURSION_SLACK = 1e-9
#: The fewest pairs (m n) at which coordinates whose outputs along a step are a polynomial (plain, data-span:
#: formed from every pair's coefficients, which the movable pairs then read too) are screened: below it the
#: screen's bookkeeping costs more than the outputs it skips (low_signal at m = 100 in data-span coordinates:
#: 7 % more CPU at alpha = 0.3 and 3), as for the neuron margins (``polynomial_guards.MARGIN_MIN_PAIRS``).
PRODUCT_SCREEN_MIN_PAIRS = 20_000


class OutputReach:
    """Per piece: E_j (m,), the bound on ||g_j - g_j(t_0)|| summed over the piece's steps so far, and the end
    of the last step it covers (a step that does not start there cannot be chained to the piece's start)."""

    def __init__(self, m: int, t_start: float) -> None:
        self.moved = np.zeros(m)
        self.t_end = t_start

    def advance(self, excursion: np.ndarray, t_a: float, h: float) -> bool:
        """Add the step [t_a, t_a + h] whose excursion bounds are ``excursion`` (m,); whether it continues the
        chain from the piece's start (else the bounds no longer hold and every later step is formed in full)."""
        if t_a != self.t_end:
            self.t_end = None
            return False
        self.moved += excursion
        self.t_end = t_a + h
        return True


#: From this many numbers per row on, :func:`bound_norms` reduces with einsum (no squared copy of A).
EINSUM_MIN_ROW = 16
#: From this many rows per block on, :func:`bound_norms` of shorter rows runs the compiled loop.
KERNEL_MIN_ROWS = 4096


def bound_norms(A: np.ndarray) -> np.ndarray:
    """The Euclidean norms over the last axis of a float64 array A (..., k), for bounds only (the screens'
    excursions), summed in an order of their own, so they serve decisions that carry a relative slack
    (:data:`EXCURSION_SLACK`, ``polynomial_guards.SCREEN_SLACK``), never values that reach the state.

    Over a short axis, sqrt((A . A) @ 1), a matrix-vector product, costs about half of einsum's reduction
    (k = 3 at m = 20000: 0.25 against 0.47 ms for four coefficient blocks); from :data:`EINSUM_MIN_ROW`
    numbers per row on, einsum's reduction, which forms no squared copy of A, is the cheaper (k = 100 at
    m = 20000: 2.5 against 14.7 ms for four blocks of 16 MB, docs/flow.md "Cost"). Shorter rows in blocks of
    :data:`KERNEL_MIN_ROWS` rows and more (a 2- or 3-dimensional float64 array) go to a compiled loop where
    :mod:`~simulate.flow.jit` allows (:func:`~simulate.flow.screen_kernel.row_norms`: 75 against 213 us a call
    in the stall window's run at m = 20000, d = 3); in smaller blocks the call costs what it saves (11 against
    10.5 us at m = 100), and a process that never meets such a block never loads the kernel (0.3 s)."""
    if A.shape[-1] >= EINSUM_MIN_ROW:
        return np.sqrt(np.einsum("...k,...k->...", A, A))
    rows_contiguous = A.ndim in (2, 3) and A.dtype == np.float64 and A.strides[-2:] == (8 * A.shape[-1], 8)
    kernel = jit.kernels("screen_kernel") if rows_contiguous and A.shape[-2] >= KERNEL_MIN_ROWS else None
    if kernel is None:
        return np.sqrt((A * A) @ np.ones(A.shape[-1]))
    blocks = A if A.ndim == 3 else A[None]
    norms = np.empty(blocks.shape[:2])
    for block, out in zip(blocks, norms, strict=True):  # each block a C-contiguous array: the loop vectorizes
        kernel.row_norms(block, out)
    return norms if A.ndim == 3 else norms[0]


def product_excursion(amp_sizes: np.ndarray, row_sizes: np.ndarray) -> np.ndarray:
    """E_j >= sup over theta in [0, 1] of ||v_j(theta) w_j(theta) - v_j(0) w_j(0)|| (m,) where v_j = sum_a
    v_a,j theta^a and w_j = sum_b w_b,j theta^b, from |v_a,j| (``amp_sizes``, (p + 1, m)) and bounds on
    ||w_b,j|| (``row_sizes``, (p + 1, m)): v w - v_0 w_0 = sum over (a, b) != (0, 0) of theta^(a + b) v_a w_b,
    so

        ||v_j w_j - v_j(0) w_j(0)|| <= |v_0,j| sum_{b >= 1} ||w_b,j|| + (sum_{a >= 1} |v_a,j|) sum_b ||w_b,j||,

    the terms with b >= 1 and a = 0, then those with a >= 1 (no difference of sums that could cancel)."""
    moved_rows = row_sizes[1:].sum(axis=0)
    return amp_sizes[0] * moved_rows + amp_sizes[1:].sum(axis=0) * (row_sizes[0] + moved_rows)


def screens(coords: Any) -> bool:
    """Whether the screen applies to these coordinates at their size: they bound the contributions' excursion
    and have at least their ``screen_min_pairs`` pairs (log coordinates at any size, plain and data-span ones
    from :data:`PRODUCT_SCREEN_MIN_PAIRS`). Its pieces need the outputs at their start."""
    has_bound = getattr(coords, "contribution_excursion", None) is not None
    return has_bound and coords.m * coords.n >= getattr(coords, "screen_min_pairs", 0)


def output_guards_stay_off(
    guards: Any, coefficients: np.ndarray, t_a: float, h: float, row_sizes: np.ndarray | None = None
) -> bool:
    """Whether no output guard can reach its surface in the step from t_a of size h with the power-basis dense
    output ``coefficients`` (p + 1, size): no sliding weight's guard (mu or 1 - mu) comes within the touching
    tolerance of 0, and the stopping rule's lower bound on the box of outputs stays above 0 (step 4 of the
    module's screen); then the step's outputs need not be formed (:mod:`simulate.flow.output_screen`). False
    where the screen does not apply: no output guard, merged samples of opposite labels, an arithmetic other
    than float64, coordinates without an excursion bound, a step that does not continue the piece's chain of
    steps, or a network of fewer pairs than its coordinates' ``screen_min_pairs``. ``row_sizes``: the norms of
    the coefficients' row blocks (p + 1, m) (:func:`bound_norms`), when the caller has formed them (the step's
    pair screen, ``polynomial_guards._movable_pairs``, reads the same)."""
    coords = guards.coords
    if (
        not screens(coords)
        or not guards.needs_output
        or guards.start_outputs is None
        or coords.samples.opposite
        or coords.arith.name != "float64"
    ):
        return False
    excursion_of = coords.contribution_excursion
    reach = getattr(guards, "output_reach", None)
    if reach is None:  # the piece's first step starts at its start, where the guards formed the outputs
        reach = guards.output_reach = OutputReach(coords.m, t_a)
    if not reach.advance(excursion_of(coefficients, row_sizes), t_a, h):
        return False
    # the gates' sum first bounded by sum_j E_j (one pass over m numbers): where that bound already keeps every
    # guard off its surface, so does the gated one (it is smaller), and the (m, n) product is not formed
    moved = abs(float(coords.c)) * coords.x_norms
    return _guards_stay_off(guards, moved * reach.moved.sum()) or _guards_stay_off(
        guards, moved * (reach.moved @ guards.weights.active)
    )


def _guards_stay_off(guards: Any, reach_F: np.ndarray) -> bool:
    """Whether every output guard stays off its surface while each representative's output moves by at most
    ``reach_F`` (n,) from the piece's start (steps 2 to 4 of the module's screen)."""
    f0 = np.asarray(guards.start_outputs[0], dtype=np.float64)
    reach_f = guards.coords.samples.outputs(reach_F) * (1 + EXCURSION_SLACK)  # every sample's (a positive map)
    if guards.n_sliding and not _weights_stay_inside(guards, f0, reach_f):
        return False
    return guards.stop_rule is None or _stop_stays_off(guards, f0, reach_f)


def _stop_stays_off(guards: Any, f0: np.ndarray, reach_f: np.ndarray) -> bool:
    """Whether the stopping rule's value stays above 0 on the box f0 -+ ``reach_f`` (step 4): its lower bound
    there (:meth:`~simulate.stopping.StopRule.lower_bound`) exceeds the relative slack of the value at f0."""
    coords, rule = guards.coords, guards.stop_rule
    bound = rule.lower_bound(f0 - reach_f, f0 + reach_f, coords.y, coords.arith)
    return bool(bound > EXCURSION_SLACK * abs(float(rule.value(f0[None], coords.y, coords.arith)[0])))


def _weights_stay_inside(guards: Any, f0: np.ndarray, reach_f: np.ndarray) -> bool:
    """Whether every sliding weight's guard stays above the touching tolerance while every sample's output
    stays within ``reach_f`` (n,) of its value f0 at the piece's start (steps 2 and 3 of the module's screen)."""
    coords, weights = guards.coords, guards.weights
    S0 = coords.sample_factors(f0[None])[0][0]
    S_ends = coords.sample_factors(np.stack([f0 + reach_f, f0 - reach_f]))[0]
    S_low = np.minimum(S_ends.min(axis=0), S0)
    S_high = np.maximum(S_ends.max(axis=0), S0)
    change = np.maximum(S_high - S0, S0 - S_low)
    if not np.all(np.isfinite(change)):
        return False
    u0 = weights.mu_times_jump(S0)
    reach_u = np.abs(weights.map) @ change * (1 + EXCURSION_SLACK)
    u_low, u_high = u0 - reach_u, u0 + reach_u
    jump_low, jump_high = S_low[weights.pair_cols], S_high[weights.pair_cols]
    low = _least_product(u_low, u_high, jump_low, jump_high)
    high = _least_product(jump_low - u_high, jump_high - u_low, jump_low, jump_high)
    tol = coords.arith.touch_tol
    return bool(np.all(low / guards.weight_units > tol) and np.all(high / guards.weight_units > tol))


def _least_product(a_low: np.ndarray, a_high: np.ndarray, b_low: np.ndarray, b_high: np.ndarray) -> np.ndarray:
    """The least value of a b for a in [a_low, a_high] and b in [b_low, b_high], elementwise (a corner)."""
    return np.minimum(np.minimum(a_low * b_low, a_low * b_high), np.minimum(a_high * b_low, a_high * b_high))

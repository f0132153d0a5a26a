"""The sliding weights' guard units from a piece's first field evaluation (fls.simulate.flow.start_jumps):
the same numbers, bit for bit, as from an output evaluation at the start, in every coordinate system, with
merged and opposite samples and every loss, where the field is numpy's (``FLS_NUMBA=0``); the compiled field
(fls.simulate.flow.field_kernel) sums the outputs in another order and takes exp from the C library, so there
they agree to its rounding (a unit is a jump squared, a positive scale of the weights' guards)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.simulate.flow import jit
from fls.simulate.flow.api import make_coordinates
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.events import PieceGuards
from fls.simulate.flow.modes import Mode, SlidingWeights
from fls.simulate.flow.piece_field import EventCounts, PieceField
from fls.simulate.flow.start_jumps import StartJumps, start_jumps
from fls.simulate.initialization import init_params
from fls.theory.losses import LOSSES


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 30),
    d=st.integers(1, 30),
    m=st.integers(1, 40),
    kind=st.sampled_from(["plain", "span", "log"]),
    loss=st.sampled_from(LOSSES),
    repeat=st.sampled_from([None, 1.0, -2.0]),
    log_alpha=st.floats(-3.0, 1.0),
    seed=st.integers(0, 2**16),
    compiled=st.booleans(),
)
def test_the_first_evaluations_jumps_are_the_output_evaluations(
    n, d, m, kind, loss, repeat, log_alpha, seed, compiled
):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if repeat is not None:  # a repeated or an opposite (rescaled) sample: merged groups, offsets
        X[1] = repeat * X[0]
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    arith = float_arithmetic(loss)
    W, v = init_params(m, d, alpha=10.0**log_alpha, scheme="random_sign", seed=seed)
    with pytest.MonkeyPatch.context() as switch:
        if not compiled:
            switch.setenv(jit.SWITCH, "0")
        coords = make_coordinates(kind, W, v, X, y, 1.0 / m, arith)  # the field's kernel is chosen here
    start = coords.pack(W, v)
    D = coords.parts(start)[0]
    sliding = rng.random(D.shape) < 0.1
    weights = SlidingWeights(Mode((D > 0) & ~sliding, sliding), coords.X @ coords.X.T, arith)

    jumps = StartJumps(coords, weights, start)
    PieceField(coords, weights, EventCounts(), jumps=jumps)(start)  # the piece's first evaluation, at its start
    jumps.coords = None  # from here on an output evaluation (the fallback) would raise: the units are the field's
    from_outputs = PieceGuards(coords, weights, None, start=start)  # the units from an output evaluation
    from_field = PieceGuards(coords, weights, None, start=start, start_jumps=jumps)
    if compiled and coords._kernel is not None:
        np.testing.assert_allclose(from_field.weight_units, from_outputs.weight_units, rtol=1e-10)
    else:
        np.testing.assert_array_equal(from_field.weight_units, from_outputs.weight_units)
    assert from_field.start_outputs is None  # no output evaluation was made for them


def test_the_jumps_come_from_an_output_evaluation_without_one_at_the_start():
    """An evaluation at another state (a solver's copy of the start) is not taken; no jumps are given where
    the outputs at the start are known, or formed anyway for the output screen (log coordinates)."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((6, 3)), np.where(np.arange(6) % 2 == 0, 1.0, -1.0)
    W, v = init_params(4, 3, alpha=1.0, scheme="random_sign", seed=0)
    coords = make_coordinates("plain", W, v, X, y, 0.25, float_arithmetic("logistic"))
    start = coords.pack(W, v)
    D = coords.parts(start)[0]
    weights = SlidingWeights(Mode(D > 0, np.zeros(D.shape, dtype=bool)), coords.X @ coords.X.T, coords.arith)
    jumps = StartJumps(coords, weights, start)
    PieceField(coords, weights, EventCounts(), jumps=jumps)(start + 0.5)  # not the start: not kept
    expected = coords.sample_factors(coords.output(start[None], weights))[0][0]
    np.testing.assert_array_equal(jumps(), expected)
    assert start_jumps(coords, weights, start, coords.output(start[None], weights)) is None
    assert isinstance(start_jumps(coords, weights, start, None), StartJumps)
    log = make_coordinates("log", W, v, X, y, 0.25, coords.arith)  # its output screen reads the outputs
    assert start_jumps(log, weights, log.pack(W, v), None) is None

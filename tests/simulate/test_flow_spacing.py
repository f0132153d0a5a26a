"""The first step of a piece after an event, bounded by the events' spacing (docs/flow.md, "Cost")."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.simulate.data import make_data
from fls.simulate.flow import integrate_flow
from fls.simulate.flow.smooth import ExplicitPieces
from fls.simulate.flow.step_control import SPACING_STEPS, SPACING_WEIGHT, EventSpacing
from fls.simulate.initialization import init_params

lengths = st.floats(min_value=0.0, max_value=1e3, allow_nan=False)
steps = st.one_of(st.none(), st.floats(min_value=1e-12, max_value=1e3))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(lengths, steps), min_size=1, max_size=30))
def test_first_step_is_the_step_bounded_by_the_mean_spacing(pieces):
    """Against the running mean recomputed here: the step itself until a piece has had a length, then at most
    SPACING_STEPS times the mean of the pieces with a length (zero-length pieces are events of one instant)."""
    spacing, mean, start = EventSpacing(), None, 0.0
    for drawn, step in pieces:
        event = start + drawn
        length = event - start  # what the times resolve
        first = spacing.first_step(start, event, step)
        if length > 0:
            mean = length if mean is None else (1 - SPACING_WEIGHT) * mean + SPACING_WEIGHT * length
        if step is None or mean is None:
            assert first == step
        else:
            assert first == pytest.approx(min(step, SPACING_STEPS * mean), rel=1e-12)
            assert 0 < first <= step
        start = event


def test_spacing_bounds_the_restart_of_an_event_dense_run(monkeypatch):
    """low_signal at alpha = 0.3 (m = 100, RK23, span coordinates): events come far faster than the step the
    error control allows, so every piece after an event starts with at most SPACING_STEPS times the mean
    spacing (recomputed here from the pieces' starts), not with the step its event cut short (the restart
    took that step, tens of spacings long, before)."""
    starts, firsts = [], []
    run = ExplicitPieces.run

    def recorded(self, fun, jac, t0, y0, t_bound, guards, first_step, observer):
        starts.append(float(t0))
        firsts.append(first_step)
        return run(self, fun, jac, t0, y0, t_bound, guards, first_step, observer)

    monkeypatch.setattr(ExplicitPieces, "run", recorded)
    data = make_data("gaussian_mixture", preset="low_signal", seed=0, n_test=10)
    W, v = init_params(100, 100, alpha=0.3, scheme="random_sign", seed=0)
    result = integrate_flow(
        W, v, data.X, data.y, t_max=2.0, method="RK23", rtol=1e-6, atol=1e-8, save_at=[2.0]
    )
    assert result.info["events"] > 20
    mean, bounded = None, 0
    for k in range(1, len(starts)):
        length = starts[k] - starts[k - 1]
        if length > 0:
            mean = length if mean is None else (1 - SPACING_WEIGHT) * mean + SPACING_WEIGHT * length
        if mean is not None and firsts[k] is not None:
            assert firsts[k] <= SPACING_STEPS * mean * (1 + 1e-12)
            bounded += 1
    assert bounded > 20
    np.testing.assert_array_less(0.0, np.asarray([f for f in firsts[1:] if f is not None]))

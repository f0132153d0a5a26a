"""Runs that ended ``failed`` or ``diverged`` on flows that are unique and finite, and runs that the stress suite's
agreement check failed for reasons of the check (docs/flow.md, "Robustness").

The problems were found by the slow tier of the stress suite (tests/simulate/test_flow_stress.py) and are stored
as they were drawn (tests/simulate/data/):

- ``weight_exit_below_resolution``: RK45 at rtol 4.5e-11, span coordinates, squared loss, merged opposite
  samples. A sliding pair of a nearly fitted sample (s_i ~ 9e-11, a jump of 2.7e-9) leaves through mu = 0;
  the least-squares selection (2) puts its weight at 1.1e-8, inside [0, 1] by less than the weight's
  resolution, so the pair slid on and left through mu = 0 at once: 201 events in a row, ``failed``.
- ``garbage_dense_output``: DOP853 at atol 1e-4, span coordinates, exponential loss (n = d = 28, m = 40). The
  interpolant's extra stages met a field of 7e6 next to stages of 3 and the dense output was garbage (states
  of 1e143 between end points of 70); an event was located in it and its projection landed where the field
  overflows: ``diverged`` at t = 3.7e-5. Such a step is now rejected and retried smaller.
- ``jacobian_increment_overflow``: Radau, log coordinates, exponential loss. scipy's finite-difference Jacobian
  widened its increment tenfold per Jacobian on the log-amplitude of a neuron with no active sample (the field
  does not depend on it) to 1.5e4 times the component, exp overflowed there, the Jacobian had NaN entries and
  the factorization ended the run ``failed``.
- ``merged_field_jacobian``: BDF, d = 1, merged opposite samples, exponential loss at a field of 1e87 (no
  analytic Jacobian): scipy's finite-difference Jacobian had non-finite entries, every failed factorization
  restarted the piece at order 1 from a 10x smaller step, and the run ended 2.4e3 times the suite's bound from
  the tight one.
- ``overflowing_error_norm``: RK23, span coordinates, exponential loss, a field of 6e144 at the start (below the
  suite's 1e150, so it must run): the RMS norm of the field over atol 4e-12 overflowed to inf, the starting
  step was 0.01 d0 / inf = 0 and a division by it ended the run ``failed`` at t = 0.
- ``bdf_escape_from_a_small_init``: BDF at rtol 2.2e-6, atol 4.3e-5 on weights of 8e-5, exponential loss. The
  escape amplifies an early error 8e3-fold; the run was 22.6 times the fixed bound from the tight one and is
  3e-3 of the bound scaled by the measured amplification.
- ``stop_time_at_a_slow_target``: DOP853 at rtol 1e-11, atol 3.4e-8, squared loss, target 0.22. The stop
  times differ by 2.1e-6 (within their bound) and the final states, read at those two times, by 1.7 times the
  state's bound; at one time they differ by 1e-5 of it.
- ``stop_guard_at_roundoff``: Radau, squared loss, target 0.5, an antisymmetric init whose outputs are ~1e-13: the
  risk starts 2.8e-14 above the target. The stop guard was positive at the piece's start and at or below 0 at
  every sample of the first step (the dense output's roundoff), so no sample interval went from > 0 to <= 0 and
  the run ended ``not_reached`` at t_max where every other method reaches the target at t ~ 6e-16 (Radau and BDF).
"""

import numpy as np
import pytest

from fls.simulate.flow.modes import ACTIVE, HINT_TOL, INACTIVE, SLIDING, select_neuron_mode, weight_resolution
from fls.simulate.flow.step_control import initial_step
from fls.simulate.flow.tangent_rates import rate_scale
from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import check


@pytest.mark.parametrize(
    "name",
    [
        "weight_exit_below_resolution",
        "garbage_dense_output",
        "jacobian_increment_overflow",
        "merged_field_jacobian",
        "overflowing_error_norm",
        "stop_guard_at_roundoff",
    ],
)
def test_stored_stress_problem_ends_usably_and_agrees_with_the_tight_run(name):
    check(stored_problem(name))


@pytest.mark.parametrize("name", ["bdf_escape_from_a_small_init", "stop_time_at_a_slow_target"])
def test_stored_disagreement_meets_the_principled_bound(name):
    check(stored_problem(name))


def test_a_hinted_weight_within_its_resolution_of_the_bound_takes_the_hinted_side():
    """A sliding pair with a small jump (s_0 = -1e-9 against s_1 = 1) whose least-squares weight (2) is 1e-8:
    more than the fixed tolerance HINT_TOL from 0, less than the weight's resolution delta_0 / jump (the rate's
    resolution over the jump, ~1e-5). With the hint of an exit through mu = 0 it becomes inactive; without a
    hint it slides on."""
    s = np.array([-1e-9, 1.0])
    weight = 1e-8
    # the rate along x_0 vanishes at mu = -s_1 <x_1, x_0> / (s_0 ||x_0||^2) = weight
    X = np.array([[1.0, 0.0], [-weight * s[0] / s[1], 0.8]])
    norms = np.linalg.norm(X, axis=1)
    resolution = weight_resolution(np.abs(s[:1]) * norms[:1] ** 2, norms[:1], rate_scale(s, None, norms))[0]
    assert HINT_TOL < weight < resolution / 10
    side = np.array([SLIDING, ACTIVE], dtype=np.int8)
    touching = np.array([0])
    assert select_neuron_mode(X, s, 1.0, side, touching, side.copy())[0] == SLIDING
    assert select_neuron_mode(X, s, 1.0, side, touching, side.copy(), {0: INACTIVE})[0] == INACTIVE


def test_the_starting_step_is_positive_where_the_fields_rms_norm_overflows():
    """A field of 1e145 over the tolerance atol = 1e-12 of a component at 0 (span coordinates start there): its
    square overflows, and the RMS norms are taken scaled, so the starting step is a positive number (scipy's
    form gives inf, a step of 0 and a division by it)."""
    field, y0 = np.full(3, 1e145), np.array([0.0, 1.0, 1.0])
    step = initial_step(lambda t, y: field, 0.0, y0, field, 1.0, 2, 1e-12 + 1e-6 * np.abs(y0))
    assert 0.0 < step < 1e-100

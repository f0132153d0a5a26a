"""The wide network's step, formed in fewer passes, bit for bit as before (docs/flow.md, "Cost").

- The log coordinates' step tolerance (``LogCoordinates.state_tolerance``) forms the directions' rule only for
  the rows where it can be below the state's own rule (:func:`~simulate.flow.logcoords.direction_rule_rows`);
  the result is checked against the rule formed on every row and the smaller of the two taken, on states whose
  radii lie below, at and above the directions' norms, with atol from 0 to loose.
- The unit directions kept from an event's outputs for the restart's field (:mod:`~simulate.flow.kept_units`),
  formed afresh in the rows that changed: the same numbers as a full normalization, and the same run.
- The stage sums of the explicit steps (:func:`~simulate.flow.stage_sums.stage_sum`) against numpy's matrix
  product, signed zeros, infinities and NaN included.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.simulate.flow import integrate_flow
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.kept_units import KeptUnits
from fls.simulate.flow.logcoords import LogCoordinates, direction_rule_rows
from fls.simulate.flow.problems import stall_problem
from fls.simulate.flow.stage_sums import stage_sum
from fls.simulate.initialization import init_params


def every_row_rule(Y, m, d, rtol, atol):
    """Equation (2) of simulate/flow/tolerance.py in log coordinates on every row: the smaller of the state's
    own rule and the directions' (atol + rtol |w_jk|) ||u_j|| / r_j and log-norms' (atol + rtol r_j) / r_j."""
    U, rho = Y[: m * d].reshape(m, d), Y[m * d :]
    own = rtol * np.abs(Y) + atol
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        r = np.exp(rho)
        n = np.sqrt(np.einsum("jd,jd->j", U, U))
        directions = (rtol * np.abs(U * (r / n)[:, None]) + atol) * (n / r)[:, None]
        log_norms = (rtol * np.abs(r) + atol) / r
    return np.concatenate(
        [np.fmin(own[: m * d].reshape(m, d), directions).reshape(-1), np.fmin(own[m * d :], log_norms)]
    )


def _coords(m, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((4, d))
    sign = np.where(rng.random(m) < 0.5, -1.0, 1.0)
    return LogCoordinates(
        X, np.sign(rng.standard_normal(4)) + 0.5, 1.0, sign, float_arithmetic("logistic", None)
    )


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 10_000),
    st.integers(1, 30),
    st.integers(1, 6),
    st.floats(1e-13, 1e-3),
    st.one_of(st.just(0.0), st.just(1e-300), st.floats(1e-16, 1e-2)),
    st.floats(-3.0, 3.0),
)
def test_log_tolerance_is_bitwise_the_rule_formed_on_every_row(seed, m, d, rtol, atol, spread):
    """Radii exp(rho) around the directions' norms (from 1e-3 to 1e3 of them, some at exactly half and twice),
    tiny and huge radii, zero directions: the tolerance equals the every-row rule's bits."""
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((m, d)) * 10.0 ** rng.uniform(-2, 2, (m, 1))
    U[rng.random(m) < 0.1] = 0.0
    norms = np.sqrt(np.einsum("jd,jd->j", U, U))
    with np.errstate(divide="ignore"):
        rho = np.log(norms) + spread * rng.uniform(-1.0, 1.0, m)
    rho[rng.random(m) < 0.2] = np.log(norms[0] / 2) if norms[0] > 0 else 0.0
    rho[rng.random(m) < 0.1] = rng.choice([-800.0, 800.0, -30.0, 30.0])
    rho[~np.isfinite(rho)] = 0.0
    Y = np.concatenate([U.reshape(-1), rho])
    tolerance = _coords(m, d, seed).state_tolerance(Y, rtol, atol)
    expected = every_row_rule(Y, m, d, rtol, atol)
    np.testing.assert_array_equal(tolerance.view(np.uint64), expected.view(np.uint64))


def test_a_wide_network_at_small_radii_forms_no_directions_rule():
    """On the stall data at m = 20000 (radii ~1e-5, norms 1) every row keeps the state's own rule: the six
    passes over the directions and their exact norms are skipped, and the result is the every-row rule's."""
    _, _, X, y = stall_problem(1.0)
    m = 20000
    W, v = init_params(m, 3, alpha=1e-3 / m**0.5, scheme="random_sign", seed=0)
    coords = LogCoordinates(X, y, 1.0, np.sign(v), float_arithmetic("logistic", None))
    Y = coords.pack(W, v)
    U, rho = Y[: 3 * m].reshape(m, 3), Y[3 * m :]
    assert len(direction_rule_rows(U, np.exp(rho), 1e-7, 1e-10)) == 0
    assert len(direction_rule_rows(U, np.exp(rho), 1e-7, 0.0)) == m  # atol 0: every row is formed
    expected = every_row_rule(Y, m, 3, 1e-7, 1e-10)
    np.testing.assert_array_equal(coords.state_tolerance(Y, 1e-7, 1e-10), expected)


special = st.sampled_from([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-300, -1e300])
entries = st.one_of(special, st.floats(-1e6, 1e6))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 4), st.lists(entries, min_size=1, max_size=4), st.lists(entries, min_size=40, max_size=40)
)
def test_a_stage_sum_is_bitwise_numpys_matrix_product(k, weights, values):
    weights = np.resize(np.array(weights), k)
    stages = np.resize(np.array(values), (k, 10))
    with np.errstate(all="ignore"):
        expected = np.matmul(weights, stages, out=np.empty(10))
        got = stage_sum(weights, stages, np.empty(10))
    np.testing.assert_array_equal(got.view(np.uint64), expected.view(np.uint64))


def _normalize(U):
    norms = np.sqrt(np.einsum("...i,...i->...", U, U))
    return U / norms[..., None], norms


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 60), st.integers(1, 8), st.integers(0, 12))
def test_kept_units_with_the_changed_rows_formed_afresh_are_a_full_normalization(seed, m, d, changed):
    """Directions kept with their units, then some rows moved (a projection, NaN, a zero row): the units at
    the new directions equal a full normalization of them, bit for bit, whether the kept ones serve (few
    rows changed) or the block is normalized again (more than ``REFORM_FRACTION`` of them)."""
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((m, d)) * rng.uniform(0.1, 10.0, (m, 1))
    kept = KeptUnits()
    kept.keep(U, _normalize(U))
    moved = U.copy()
    rows = rng.integers(0, m, changed)
    moved[rows] = rng.choice([0.0, np.nan, 1.0], (len(rows), 1)) * rng.standard_normal((len(rows), d))
    with np.errstate(invalid="ignore", divide="ignore"):
        units, norms = kept.units(moved, _normalize)
        expected_units, expected_norms = _normalize(moved)
    np.testing.assert_array_equal(units.view(np.uint64), expected_units.view(np.uint64))
    np.testing.assert_array_equal(norms.view(np.uint64), expected_norms.view(np.uint64))
    assert kept.units(moved, lambda U: "formed") == "formed"  # used once


def test_a_wide_run_restarting_from_kept_units_is_the_run_without_them():
    """Stall data at m = 1000 (20 000 pairs, where events carry their outputs), log coordinates, to t = 0.3:
    every restart after an event reads the kept units, and the run has the same evaluations, events and
    final state bits as with every restart normalizing all directions."""
    _, _, X, y = stall_problem(1.0)
    m = 1000
    W, v = init_params(m, 3, alpha=1e-3 / m**0.5, scheme="random_sign", seed=0)

    def run():
        return integrate_flow(W, v, X, y, t_max=0.3, method="RK23", rtol=1e-7, atol=1e-10, save_at=[0.3])

    served = []
    serve = KeptUnits.units

    def counted(self, U, normalize):
        served.append(self._kept is not None)
        return serve(self, U, normalize)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(KeptUnits, "units", counted)
        kept = run()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(KeptUnits, "keep", lambda self, U, units: None)
        fresh = run()
    assert kept.info["events"] > 100 and sum(served) == len(served) >= kept.info["events"] - 1
    assert (kept.rhs_evals, kept.info["events"]) == (fresh.rhs_evals, fresh.info["events"])
    np.testing.assert_array_equal(kept.W, fresh.W)
    np.testing.assert_array_equal(kept.v, fresh.v)

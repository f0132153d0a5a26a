"""The stopping rules: each face measures what it names, the two faces agree, one object drives every engine."""

from fractions import Fraction

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fls.simulate.flow import integrate_flow
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.problems import switching_problem
from fls.simulate.flow.reference import mp_arithmetic
from fls.simulate.stopping import (
    ZERO_TRAIN_ERROR,
    Evaluation,
    PositiveClassLoss,
    TargetRisk,
    TrainAccuracy,
)
from fls.simulate.train import train_ensemble
from fls.theory.compiled import compile_field
from fls.theory.validation import ParameterError

ARITH = float_arithmetic("logistic")


def evaluation_at(f: np.ndarray, y: np.ndarray) -> Evaluation:
    """The discrete engines' view of binary outputs f (E, n) with labels y (n,)."""
    return Evaluation(
        torch.from_numpy(ARITH.losses(f, y)), torch.from_numpy(y * f > 0), torch.from_numpy(y > 0)
    )


def test_continuous_face_measures_what_it_names():
    y = np.array([1.0, 1.0, -1.0, -1.0, 1.0])
    f = np.array([[2.0, -0.5, -1.0, 0.3, 4.0], [2.0, 0.5, -1.0, -0.3, 4.0]])
    losses = compile_field("logistic").losses(f, y)
    assert np.allclose(TargetRisk(0.1).value(f, y, ARITH), losses.mean(-1) - 0.1)
    assert np.allclose(PositiveClassLoss(0.1).value(f, y, ARITH), losses[:, y > 0].mean(-1) - 0.1)
    # Margins: row 0 has 2 errors (x2: -0.5 and x4: -0.3), row 1 has none.
    assert TrainAccuracy(0.6).value(f, y, ARITH)[0] <= 0 < TrainAccuracy(0.8).value(f, y, ARITH)[0]
    assert ZERO_TRAIN_ERROR.value(f, y, ARITH)[1] < 0 < ZERO_TRAIN_ERROR.value(f, y, ARITH)[0]


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 40),
    shift=st.floats(-1.0, 3.0),
    eps=st.floats(0.01, 1.0),
    level=st.fractions(0, 1).filter(lambda q: q > 0),
)
def test_the_two_faces_of_every_rule_agree(seed, n, shift, eps, level):
    rng = np.random.default_rng(seed)
    y = rng.choice([-1.0, 1.0], n)
    y[0] = 1.0  # the positive-class rule needs a positive sample
    f = y * (shift + rng.standard_normal((4, n)))  # 4 members; no margin is exactly 0
    evaluation = evaluation_at(f, y)
    for rule in (TargetRisk(eps), PositiveClassLoss(eps), TrainAccuracy(float(level)), ZERO_TRAIN_ERROR):
        assert (rule.value(f, y, ARITH) <= 0).tolist() == rule.reached(evaluation).tolist(), rule


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), members=st.integers(0, 5), scale=st.floats(1e-3, 1e3))
def test_the_target_risk_is_numpys_mean_to_the_last_bit(seed, n, members, scale):
    """TargetRisk.value forms the mean without numpy's Python wrapper (the flow engine evaluates it at every
    step and event): bit for bit ndarray.mean's value, for one output vector and for a batch of them."""
    rng = np.random.default_rng(seed)
    y = rng.choice([-1.0, 1.0], n)
    f = scale * rng.standard_normal((members, n) if members else n)
    expected = ARITH.losses(f, y).mean(-1) - 0.05
    np.testing.assert_array_equal(TargetRisk(0.05).value(f, y, ARITH), expected)


def test_a_zero_margin_is_the_boundary_of_the_accuracy_rule():
    """The continuous face counts a zero margin as met (value 0), the discrete one as an error."""
    y = np.array([1.0, -1.0, 1.0])
    f = np.array([[2.0, -1.0, 0.0]])
    assert ZERO_TRAIN_ERROR.value(f, y, ARITH)[0] == 0
    assert not ZERO_TRAIN_ERROR.reached(evaluation_at(f, y)).item()


@pytest.mark.parametrize(
    "rule", [TargetRisk(0.3), PositiveClassLoss(0.3), TrainAccuracy(0.6), ZERO_TRAIN_ERROR]
)
def test_continuous_face_in_mpmath_matches_float(rule):
    rng = np.random.default_rng(1)
    y = np.array([1.0, -1.0, 1.0, 1.0, -1.0])
    f = rng.standard_normal((3, 5))
    with mpmath.workdps(30):
        arith = mp_arithmetic("logistic", 30)
        value = arith.to_float(rule.value(arith.convert(f), arith.convert(y), arith))
    np.testing.assert_allclose(value, rule.value(f, y, ARITH), rtol=1e-13, atol=1e-15)


@given(n=st.integers(1, 120), level=st.fractions(0, 1).filter(lambda q: q > 0), seed=st.integers(0, 10**6))
def test_train_accuracy_counts_exactly(n, level, seed):
    correct = torch.from_numpy(np.random.default_rng(seed).random((3, n)) < 0.9)
    reached = TrainAccuracy(float(level)).reached(Evaluation(torch.zeros(3, n, dtype=torch.float64), correct))
    decimal = Fraction(repr(float(level)))  # the level as the decimal it prints as
    assert reached.tolist() == [Fraction(int(c.sum()), n) >= decimal for c in correct]


@pytest.mark.parametrize(
    ("level", "n", "count", "expected"),
    [(0.99, 100, 99, True), (0.99, 100, 98, False), (0.1, 10, 1, True), (0.3, 10, 2, False)],
)
def test_train_accuracy_reads_the_level_as_a_decimal(level, n, count, expected):
    correct = torch.zeros(1, n, dtype=torch.bool)
    correct[0, :count] = True
    assert TrainAccuracy(level).reached(Evaluation(torch.zeros(1, n), correct)).item() is expected
    assert TrainAccuracy(level).required(n) == (count if expected else count + 1)


def test_positive_class_rule_needs_binary_labels():
    evaluation = Evaluation(torch.zeros(2, 4, dtype=torch.float64), torch.ones(2, 4, dtype=torch.bool), None)
    with pytest.raises(ParameterError, match="PositiveClassLoss"):
        PositiveClassLoss(0.1).reached(evaluation)
    with pytest.raises(ParameterError, match="at least one sample with y = \\+1"):
        PositiveClassLoss(0.1).check_labels(-np.ones(4))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TargetRisk(0.0), "eps = 0.0 is out of range; allowed: \\(0, inf\\)"),
        (lambda: PositiveClassLoss(float("nan")), "eps = nan is out of range"),
        (lambda: TrainAccuracy(0.0), "level = 0.0 is out of range; allowed: \\(0.0, 1.0\\]"),
        (lambda: TrainAccuracy(1.5), "level = 1.5 is out of range"),
        (lambda: TargetRisk(0.1, every=0), "every = 0 is out of range; allowed: integers >= 1"),
        (lambda: TrainAccuracy(0.9, every=2.5), "every must be an integer"),
    ],
)
def test_bad_parameters_name_the_parameter_and_its_range(make, message):
    with pytest.raises(ParameterError, match=message):
        make()


def test_every_sets_the_checked_steps():
    rule = TargetRisk(0.1, every=5)
    assert [k for k in range(12) if rule.due(k)] == [0, 5, 10]
    assert all(TargetRisk(0.1).due(k) for k in range(5))


def test_one_rule_object_drives_the_flow_and_the_discrete_engine():
    W, v, X, y = switching_problem()
    rule = TargetRisk(0.1)
    flow = integrate_flow(W, v, X, y, stop_rule=rule, t_max=100.0)
    eta = 1e-2
    (gd,) = train_ensemble(W[None], v[None], X, y, eta=eta, max_steps=10_000, stop=rule)
    assert flow.status == gd.status == "target_reached"
    assert flow.risk[-1] == pytest.approx(0.1, abs=1e-9) and gd.risk[-1] <= 0.1 < gd.risk[-2]
    assert abs(gd.t_stop - flow.t_stop) <= 2 * eta  # GD stops within O(eta) of tau_eps

"""The implicit method's work in field-evaluation equivalents, which the stiffness test's trial prices
(`fls.simulate.flow.implicit_cost`, docs/flow.md "Choosing a method")."""

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import BDF, Radau

from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.coords import PlainCoordinates
from fls.simulate.flow.coupled_jacobian import CoupledJacobian, DenseFactor
from fls.simulate.flow.coupled_radau import IDENTITY
from fls.simulate.flow.implicit_cost import (
    CALL_FLOPS,
    COMPLEX_FACTOR,
    STRUCTURED_FACTOR_CALLS,
    STRUCTURED_SOLVE_CALLS,
    AnalyticJacobian,
    LinearAlgebraCount,
    OperationPrices,
    factorization_flops,
    solve_flops,
)
from fls.simulate.flow.modes import Mode, SlidingWeights
from fls.simulate.flow.step_control import trial_steps
from fls.simulate.flow.stiffness import StiffnessMonitor
from fls.simulate.flow.tolerance import StepTolerance
from fls.simulate.initialization import init_params
from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_stress import check, run


class LinearJacobian:
    """The Jacobian of y' = A y, priced as the field of one sample on a state of A's size."""

    def __init__(self, A: np.ndarray) -> None:
        self.A = A
        self.prices = OperationPrices(1, A.shape[0])

    def __call__(self, y: np.ndarray) -> np.ndarray:
        return self.A


@settings(max_examples=50, deadline=None)
@given(size=st.integers(1, 40), columns=st.integers(0, 3), complex_matrix=st.booleans())
def test_the_operation_counts_are_those_of_lu_and_triangular_solves(size, columns, complex_matrix):
    """LU of N x N: sum over the N - 1 elimination steps k of (N - k) divisions and 2 (N - k)^2 multiply-adds,
    which is (2/3) N^3 to leading order (Golub & Van Loan 3.2); a solve: two triangular sweeps of N^2
    multiply-adds, 2 N^2 operations per column; a complex operation counts four real ones."""
    matrix = np.eye(size, dtype=complex if complex_matrix else float)
    elimination = sum((size - k) + 2 * (size - k) ** 2 for k in range(1, size))
    scale = COMPLEX_FACTOR if complex_matrix else 1.0
    assert factorization_flops(matrix) - CALL_FLOPS == pytest.approx(scale * 2 / 3 * size**3, rel=2.5 / size)
    assert abs(elimination - 2 / 3 * size**3) <= 2.5 / size * 2 / 3 * size**3
    rhs = np.ones((size, columns) if columns else size, dtype=matrix.dtype)
    assert solve_flops(rhs) - CALL_FLOPS == scale * 2 * size**2 * max(columns, 1)


@pytest.mark.parametrize("solver_class", [Radau, BDF])
def test_the_count_sees_every_factorization_of_the_solver(solver_class):
    """On a stiff linear system the counted factorizations are scipy's own count (Radau: one real and one
    complex per factorization, BDF: one real), and the operations add up from them and the solves."""
    rng = np.random.default_rng(3)
    A = -np.diag(10.0 ** rng.uniform(0, 5, 6)) + 0.1 * rng.standard_normal((6, 6))
    solver = solver_class(lambda t, y: A @ y, 0.0, np.ones(6), 10.0, jac=A, rtol=1e-6, atol=1e-9)
    count = LinearAlgebraCount(solver)
    for _ in range(30):
        solver.step()
    assert count.factorizations == solver.nlu > 0 and count.solves > 0
    real = factorization_flops(np.eye(6))
    complexes = count.factorizations // 2 if solver_class is Radau else 0
    factored = (count.factorizations - complexes) * real + complexes * factorization_flops(np.eye(6, dtype=complex))
    assert factored + count.solves * solve_flops(np.ones(6)) <= count.flops
    assert count.flops <= factored + count.solves * solve_flops(np.ones(6, dtype=complex))


def test_the_prices_match_the_measured_order_of_magnitude():
    """On the stored slow-tier problem (n = 8 distinct samples, a state of 532 numbers) a real LU is priced
    at 160 field evaluations (measured 140 on one core), a complex one at 650 (430), the analytic Jacobian
    at 33 (17); a state of 20 numbers prices every LU below one evaluation, as measured."""
    prices = OperationPrices(8, 532)
    assert 100 < prices.evaluations(factorization_flops(np.eye(532))) < 200
    assert 400 < prices.evaluations(factorization_flops(np.eye(532, dtype=complex))) < 800
    assert 10 < prices.evaluations(prices.jacobian) < 50
    small = OperationPrices(1, 20)
    assert small.evaluations(factorization_flops(np.eye(20, dtype=complex))) < 1.0


def test_the_analytic_jacobian_is_the_coordinates_and_is_counted():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((5, 3)), np.array([1.0, -1.0, 1.0, -1.0, 1.0])
    W, v = init_params(4, 3, alpha=1.0, scheme="random_sign", seed=2)
    coords = PlainCoordinates(X, y, 1.0, 4, float_arithmetic("logistic"))
    weights = SlidingWeights(Mode(W @ X.T > 0, np.zeros((4, 5), dtype=bool)), X @ X.T, coords.arith)
    counts = SimpleNamespace(jac_evals=0)
    jac = AnalyticJacobian(coords, weights, "logistic", counts)
    Y = coords.pack(W, v)
    np.testing.assert_array_equal(jac(Y), coords.jacobian(Y, weights, "logistic"))
    assert counts.jac_evals == 1
    assert jac.prices == OperationPrices(5, coords.size)


def test_structured_factorizations_are_priced_by_their_own_operations():
    """A state of 156 numbers (m = 12 neurons of p = 13 components, k = 5 samples), above the size from which
    Radau's systems are factored by structure: the Jacobian comes in parts and is priced by them, a structured
    factorization of shift I - J by its own operations, 2 m p^3 + 2 m p^2 l + 2 l^2 N + (2/3) l^3 (complex:
    times four) and its calls, below a dense LU's (2/3) N^3; one that fell back to the dense LU is priced
    as one, and so are their solves."""
    rng = np.random.default_rng(4)
    m, d = 12, 12
    X, y = rng.standard_normal((5, d)), np.array([1.0, -1.0, 1.0, -1.0, 1.0])
    W, v = init_params(m, d, alpha=1.0, scheme="random_sign", seed=5)
    coords = PlainCoordinates(X, y, 1.0, m, float_arithmetic("logistic"))
    weights = SlidingWeights(Mode(W @ X.T > 0, np.zeros((m, 5), dtype=bool)), X @ X.T, coords.arith)
    jac = AnalyticJacobian(coords, weights, "logistic", SimpleNamespace(jac_evals=0))
    J = jac(coords.pack(W, v))
    assert isinstance(J, CoupledJacobian)
    size, p, rank = J.size, d + 1, J.right.shape[0]
    assert jac.prices.structure == (m, p, rank)
    assert jac.prices.jacobian < OperationPrices(5, size).jacobian
    system = (1e3 + 4e2j) * IDENTITY - J
    factor = J.shifted_factor(system.shift)
    assert factor.structured
    operations = 2 * m * p**3 + 2 * m * p * p * rank + 2 * rank * rank * size + 2 / 3 * rank**3
    expected = STRUCTURED_FACTOR_CALLS * CALL_FLOPS + COMPLEX_FACTOR * operations
    assert factorization_flops(system, factor) == pytest.approx(expected)
    dense_price = factorization_flops(np.eye(size, dtype=complex))
    assert factorization_flops(system, factor) < dense_price
    assert factorization_flops(system, DenseFactor(J, system.shift)) == dense_price
    b = np.ones(size, dtype=complex)
    solve = STRUCTURED_SOLVE_CALLS * CALL_FLOPS + COMPLEX_FACTOR * (2 * m * p * p + 4 * size * rank + 2 * rank**2)
    assert solve_flops(b, factor) == pytest.approx(solve)
    assert solve_flops(b, DenseFactor(J, system.shift)) == solve_flops(b) == CALL_FLOPS + COMPLEX_FACTOR * 2 * size**2


def test_the_race_ends_once_the_implicit_method_has_caught_up():
    """y' = A y with eigenvalues -1e6 and -1, on the slow manifold, from an explicit step at RK23's stability
    boundary (2.5e-6): Radau's steps climb and its work falls below RK23's over the same time within a few
    steps, where the trial ends; a race it cannot win (a target rate 1e6 times lower) goes on to its last
    step."""
    A = np.array([[-1e6, 1e6 - 1.0], [0.0, -1.0]])
    rate = 3 / 2.5e-6
    trial = trial_steps(
        Radau, lambda y: A @ y, np.ones(2), 2.5e-6, StepTolerance(1e-6, 1e-9), 4, 24, LinearJacobian(A),
        lambda time, work: work < rate * time,
    )
    assert trial.work[-1] < rate * sum(trial.sizes) and len(trial.sizes) < 24
    assert all(work >= rate * time for work, time in zip(trial.work[3:-1], np.cumsum(trial.sizes)[3:-1]))
    assert trial.work[-1] > trial.evaluations  # its Jacobians, factorizations and solves included
    lost = trial_steps(
        Radau, lambda y: A @ y, np.ones(2), 2.5e-6, StepTolerance(1e-6, 1e-9), 4, 24, LinearJacobian(A),
        lambda time, work: work < 1e-6 * rate * time,
    )
    assert len(lost.sizes) == 24


def test_the_monitor_prices_the_trial_with_the_jacobian_it_is_given():
    """The stiffness test's gain is the explicit rate over the trial's priced rate."""
    A = np.array([[-1e6, 1e6 - 1.0], [0.0, -1.0]])
    monitor = StiffnessMonitor("RK23", "Radau", StepTolerance(1e-6, 1e-9))
    gain = monitor.implicit_gain(lambda y: A @ y, LinearJacobian(A), np.ones(2), 2.5e-6)
    assert gain > 1.0


@pytest.mark.timeout(60)
def test_a_stiff_run_is_switched_by_a_trial_priced_with_the_analytic_jacobian():
    """A slow-tier time-out (RK23 in plain coordinates, exponential loss, n = 8, d = 13, m = 38: a state of
    532 numbers, Jacobian eigenvalue -6e7). The trial took four Jacobians by differences (533 evaluations
    each) in 4 Radau steps, priced Radau at 25 times the explicit rate, and the run stayed explicit at 8e7
    evaluations per time unit (over 120 s). With the engine's analytic Jacobian and the LU factorizations
    priced by their operations, the race catches up after 14 steps and the run switches at t = 8.2e-6 (6.9e-6 to the end: the order
    test's starting step differs)."""
    problem = stored_problem("stiff_trial_analytic_jacobian")
    result = run(replace(problem, t_max=1e-4))
    switch = result.info["method_switch"]
    assert (switch["from"], switch["to"], switch["reason"]) == ("RK23", "Radau", "stiff")
    assert switch["gain"] > 1.0 and result.info["stiffness"]["trials"] == 1
    assert result.status == "not_reached" and result.rhs_evals < 3000


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_stiff_run_priced_with_the_analytic_jacobian_passes_the_stress_check():
    """The whole check of that problem (run, reference and amplification): about 9 s."""
    check(stored_problem("stiff_trial_analytic_jacobian"))

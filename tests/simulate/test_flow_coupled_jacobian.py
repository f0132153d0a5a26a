"""The Jacobian as neurons' blocks plus a low-rank coupling, its shifted factorizations and the Radau that
uses them (fls.simulate.flow.coupled_jacobian, fls.simulate.flow.coupled_radau; docs/flow.md "Cost").

The structured solve is checked against numpy's dense LU of the assembled matrix (LAPACK, independent of the
Woodbury form) by its backward error, and the Radau on it against scipy's Radau on the dense Jacobian.
"""

import traceback
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import Radau
from scipy.integrate._ivp import radau
from scipy.linalg import expm

from fls.simulate.flow import coupled_jacobian
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.coupled_jacobian import (
    BACKWARD_ERROR_BOUND,
    CoupledJacobian,
    DenseFactor,
    StructuredFactor,
    neuron_index,
)
from fls.simulate.flow.coupled_radau import CoupledRadau
from tests.simulate.test_flow_grazing import stored_problem
from tests.simulate.test_flow_jacobians import make_field, problem, state
from tests.simulate.test_flow_stress import check, run

#: The backward error a solve must reach: LAPACK's dense LU reaches a few eps on these small systems.
SOLVE_PRECISION = 1e-12


def backward_error(jacobian: CoupledJacobian, shift: complex, x: np.ndarray, b: np.ndarray) -> float:
    A = shift * np.eye(jacobian.size) - np.asarray(jacobian)
    return float(np.abs(b - A @ x).max() / (np.abs(A).sum(axis=1).max() * np.abs(x).max() + np.abs(b).max()))


def random_coupled(seed: int, m: int = 30, row: int = 3, rank: int = 4, scale: float = 1.0) -> CoupledJacobian:
    """Random parts of a Jacobian of m neurons of row + 1 components (a state of 120 by default: the smallest
    factored by structure)."""
    rng = np.random.default_rng(seed)
    size = m * (row + 1)
    return CoupledJacobian(
        rng.standard_normal((m, row + 1, row + 1)),
        neuron_index(m, row),
        scale * rng.standard_normal((size, rank)),
        rng.standard_normal((rank, size)),
    )


def test_neuron_index_lists_each_neuron_row_then_its_number():
    assert neuron_index(2, 3).tolist() == [[0, 1, 2, 6], [3, 4, 5, 7]]


def test_the_parts_assemble_to_blocks_plus_the_coupling():
    jacobian = random_coupled(1)
    expected = jacobian.left @ jacobian.right
    for j, components in enumerate(jacobian.index):
        expected[np.ix_(components, components)] += jacobian.blocks[j]
    np.testing.assert_array_equal(np.asarray(jacobian), expected)
    x = np.random.default_rng(2).standard_normal(jacobian.size) * (1 + 2j)
    np.testing.assert_allclose(jacobian.matvec(x), expected @ x, rtol=1e-13, atol=1e-13)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["plain", "log", "span"]),
    merge=st.sampled_from(["none", "same", "scaled", "opposite"]),
    loss=st.sampled_from(["logistic", "exponential", "squared"]),
    magnitude=st.floats(-2.0, 6.0),
    angle=st.sampled_from([0.0, 0.85, -0.85]),
)
def test_shifted_solves_of_the_engine_jacobians_meet_the_dense_lu(seed, kind, merge, loss, magnitude, angle):
    """Every coordinate system's Jacobian (merged samples, sliding pairs), shifts from 1e-2 to 1e6 real or at
    Radau's complex angle, factored by structure whatever the state's size: the solve's backward error is a
    dense LU's (1e-12) where the dense LU is taken or the shift dominates the neurons' own blocks (as at an
    implicit method's steps), and within the probe's bound sqrt(eps) wherever the structure is kept."""
    U, rho, X, y, sign, pairs = problem(seed, merge)
    arith = float_arithmetic(loss)
    coords, weights = make_field(kind, X, y, sign, U, pairs, arith)
    Y = state(kind, coords, U, rho)
    jacobian = coords.coupled_jacobian(Y, weights, loss)
    np.testing.assert_array_equal(coords.jacobian(Y, weights, loss), jacobian.dense())
    shift = 10.0**magnitude * np.exp(1j * angle) if angle else 10.0**magnitude
    b = np.random.default_rng(seed).standard_normal(jacobian.size)
    assert not jacobian.shifted_factor(shift).structured  # these states are below STRUCTURED_MIN_SIZE
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(coupled_jacobian, "STRUCTURED_MIN_SIZE", 0)
        factor = jacobian.shifted_factor(shift)
    dominant = abs(shift) > 100 * np.abs(jacobian.blocks).sum(axis=2).max()
    assert factor.structured or not dominant
    bound = SOLVE_PRECISION if dominant or not factor.structured else BACKWARD_ERROR_BOUND
    assert backward_error(jacobian, shift, factor.solve(b), b) <= bound


def test_a_singular_block_falls_back_to_the_dense_lu():
    """shift I - B_0 singular (the shift is an eigenvalue of neuron 0's block) while shift I - J is not."""
    jacobian = random_coupled(3)
    jacobian.blocks[0] = np.diag([2.0, -1.0, 0.5, 3.0])
    factor = jacobian.shifted_factor(2.0)
    assert isinstance(factor, DenseFactor)
    b = np.linspace(-1.0, 1.0, jacobian.size)
    assert backward_error(jacobian, 2.0, factor.solve(b), b) <= SOLVE_PRECISION


def test_a_structured_solve_beyond_its_precision_falls_back_to_the_dense_lu():
    """A shift next to an eigenvalue of a block: M^{-1} U is huge against the system's own size, the probe's
    backward error exceeds sqrt(eps), and the dense LU is taken."""
    jacobian = random_coupled(4, scale=1e3)
    jacobian.blocks[0] = np.diag([2.0, -1.0, 0.5, 3.0])
    shift = 2.0 + 1e-13
    structured = StructuredFactor(jacobian, shift)
    assert structured.backward_error() > BACKWARD_ERROR_BOUND
    factor = jacobian.shifted_factor(shift)
    assert not factor.structured
    b = np.linspace(-1.0, 1.0, jacobian.size)
    assert backward_error(jacobian, shift, factor.solve(b), b) <= SOLVE_PRECISION


@pytest.mark.parametrize("seed", [5, 6])
def test_coupled_radau_takes_scipys_radau_steps(seed):
    """y' = J y with a stiff coupling (eigenvalues to -1e5): the structured Radau and scipy's Radau on the
    dense J take as many steps, factorizations and Jacobians to t = 1, within 2 %, 5 % and 2 (their solves
    agree to rounding, so their step sizes agree to a small drift), with no dense factorization, and both end
    on the exact solution expm(J) y0."""
    parts = random_coupled(seed, m=25, row=4, rank=3)
    parts.blocks -= 5 * np.eye(5)  # stable neurons' own blocks
    parts.left[:] = -np.abs(parts.left) * 30  # a stiff coupling: - 30 |U| V with V = 10 |U|^T
    parts.right[:] = np.abs(parts.left.T) * 10
    dense = np.asarray(parts)
    eigenvalues = np.linalg.eigvals(dense).real
    assert eigenvalues.max() < 0 and eigenvalues.min() < -1e4
    y0 = np.linspace(1.0, 2.0, parts.size)
    options = {"rtol": 1e-9, "atol": 1e-12, "first_step": 1e-6}
    solvers = [
        CoupledRadau(lambda t, y: dense @ y, 0.0, y0, 1.0, jac=lambda t, y: parts, **options),
        Radau(lambda t, y: dense @ y, 0.0, y0, 1.0, jac=lambda t, y: dense, **options),
    ]
    steps = []
    for solver in solvers:
        steps.append(0)
        while solver.status == "running":
            solver.step()
            steps[-1] += 1
        assert solver.status == "finished"
        exact = expm(dense) @ y0  # a global error: 100 times the tolerance per step
        np.testing.assert_allclose(solver.y, exact, rtol=100 * options["rtol"], atol=100 * options["atol"])
    ours, theirs = solvers
    assert steps[0] == pytest.approx(steps[1], rel=0.02) and steps[1] > 100
    assert ours.nlu == pytest.approx(theirs.nlu, rel=0.05) and ours.njev == pytest.approx(theirs.njev, abs=2)
    assert ours.structured_factorizations == ours.nlu and ours.dense_factorizations == 0


def test_coupled_radau_leaves_a_dense_jacobian_on_scipys_path():
    matrix = -np.diag(np.arange(1.0, 5.0))
    ours = CoupledRadau(lambda t, y: matrix @ y, 0.0, np.ones(4), 1.0, jac=lambda t, y: matrix, rtol=1e-8)
    theirs = Radau(lambda t, y: matrix @ y, 0.0, np.ones(4), 1.0, jac=lambda t, y: matrix, rtol=1e-8)
    while ours.status == "running":
        ours.step()
        theirs.step()
        np.testing.assert_array_equal(ours.y, theirs.y)
    assert ours.njev == theirs.njev and ours.structured_factorizations == 0


#: Where the regression test stops the stored run: after its switch to Radau (t = 0.034) and 5 restarts of
#: Radau at events (to its own t_max, 1, the run takes 4.7 s of CPU, and took 66 s with dense factorizations).
STORED_T_MAX = 0.046


def test_a_stiff_log_run_factors_no_state_sized_matrix_after_its_switch(monkeypatch):
    """The slow Radau run in log coordinates of docs/flow.md "Limits" (DOP853 handed to Radau, n = 28, d = 21,
    m = 40, a state of 880, rtol 4.4e-11): its Radau steps after each event's restart factored both
    880-square systems densely (1 646 factorizations to t = 1, three quarters of its CPU time; 50 to
    t = 0.046). Now its Radau pieces factor none; the only dense ones left are the stiffness test's trial
    (scipy's Radau on differences, before the switch). And the run still agrees with its tight reference."""
    problem = replace(stored_problem("stiff_log_radau_restarts"), t_max=STORED_T_MAX)
    size = problem.W.size + problem.v.size
    dense_lu = radau.lu_factor
    outside_trial = []

    def counted(matrix, *args, **kwargs):
        in_trial = any(frame.filename.endswith("stiffness.py") for frame in traceback.extract_stack())
        if matrix.shape == (size, size) and not in_trial:
            outside_trial.append(matrix.dtype)
        return dense_lu(matrix, *args, **kwargs)

    monkeypatch.setattr(radau, "lu_factor", counted)
    result = run(problem)
    assert result.status == "t_max" and result.info["method_switches"][0]["to"] == "Radau"
    assert result.info["jac_evals"] > 4  # a Jacobian at each restart, and the run went on in Radau
    assert outside_trial == []
    monkeypatch.undo()
    check(problem)

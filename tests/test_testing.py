"""fls.testing: the example of docs/testing.md runs, and the checkers catch a deliberately wrong closed form."""

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from fls.testing import (
    assert_field_matches_autograd,
    assert_kernel_matches_monte_carlo,
    assert_trajectory_matches_flow,
    problems,
)
from fls.theory import vector_field

PAGE = Path(__file__).resolve().parents[1] / "docs" / "testing.md"


def _page_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


def test_the_kernel_example_of_the_page_runs():
    scope: dict = {}
    exec(compile(_page_blocks()[0], str(PAGE), "exec"), scope)  # noqa: S102 (the page's own example)
    assert callable(scope["my_kernel"])


def test_a_factor_of_two_in_the_closed_form_is_caught():
    source = _page_blocks()[0].replace("2 * np.pi * d)", "np.pi * d)", 1)
    assert source != _page_blocks()[0]
    with pytest.raises(AssertionError, match="Monte-Carlo network"):
        exec(compile(source, str(PAGE), "exec"), {})  # noqa: S102


def test_the_field_example_of_the_page_runs():
    scope: dict = {}
    exec(compile(_page_blocks()[1], str(PAGE), "exec"), scope)  # noqa: S102
    settings(max_examples=10, deadline=None)(scope["test_my_field"])()


@settings(max_examples=10, deadline=None)
@given(problems(bias=True))
def test_a_field_with_a_wrong_constant_is_caught_by_autograd(problem):
    def doubled(p):
        dW, dv, db = vector_field(p.W, p.v, p.X, p.y, **p.options())
        return dW, 2 * dv, db

    if np.linalg.norm(vector_field(problem.W, problem.v, problem.X, problem.y, **problem.options())[1]) > 1e-8:
        with pytest.raises(AssertionError, match="autograd"):
            assert_field_matches_autograd(doubled, problem)


def test_a_wrong_trajectory_is_caught_by_the_exact_flow():
    X = np.array([[1.0, 0.2], [-0.3, 1.0]])
    W0, v0 = np.array([[0.5, 0.1]]), np.array([0.4])
    from fls.testing import Problem

    problem = Problem(W0, v0, None, X, np.array([1.0, -1.0]), 1.0, "logistic", None)
    with pytest.raises(AssertionError, match="exact flow"):
        assert_trajectory_matches_flow(lambda t: (W0, v0), problem, times=[0.5, 1.0])


def test_the_monte_carlo_checker_accepts_the_package_kernel():
    from fls.theory import tangent_kernel

    X = np.random.default_rng(3).normal(size=(3, 2))

    def biased(X1, X2, *, alpha, width, c):
        return tangent_kernel(X1, X2, alpha=alpha, width=width, c=c, bias=True)

    assert_kernel_matches_monte_carlo(biased, X, alpha=0.5, width=20_000, bias=True, seed=4)

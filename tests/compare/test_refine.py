"""Resolution of the optimum: the parabola vertex of a window (exact on parabolas), the bootstrap interval of
alpha* on synthetic cells with a known optimum, and a refinement round on a tiny sweep."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.compare.optimum import Optimum, locate_optimum, window_vertex
from fls.compare.refine import (
    SEED_MARGIN,
    TARGET_SPAN,
    WINDOW_POINTS,
    Refinement,
    Round,
    refine_optimum,
    seeds_needed,
)
from fls.compare.selection import seed_grid
from fls.compare.store import open_store
from fls.compare.sweep import run_sweep
from fls.compare.verdict import ClaimContext, ClaimResult
from tests.compare.test_verify import TINY


@settings(max_examples=50, deadline=None)
@given(
    vertex=st.floats(-1.5, 1.5),
    curvature=st.floats(0.01, 10.0),
    floor=st.floats(0.0, 1.0),
)
def test_window_vertex_is_exact_on_a_parabola(vertex, curvature, floor):
    x = np.linspace(-2, 2, WINDOW_POINTS)
    y = floor + curvature * (x - vertex) ** 2
    assert np.isclose(window_vertex(x, y)[0], vertex, atol=1e-8)


def test_window_vertex_refuses_a_maximum_or_a_vertex_outside_the_window():
    x = np.linspace(-1, 1, 5)
    assert np.isnan(window_vertex(x, -(x**2))[0])
    assert np.isnan(window_vertex(x, (x - 3) ** 2)[0])


def _cell(seeds: int, alpha_star: float, noise: float, rng: np.random.Generator) -> pd.DataFrame:
    """A cell whose mean test error is a parabola in log alpha with its minimum at ``alpha_star``, plus seed
    noise of standard deviation ``noise``."""
    alphas = np.geomspace(alpha_star / 3, alpha_star * 3, WINDOW_POINTS)
    rows = []
    for seed in range(seeds):
        for alpha in alphas:
            error = 0.06 + 0.01 * np.log(alpha / alpha_star) ** 2 + noise * rng.standard_normal()
            rows.append(
                {
                    "seed": seed,
                    "fls": 1 / alpha**2,
                    "model.alpha": alpha,
                    "status": "target_reached",
                    "test_error": error,
                }
            )
    return pd.DataFrame(rows)


def test_the_interval_of_alpha_star_covers_it_and_narrows_with_seeds():
    rng = np.random.default_rng(0)
    context = ClaimContext(n_boot=400)
    few = locate_optimum(seed_grid(_cell(8, 0.2, 0.004, rng), "test_error"), context, window=True)
    many = locate_optimum(seed_grid(_cell(128, 0.2, 0.004, rng), "test_error"), context, window=True)
    for found in (few, many):
        assert found.alpha_interval[0] <= 0.2 <= found.alpha_interval[1]
        assert np.isclose(found.fls, 1 / found.alpha**2)
        assert found.fls_interval == (1 / found.alpha_interval[1] ** 2, 1 / found.alpha_interval[0] ** 2)
    assert many.span < few.span and many.span < TARGET_SPAN


def test_a_refinement_round_runs_the_window_with_the_same_seeds(tmp_path):
    table = run_sweep(TINY, tmp_path / "store", workers=0, progress=False)
    refinement = refine_optimum(
        open_store(tmp_path / "store").config(), table, tmp_path, workers=0, max_rounds=1
    )
    assert refinement.grid_optimum is not None
    if refinement.status == "not refined":
        raise AssertionError(refinement.reason)
    (step,) = refinement.rounds
    assert step.runs == WINDOW_POINTS * 4 and step.seeds == (0, 1, 2, 3)
    assert step.alphas[0] < refinement.grid_optimum.alpha < step.alphas[-1]
    refined = open_store(tmp_path / "refine-1").table()
    assert set(refined["data.n"]) == {12} and len(refined) == WINDOW_POINTS * 4
    text = "\n".join(refinement.markdown())
    assert "Resolution of the optimum" in text and "round 1" in text


@settings(max_examples=50, deadline=None)
@given(seeds=st.integers(4, 200), log_ratio=st.floats(0.0, 4.0))
def test_seeds_needed_follows_the_inverse_square_root_rate(seeds, log_ratio):
    span = TARGET_SPAN**log_ratio
    needed = seeds_needed(seeds, span)
    assert needed >= seeds + 1
    # the 1 / sqrt(seeds) rate: the log-span at the new count is at most the target's over the margin
    predicted_log_span = np.log(span) * np.sqrt(seeds / needed)
    assert predicted_log_span <= np.log(TARGET_SPAN) / np.sqrt(SEED_MARGIN) * (1 + 1e-9)
    assert needed <= max(seeds + 1, SEED_MARGIN * seeds * log_ratio**2 + 1)
    assert seeds_needed(seeds, float("nan")) == 2 * seeds


def test_the_resolved_optimum_becomes_claim_a_value_interval_and_band():
    found = Optimum(0.2, (0.18, 0.22), 1.0, 0.0)
    refinement = Refinement(
        Optimum(0.25, (0.2, 0.3), 1.0, 0.0), "resolved", "", [Round((0.1, 0.4), (0, 1), 18, found)]
    )
    band = {"argmin_band": [11.1, 25.0]}
    grid_claim = ClaimResult("a", "t", "pass", "r", "s", 16.0, (11.1, 25.0), data=band)
    resolved = refinement.resolve_claim(grid_claim)
    assert resolved.value == found.fls == pytest.approx(25.0) and resolved.verdict == "pass"
    assert resolved.interval == found.fls_interval == tuple(resolved.data["argmin_band"])
    assert resolved.interval == pytest.approx((1 / 0.22**2, 1 / 0.18**2))
    assert any("resolved alpha*" in key for key in resolved.evidence)
    other = ClaimResult("b", "t", "pass", "r", "s", 1.0, (0.0, 2.0))
    assert refinement.resolve_claim(other) is other
    assert Refinement(found, "not refined", "").resolve_claim(grid_claim) is grid_claim

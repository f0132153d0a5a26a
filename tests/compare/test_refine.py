"""Resolution of the optimum: the parabola vertex of a window (exact on parabolas), the bootstrap interval of
alpha* on synthetic cells with a known optimum, and a refinement round on a tiny sweep."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from fls.compare.optimum import locate_optimum, window_vertex
from fls.compare.refine import TARGET_SPAN, WINDOW_POINTS, refine_optimum
from fls.compare.selection import seed_grid
from fls.compare.store import open_store
from fls.compare.sweep import run_sweep
from fls.compare.verdict import ClaimContext
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

"""Every figure of `fls verify` and `fls verify --family quality` passes the referee's audit
(compare.figure_audit): axis labels, lettered titled panels, a legend that covers no data point, tick labels
that do not collide, one colour scale per figure. The audit itself is checked on figures made to fail it."""

import contextlib
import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from fls.compare import (
    claim_figures,
    claims,
    figure_audit,
    figure_style,
    plots,
    quality_axes,
    runner,
    verify,
)
from fls.compare.config import expand_runs, load_config
from fls.compare.inputs import dataset_for
from fls.compare.vocabulary import THREAD_VARIABLES
from fls.theory.smallinit import alignment_rates
from tests.compare.test_claims import make_table, u_shape
from tests.compare.test_quality_axes import tiny_quality_config
from tests.compare.test_verify import TINY


def _audited_run(action) -> dict[str, list[str]]:
    """Run ``action`` with every figure closed by it audited first: figure label -> defects."""
    found: dict[str, list[str]] = {}
    close = plt.close

    def audit_then_close(figure=None):
        if isinstance(figure, plt.Figure):
            name = next(iter(t.get_text() for ax in figure.axes for t in [ax.title] if t.get_text()), "")
            found[f"{len(found)}: {name}"] = figure_audit.audit(figure)
        close(figure)

    with pytest.MonkeyPatch.context() as patch:
        for variable in THREAD_VARIABLES:  # verify sets the ones not set; keep them out of later tests
            patch.setenv(variable, "1")
        patch.setattr(plt, "close", audit_then_close)
        action()
    return found


@pytest.fixture(scope="module")
def verify_figures(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    return out, _audited_run(lambda: verify.verify(out, config=TINY, workers=0, refine=False))


def test_every_figure_of_verify_passes_the_audit(verify_figures):
    _, found = verify_figures
    assert len(found) >= 7  # claims (a)-(e_m), the phase diagram, the alignment over time
    assert {name: defects for name, defects in found.items() if defects} == {}


def test_verify_draws_one_figure_per_claim_and_no_duplicate(verify_figures):
    out, _ = verify_figures
    names = sorted(p.stem for p in (out / "figures").glob("*.png"))
    assert "error_vs_fls" not in names  # claim (a)'s figure is the test error against FLS
    text = (out / "report.md").read_text()
    for key in ("a", "b", "c", "d", "e_n"):  # TINY does not vary the width: (e_m) has no figure
        assert text.count(f"![claim {key}]") == 1


@pytest.fixture(scope="module")
def quality_figures(tmp_path_factory):
    """A reduced `fls verify --family quality` (tiny_quality_config), every figure audited: its output folder,
    the defects by figure and what it printed."""
    out = tmp_path_factory.mktemp("quality")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        found = _audited_run(lambda: verify.verify_quality(out, workers=0, config=tiny_quality_config()))
    return out, found, printed.getvalue()


def test_every_figure_of_the_quality_family_passes_the_audit(quality_figures):
    out, found, _ = quality_figures
    names = sorted(p.stem for p in (out / "figures").glob("*.png"))
    assert names == ["quality_axes", "quality_learning_curves", "quality_strength", "quality_width"]
    assert len(found) == 4
    assert {name: defects for name, defects in found.items() if defects} == {}


def test_a_reduced_quality_verify_reports_every_axis_and_the_overall_verdict(quality_figures):
    out, _, printed = quality_figures
    text = (out / "quality_report.md").read_text()
    assert "overall:" in printed and "wall time" in printed and "Overall rule:" in text
    for axis in quality_axes.AXES:
        assert f"  {axis} (" in printed, axis
        assert f"### Axis {axis}:" in text, axis


def test_the_audit_finds_a_legend_over_the_data():
    figure, ax = plt.subplots()
    x = np.linspace(0, 1, 50)
    ax.plot(x, np.full_like(x, 0.95), label="flat")
    ax.set(xlabel="x", ylabel="y", title="one panel", ylim=(0, 1))
    ax.legend(loc="upper right")
    defects = figure_audit.audit(figure)
    plt.close(figure)
    assert any("legend covers" in d for d in defects)


def test_the_audit_accepts_a_legend_below_the_panels_and_finds_missing_letters():
    figure, axes = plt.subplots(1, 2)
    for ax in axes:
        ax.plot([0, 1], [0, 1], label="line")
        ax.set(xlabel="x", ylabel="y")
    figure_style.panel_titles(axes, ["left", "right"])
    figure_style.legend_below(figure, axes)
    assert figure_audit.audit(figure) == []
    axes[1].set_title("right")
    assert any("not lettered" in d for d in figure_audit.audit(figure))
    plt.close(figure)


def test_the_audit_finds_colliding_tick_labels_and_separate_colour_scales():
    figure, axes = plt.subplots(1, 2, figsize=(3, 2))
    for ax, scale in zip(axes, (1.0, 10.0), strict=True):
        ax.pcolormesh(scale * np.random.default_rng(0).random((3, 3)))
        ax.set_xticks(np.linspace(0, 3, 12), [f"{10**k}" for k in range(12)])
        ax.set(xlabel="x", ylabel="y")
    figure_style.panel_titles(axes, ["left", "right"])
    defects = figure_audit.audit(figure)
    plt.close(figure)
    assert any("tick labels overlap" in d for d in defects)
    assert any("different colour scales" in d for d in defects)


@pytest.mark.parametrize(
    ("value", "label"), [(0.01, "0.01"), (5.0, "5"), (200.0, "200"), (1e4, "10⁴"), (2e-5, "2·10⁻⁵")]
)
def test_tick_labels_are_short(value, label):
    assert figure_style.short_number(value) == label


def test_the_scaling_figure_of_two_inits_passes_the_audit(tmp_path):
    moving = {"random_sign": 0.0, "antisymmetric": -1.0}
    table = make_table(
        lambda a, n, i: u_shape(a, centre=0.2 * (n / 40) ** moving[i]),
        ns=(10, 20, 40, 80, 160),
        noise=0.001,
        inits=tuple(moving),
    )
    result = claims.scaling(table, "data.n")
    found = _audited_run(lambda: claim_figures.draw_claim(table, result, tmp_path))
    (defects,) = found.values()
    assert defects == [] and "by init" in next(iter(found))


@pytest.mark.slow
def test_every_figure_of_the_default_verify_passes_the_audit(tmp_path):
    found = _audited_run(lambda: verify.verify(tmp_path, workers=2))
    assert len(found) >= 8  # claims (a)-(e_n) (no width axis: no (e_m)), the phase diagram, the alignment
    assert {name: defects for name, defects in found.items() if defects} == {}


@pytest.mark.slow
def test_every_figure_of_the_default_quality_verify_passes_the_audit(tmp_path):
    found = _audited_run(lambda: verify.verify_quality(tmp_path, workers=2))
    # claim (q) on the alpha axis, the verdict per axis, the learning curves, the width axis
    assert len(found) == 4
    assert {name: defects for name, defects in found.items() if defects} == {}


def test_the_alignment_figure_draws_dense_measured_curves_and_the_tanh_law_on_separable_data(tmp_path):
    config = {"data": {"model": "gaussian_mixture", "preset": "separable"}, "model": {"width": 20},
              "grid": {"model.alpha": [1e-4, 1e-2], "seeds": [3]}}  # fmt: skip
    outputs = runner.execute_batch(expand_runs(load_config(config)))
    dataset = dataset_for(outputs[0].row)
    rate = alignment_rates(dataset.X, dataset.y, c=1.0)[0]
    table = pd.DataFrame([{**o.row, "lambda_plus": rate} for o in outputs])
    drawn = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plt, "close", lambda figure=None: drawn.setdefault("figure", figure))
        plots.alignment_over_time({o.row["run_id"]: o.arrays for o in outputs}, table, tmp_path / "alignment")
    figure = drawn["figure"]
    assert figure_audit.audit(figure) == []
    assert "n = 20, init = random_sign, seed 3" in figure._suptitle.get_text()
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert "tanh law, rate λ₊" in lines
    for output in outputs:  # one point per step: the whole saved trajectory, not the stage ends
        measured = lines[f"α = {output.row['model.alpha']:.2g}"]
        assert len(measured.get_xdata()) == output.row["steps"] > output.row["stages"]
    plt.close(figure)

"""Figures of a sweep (matplotlib, Agg backend, headless): phase diagram, error against FLS, limits, scaling,
alignment over time. Every function writes a PNG and a PDF next to each other and returns both paths.

Bands are 95 % bootstrap intervals over seeds (:mod:`compare.statistics`), so a figure shows the same
uncertainty as the claim it illustrates. Its place among the layers: docs/design.md section 5; the figures of
a claim's result are chosen by :mod:`compare.claim_figures`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.patheffects
import numpy as np
import pandas as pd

from fls.compare import claims
from fls.compare.figure_style import (
    FLS_LABEL,
    fls_axis,
    legend_below,
    log_axis,
    nonnegative_axis,
    panel_titles,
    plain_log_ticks,
    plt,
    save,
    shared_log_norm,
)
from fls.compare.inputs import dataset_for
from fls.compare.limits import boundaries
from fls.compare.optimum import optimal_alpha
from fls.compare.selection import network_runs, restrict, seed_grid
from fls.compare.statistics import bootstrap_means, resample_indices
from fls.compare.verdict import DEFAULT_CONTEXT, ClaimContext
from fls.compare.vocabulary import ALPHA_KEY, C_KEY, DATA_MODEL_KEY, INIT_KEY, N_KEY, WIDTH_KEY

#: A black outline under a white line, so that it shows on the image and in the legend below it.
OUTLINED = [matplotlib.patheffects.Stroke(linewidth=3, foreground="k"), matplotlib.patheffects.Normal()]

#: Line colours by init.
INIT_COLOURS = {"random_sign": "C0", "antisymmetric": "C1", "gaussian": "C2"}

#: Labels of the metric columns the figures plot.
LABELS = {
    "test_error": "test error",
    "Psi": "Ψ = cos(ŵ₊, x₊)",
    "cos_bayes": "cos(ŵ₊, s)",
    "oa": "over-alignment OA",
    "of": "over-fitting OF",
    "f0_contamination": "‖f₀‖ / ‖f − f₀‖ (test)",
    "pred_small_alpha_error": "small-alpha limit (network of extreme vectors)",
    "pred_lazy_error": "lazy limit (K0 + f0)",
}

#: Metric columns that are >= 0 by definition (OA and OF are differences to a minimum over a set that holds
#: the compared direction; the contamination is a ratio of norms): drawn on an axis starting at 0.
NONNEGATIVE = ("oa", "of", "f0_contamination")


def _band(
    ax: plt.Axes,
    cell: pd.DataFrame,
    column: str,
    *,
    colour: str,
    label: str,
    context: ClaimContext,
    linestyle: str = "-",
) -> None:
    """Mean of ``column`` over seeds against FLS, with its bootstrap band."""
    grid = seed_grid(cell, column)
    if not np.any(np.isfinite(grid.values)):
        return
    boot = bootstrap_means(
        grid.values, resample_indices(len(grid.seeds), n_boot=context.n_boot, seed=context.seed)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # grid points without any result give NaN bands
        low, high = np.nanpercentile(boot, [2.5, 97.5], axis=0)
    ax.plot(grid.fls, grid.mean(), color=colour, linestyle=linestyle, marker="o", markersize=3, label=label)
    ax.fill_between(grid.fls, low, high, color=colour, alpha=0.2, linewidth=0)


def error_vs_fls(
    table: pd.DataFrame,
    out_path: str | Path,
    *,
    chosen: Mapping[str, Any] | None = None,
    argmin_band: tuple[float, float] | None = None,
    context: ClaimContext = DEFAULT_CONTEXT,
    column: str = "test_error",
) -> list[Path]:
    """Mean test error (or another test measure ``column``, e.g. ``test_mse`` of regression runs) against FLS
    for each init, with bootstrap bands; the argmin's interval shaded (a line where the interval is a single
    FLS)."""
    quantity = "test error" if column == "test_error" else column.replace("_", " ")
    runs = restrict(network_runs(table), chosen)
    figure, ax = plt.subplots(figsize=(6.4, 4.2))
    for init in dict.fromkeys(runs[INIT_KEY]):
        _band(
            ax,
            runs[runs[INIT_KEY] == init],
            column,
            colour=INIT_COLOURS.get(init, "C3"),
            label=init,
            context=context,
        )
    bayes = runs["bayes_error"].dropna() if "bayes_error" in runs else pd.Series(dtype=float)
    if len(bayes):
        ax.axhline(float(bayes.mean()), color="k", linestyle=":", linewidth=1, label="Bayes error")
    if argmin_band is not None and argmin_band[1] > argmin_band[0]:
        ax.axvspan(*argmin_band, color="0.6", alpha=0.25, label="argmin, 95% interval")
    elif argmin_band is not None:
        ax.axvline(argmin_band[0], color="0.4", linewidth=1, label="argmin (interval: one FLS)")
    fls_axis(ax)
    log_axis(ax, "y")
    ax.set_ylabel(f"{quantity} (mean over seeds)")
    where = ", ".join(f"{k}={v}" for k, v in (chosen or {}).items())
    ax.set_title(
        f"{quantity} against feature-learning strength" + (f" ({where})" if where else ""), fontsize=10
    )
    legend_below(figure, [ax])
    return save(figure, out_path)


def metric_panels(
    table: pd.DataFrame,
    out_path: str | Path,
    columns: Sequence[str],
    *,
    titles: Sequence[str] | None = None,
    chosen: Mapping[str, Any] | None = None,
    references: Mapping[str, float] | None = None,
    context: ClaimContext = DEFAULT_CONTEXT,
) -> list[Path]:
    """One lettered panel per metric column against FLS (titled by ``titles``, default the column labels), a
    line per init, optional horizontal reference values; quantities >= 0 by definition
    (:data:`NONNEGATIVE`) on an axis that starts at 0."""
    runs = restrict(network_runs(table), chosen)
    figure, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.6), squeeze=False)
    for ax, column in zip(axes[0], columns, strict=True):
        for init in dict.fromkeys(runs[INIT_KEY]):
            _band(
                ax,
                runs[runs[INIT_KEY] == init],
                column,
                colour=INIT_COLOURS.get(init, "C3"),
                label=init,
                context=context,
            )
        if references and column in references:
            ax.axhline(references[column], color="k", linestyle="--", linewidth=1, label="class-sum value")
        fls_axis(ax)
        ax.set_ylabel(LABELS.get(column, column))
        if column in NONNEGATIVE:
            nonnegative_axis(ax)
    panel_titles(axes[0], titles or [LABELS.get(column, column) for column in columns])
    legend_below(figure, axes[0])
    return save(figure, out_path)


def limits_figure(
    table: pd.DataFrame,
    out_path: str | Path,
    *,
    chosen: Mapping[str, Any] | None = None,
    context: ClaimContext = DEFAULT_CONTEXT,
) -> list[Path]:
    """Test error of the full runs against FLS with the small-alpha and lazy predictions, one panel per
    init."""
    runs = restrict(network_runs(table), chosen)
    inits = list(dict.fromkeys(runs[INIT_KEY]))
    figure, axes = plt.subplots(1, len(inits), figsize=(5.2 * len(inits), 3.8), squeeze=False)
    for ax, init in zip(axes[0], inits, strict=True):
        cell = runs[runs[INIT_KEY] == init]
        _band(
            ax,
            cell,
            "test_error",
            colour=INIT_COLOURS.get(init, "C3"),
            label=f"{init} (network)",
            context=context,
        )
        for column, colour in (("pred_small_alpha_error", "C4"), ("pred_lazy_error", "C5")):
            if column in cell:
                _band(ax, cell, column, colour=colour, label=LABELS[column], context=context, linestyle="--")
        fls_axis(ax)
        log_axis(ax, "y")
        ax.set_ylabel("test error")
    panel_titles(axes[0], [f"init = {init}" for init in inits])
    legend_below(figure, axes[0], columns=2)
    return save(figure, out_path)


def scaling_figure(
    series: Mapping[str, Mapping[str, Any]],
    literature: float,
    symbol: str,
    out_path: str | Path,
    *,
    title: str | None = None,
) -> list[Path]:
    """alpha* against the second axis (log-log), one series per init (``series``: init -> ``values``,
    ``stars``, ``samples`` (bootstrap draws of each alpha*), ``exponent``) with 95 % bootstrap intervals and
    the fitted line, and the literature slope through the first series' middle point (titled ``title``,
    default "optimal α against <symbol>")."""
    figure, ax = plt.subplots(figsize=(5.6, 4.0))
    for init, data in series.items():
        values, stars = np.asarray(data["values"], dtype=float), np.asarray(data["stars"], dtype=float)
        low = [np.nanpercentile(s, 2.5) for s in data["samples"]]
        high = [np.nanpercentile(s, 97.5) for s in data["samples"]]
        colour = INIT_COLOURS.get(init, "C3")
        ax.errorbar(values, stars, yerr=[stars - low, np.asarray(high) - stars], fmt="o", color=colour)
        grid = np.geomspace(values.min(), values.max(), 50)
        exponent = float(data["exponent"])
        anchor = np.exp(np.mean(np.log(stars)) - exponent * np.mean(np.log(values)))
        label = f"{init}: α* (95% bootstrap), fitted exponent {exponent:.2f}"
        ax.plot(grid, anchor * grid**exponent, color=colour, label=label)
    first = next(iter(series.values()))
    values, stars = np.asarray(first["values"], dtype=float), np.asarray(first["stars"], dtype=float)
    middle = len(values) // 2
    grid = np.geomspace(values.min(), values.max(), 50)
    ax.plot(
        grid,
        stars[middle] * (grid / values[middle]) ** literature,
        color="k",
        linestyle="--",
        label=f"literature: exponent {literature:g}",
    )
    log_axis(ax, "x")
    log_axis(ax, "y")
    ax.set_xlabel(symbol)
    ax.set_ylabel("optimal α*")
    ax.set_title(title or f"optimal α against {symbol}", fontsize=10)
    ax.grid(alpha=0.3, linewidth=0.4)
    legend_below(figure, [ax], columns=1)
    return save(figure, out_path)


def _edges(centres: np.ndarray, *, log: bool) -> np.ndarray:
    """Cell edges around sorted centres (geometric midpoints on a log axis)."""
    x = np.log(centres) if log else centres.astype(float)
    if len(x) == 1:
        inner, step = np.array([]), 1.0
        edges = np.array([x[0] - step / 2, x[0] + step / 2])
    else:
        inner = (x[1:] + x[:-1]) / 2
        edges = np.concatenate([[2 * x[0] - inner[0]], inner, [2 * x[-1] - inner[-1]]])
    return np.exp(edges) if log else edges


def _phase_image(
    cell: pd.DataFrame, x_column: str, y_key: str | None
) -> tuple[list[Any], np.ndarray, np.ndarray, list[float]]:
    """Rows (levels of ``y_key``), x centres, the mean test error image (rows x centres) and each row's
    measured optimum on the x axis (FLS or alpha) of one init's runs."""
    rows = sorted(cell[y_key].unique()) if y_key else [None]
    xs = np.sort(cell[x_column].unique())
    image = np.full((len(rows), len(xs)), np.nan)
    optima = []
    for i, level in enumerate(rows):
        sub = cell if level is None else cell[cell[y_key] == level]
        image[i] = sub.groupby(x_column)["test_error"].mean().reindex(xs).to_numpy()
        star = optimal_alpha(seed_grid(sub, "test_error"))
        optima.append(1 / (float(sub[C_KEY].iloc[0]) * star**2) if x_column == "fls" else star)
    return rows, xs, image, optima


def phase_diagram(table: pd.DataFrame, config: Mapping[str, Any], out_path: str | Path) -> list[Path]:
    """Mean test error over (x = [phase] x, y = [phase] y) as an image, one lettered panel per init on one
    shared colour scale, with the predicted boundaries (:func:`compare.limits.boundaries`) as lines, the
    measured optimum of each row as white dots and, when y is data.n or model.width, the literature slope
    alpha* ~ n^-1 m^-1/2 through the middle row's optimum (dotted); the legend sits below the panels."""

    phase = config.get("phase", {})
    x_key = phase.get("x", "fls")
    y_key = phase.get("y")
    x_column = "fls" if x_key == "fls" else ALPHA_KEY
    runs = network_runs(table)
    runs = runs[runs["status"] == "target_reached"]
    inits = list(dict.fromkeys(runs[INIT_KEY])) or ["(none)"]
    cells = {init: runs[runs[INIT_KEY] == init] for init in inits}
    images = {init: _phase_image(cell, x_column, y_key) for init, cell in cells.items() if not cell.empty}
    norm = shared_log_norm(image for _, _, image, _ in images.values())
    figure, axes = plt.subplots(1, len(inits), figsize=(5.2 * len(inits), 4.2), squeeze=False)
    mesh = None
    for ax, init in zip(axes[0], inits, strict=True):
        ax.set_xlabel(FLS_LABEL if x_key == "fls" else "α")
        ax.set_ylabel(y_key or "(one row)")
        if init not in images:
            ax.text(0.5, 0.5, "no finished runs", ha="center", transform=ax.transAxes)
            continue
        cell = cells[init]
        rows, xs, image, optima = images[init]
        y_positions = np.arange(len(rows), dtype=float)
        mesh = ax.pcolormesh(
            _edges(xs, log=True),
            _edges(y_positions, log=False),
            image,
            cmap="viridis",
            shading="flat",
            norm=norm,
        )
        ax.plot(optima, y_positions, "o", color="white", markeredgecolor="k", label="measured optimum")
        for i, level in enumerate(rows):
            sub = cell if level is None else cell[cell[y_key] == level]
            run = sub.iloc[0].to_dict()
            bounds = boundaries(dataset_for(run), width=int(run[WIDTH_KEY]))
            c = float(run[C_KEY])
            for name, style in (("alignment", "-"), ("f0", "--")):
                if name == "f0" and init in ("antisymmetric",):
                    continue
                value = bounds[name] if x_key == "fls" else 1 / np.sqrt(c * bounds[name])
                ax.plot(
                    [value, value],
                    [i - 0.5, i + 0.5],
                    color="red",
                    linestyle=style,
                    linewidth=1.5,
                    label=f"predicted {name} boundary" if i == 0 else None,
                )
        if y_key in claims.LITERATURE_EXPONENTS and len(rows) > 1 and np.isfinite(optima[len(rows) // 2]):
            middle = len(rows) // 2
            exponent = claims.LITERATURE_EXPONENTS[y_key] * (-2 if x_key == "fls" else 1)
            ratio = np.asarray(rows, dtype=float) / float(rows[middle])
            ax.plot(
                optima[middle] * ratio**exponent,
                y_positions,
                color="white",
                linestyle=":",
                path_effects=OUTLINED,
                label="literature scaling",
            )
        log_axis(ax, "x")
        ax.set_xlim(_edges(xs, log=True)[[0, -1]])
        ax.set_yticks(y_positions)
        ax.set_yticklabels([str(level) for level in rows] if y_key else [""])
    panel_titles(axes[0], [f"init = {init}" for init in inits])
    if mesh is not None:
        bar = figure.colorbar(mesh, ax=axes[0, -1], label="mean test error (scale shared by the panels)")
        plain_log_ticks(bar.ax.yaxis, subs=(1.0, 2.0, 5.0))
    legend_below(figure, axes[0], columns=4)
    return save(figure, out_path)


def alignment_over_time(
    arrays: Mapping[str, Mapping[str, np.ndarray]],
    table: pd.DataFrame,
    out_path: str | Path,
) -> list[Path]:
    """Psi(t) and cos(w_hat+, s)(t) of the runs in ``arrays`` (run_id -> the run's trajectories, runs of one
    data set, init and seed, named in the title), coloured by alpha. The tanh law psi(t) = tanh(lambda+ t +
    artanh Psi(0)) (docs/design.md section 2) is drawn for the smallest alpha only where its assumption holds,
    an orthogonally separable training set; otherwise the panel's title says it does not apply."""
    rows = table.set_index("run_id").loc[list(arrays)]
    alphas = rows[ALPHA_KEY].to_numpy(dtype=float)
    colours = plt.cm.viridis(np.linspace(0, 1, max(len(alphas), 2)))
    figure, axes = plt.subplots(1, 2, figsize=(10.5, 3.8))
    order = np.argsort(alphas)
    for rank, index in enumerate(order):
        run_id = rows.index[index]
        data = arrays[run_id]
        if "obs_t" not in data or len(data["obs_t"]) < 2:
            continue
        t = data["obs_t"]
        for ax, key in zip(axes, ("obs_Psi", "obs_cos_bayes"), strict=True):
            if key in data:
                ax.plot(t[1:], data[key][1:], color=colours[rank], label=f"α = {alphas[index]:.2g}")
    smallest = rows.index[order[0]]
    first = rows.loc[smallest]
    separable = dataset_for({"run_id": smallest, **first.to_dict()}).orthogonally_separable
    lam = float(first.get("lambda_plus", np.nan))
    data = arrays[smallest]
    law = "the tanh law does not apply (training set not orthogonally separable)"
    if separable and np.isfinite(lam) and "obs_t" in data and len(data["obs_t"]) > 1:
        t = np.geomspace(max(data["obs_t"][1], 1e-3), data["obs_t"][-1], 200)
        psi0 = float(np.clip(data["obs_Psi"][0], -0.999, 0.999))
        axes[0].plot(
            t, np.tanh(lam * t + np.arctanh(psi0)), color="k", linestyle="--", label="tanh law, rate λ₊"
        )
        law = "with the tanh law of the smallest α"
    for ax, label in zip(axes, (LABELS["Psi"], LABELS["cos_bayes"]), strict=True):
        log_axis(ax, "x")
        ax.set_xlabel("gradient-flow time t")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, linewidth=0.4)
    panel_titles(axes, [f"alignment with the class sum:\n{law}", "alignment with the Bayes direction"])
    figure.suptitle(
        f"{first.get(DATA_MODEL_KEY, 'data')}, n = {first.get(N_KEY, '?')}, init = {first[INIT_KEY]}, "
        f"seed {first['seed']}",
        fontsize=10,
    )
    legend_below(figure, axes, columns=4)
    return save(figure, out_path)


def curve_figure(
    x: Sequence[float],
    y: Sequence[float],
    out_path: str | Path,
    *,
    xlabel: str = "x",
    ylabel: str = "y",
    title: str | None = None,
) -> list[Path]:
    """y against x as a line with markers (a log axis where the values span more than two decades), titled
    ``title`` (default "<ylabel> against <xlabel>")."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    figure, ax = plt.subplots(figsize=(5.2, 3.8))
    ax.plot(x, y, marker="o", ms=3, color="C0")
    for values, which in ((x, "x"), (y, "y")):
        positive = values[np.isfinite(values) & (values > 0)]
        if (
            positive.size == values[np.isfinite(values)].size
            and positive.size
            and positive.max() > 100 * positive.min()
        ):
            log_axis(ax, which)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{ylabel} against {xlabel}", fontsize=10)
    ax.grid(alpha=0.3, linewidth=0.4)
    return save(figure, out_path)

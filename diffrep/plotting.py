"""Figures of diffrep's result tables (matplotlib is an optional dependency)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from .generalization import GeneralizationReport


def import_pyplot():
    """Import ``matplotlib.pyplot``, or explain how to install it.

    Returns
    -------
    pyplot : module

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    """
    try:
        import matplotlib.pyplot as pyplot
    except ImportError:
        raise ImportError(
            "diffrep's plots need matplotlib: install it (pip install matplotlib, or pip install diffrep[plot])."
        ) from None
    return pyplot


def _axes(ax):
    """``ax``, or the axes of a new figure."""
    if ax is None:
        _, ax = import_pyplot().subplots(figsize=(6, 4))
    return ax


def plot_representation_curve(table: pd.DataFrame, ax: Axes | None = None):
    """Probe accuracy against the noise level, with a band of one standard deviation.

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`diffrep.curves.representation_curve`: columns
        ``timestep``, ``sigma``, ``mean``, ``std``.
    ax : matplotlib.axes.Axes or None, default=None
        Where to draw; None makes a new figure.

    Returns
    -------
    ax : matplotlib.axes.Axes
    """
    ax = _axes(ax)
    timesteps = table["timestep"].to_numpy()
    sigma, mean, std = (table[column].to_numpy(dtype=float) for column in ("sigma", "mean", "std"))
    ax.plot(sigma, mean, "o-", label="probe accuracy")
    ax.fill_between(sigma, mean - std, mean + std, alpha=0.25)
    peak = int(np.argmax(mean))
    ax.plot([sigma[peak]], [mean[peak]], "*", markersize=14, label=f"peak: t={timesteps[peak]}")
    for t, s, m in zip(timesteps, sigma, mean):
        ax.annotate(f"t={t}", (s, m), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("noise level sigma = sqrt((1 - abar_t) / abar_t)")
    ax.set_ylabel("accuracy (mean ± std over folds)")
    ax.set_title("Representation dynamics")
    ax.legend(fontsize=8)
    return ax


def plot_label_noise_study(table: pd.DataFrame, ax: Axes | None = None):
    """Test accuracy against the label-noise rate, one line per estimator.

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`diffrep.label_noise.label_noise_study`: columns
        ``estimator``, ``rate``, ``mean``, ``std``.
    ax : matplotlib.axes.Axes or None, default=None
        Where to draw; None makes a new figure.

    Returns
    -------
    ax : matplotlib.axes.Axes
    """
    ax = _axes(ax)
    for name, rows in table.groupby("estimator", sort=False):
        rate, mean, std = (rows[column].to_numpy(dtype=float) for column in ("rate", "mean", "std"))
        ax.errorbar(100 * rate, mean, yerr=std, marker="o", capsize=3, label=name)
    ax.set_xlabel("training labels corrupted (%)")
    ax.set_ylabel("test accuracy (mean ± std over repeats)")
    ax.set_title("Robustness to label noise")
    ax.legend(fontsize=8)
    return ax


def plot_generalization_report(report: GeneralizationReport, ax: Axes | None = None, title: str | None = None):
    """Probe accuracy and held-out / training denoising-error ratio against the noise level.

    The accuracy (mean ± one standard deviation over folds; only when the
    report has labels) is drawn on ``ax``, the error ratio on a second y-axis
    at the right, with the ratio 1 dotted; the title gives the verdict.
    Panels of :func:`plot_training_size_study` share one ratio scale.

    Parameters
    ----------
    report : GeneralizationReport
        As returned by :func:`diffrep.generalization_report`.
    ax : matplotlib.axes.Axes or None, default=None
        Where to draw; None makes a new figure.
    title : str or None, default=None
        Title of the axes, before the verdict; None gives just the verdict.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The accuracy axes (the ratio's twin is ``ax.right_ax``).
    """
    ax = _axes(ax)
    table = report.table
    sigma = table["sigma"].to_numpy(dtype=float)
    if "accuracy" in table:
        mean, std = (table[column].to_numpy(dtype=float) for column in ("accuracy", "accuracy_std"))
        ax.plot(sigma, mean, "o-", color="C0", label="held-out probe accuracy")
        ax.fill_between(sigma, mean - std, mean + std, color="C0", alpha=0.2)
        ax.set_ylabel("accuracy (mean ± std over folds)", color="C0")
    ratio_ax = ax.twinx()
    ratio_ax.plot(sigma, table["error_ratio"].to_numpy(dtype=float), "s--", color="C3",
                  label="held-out / training x0-error")
    ratio_ax.axhline(1.0, color="C3", linestyle=":", linewidth=1)
    ratio_ax.set_ylabel("held-out / training x0-error", color="C3")
    ax.right_ax = ratio_ax
    ax.set_xscale("log")
    ax.set_xlabel("noise level sigma")
    ax.set_title(f"{title}: {report.verdict}" if title else report.verdict, fontsize=10)
    return ax


def _plot_rise(report, ax):
    """Accuracy minus accuracy at the smallest timestep, ± its standard error over folds (paired by fold)."""
    sigma = report.table["sigma"].to_numpy(dtype=float)
    shown = sigma <= 1.0
    differences = (report.fold_scores - report.fold_scores[:1])[shown]
    se = differences.std(axis=1, ddof=1) / np.sqrt(differences.shape[1])
    ax.errorbar(sigma[shown], differences.mean(axis=1), yerr=2 * se, marker="o", capsize=3, color="C0")
    ax.axhline(0.0, color="gray", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("noise level sigma")
    ax.set_ylabel("accuracy - accuracy at smallest t\n(± 2 SE over folds)", fontsize=8)


def plot_training_size_study(reports: dict[int, GeneralizationReport]):
    """One :func:`plot_generalization_report` panel per training-set size, side by side.

    The error ratios share one scale, logarithmic when some exceed 3. With
    labels a second row shows the rise the verdict tests: the accuracy
    minus the accuracy at the smallest timestep, fold by fold, with error bars
    of two standard errors, over the timesteps up to sigma = 1 (beyond it
    every curve falls to chance).

    Parameters
    ----------
    reports : dict of int -> GeneralizationReport
        As returned by :func:`diffrep.training_size_study` (its second value).

    Returns
    -------
    figure : matplotlib.figure.Figure
    """
    labelled = all(report.fold_scores is not None for report in reports.values())
    rows = 2 if labelled else 1
    figure, axes = import_pyplot().subplots(rows, len(reports), figsize=(4.2 * len(reports), 3.4 * rows),
                                            sharey="row", squeeze=False)
    ratios = np.concatenate([report.table["error_ratio"].to_numpy(dtype=float) for report in reports.values()])
    for column, (n_train, report) in enumerate(reports.items()):
        ax = plot_generalization_report(report, ax=axes[0, column], title=f"N={n_train}")
        if ratios.max() > 3:  # ratios of memorizing and generalizing denoisers differ by orders of magnitude
            ax.right_ax.set_yscale("log")
        ax.right_ax.set_ylim(min(0.9, ratios.min() * 0.95), max(1.5, ratios.max() * 1.05))  # one scale for all
        if labelled:
            _plot_rise(report, axes[1, column])
            if column:
                axes[1, column].set_ylabel("")
    figure.tight_layout()
    return figure

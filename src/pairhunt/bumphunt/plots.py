"""mplhep figures of a bump hunt: spectrum with fit and pulls, the scan, m1 vs m2, score vs mass."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pairhunt.bumphunt.hunt import BumpHunt
from pairhunt.bumphunt.scan import WIDTHS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep

    plt.style.use(hep.style.CMS)
    return plt, hep


def plot_fit(hunt: BumpHunt, path: Path, title: str = "") -> Path:
    """Spectrum (sum of weights, sqrt(sum w^2) errors), fitted background, pulls; best window shaded."""
    plt, hep = _pyplot()
    fit = hunt.fit.chosen
    spectrum = fit.spectrum
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 9), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    hep.histplot(spectrum.values, spectrum.edges, yerr=np.sqrt(spectrum.variances), histtype="errorbar", color="black", label="data", ax=top)
    hep.histplot(fit.expected(), spectrum.edges, color="tab:red", label=f"dijet fit, {fit.n_params} parameters", ax=top)
    best = hunt.scan.best_window()
    for ax in (top, bottom):
        ax.axvspan(best["low_gev"], best["high_gev"], color="tab:blue", alpha=0.15)
    top.set_yscale("log")
    top.set_ylabel("Events / bin")
    top.set_title(title, fontsize=16)
    top.legend(fontsize=14)
    bottom.bar(spectrum.centres, fit.pulls(), width=spectrum.widths, color="tab:grey")
    bottom.axhline(0, color="black", lw=1)
    bottom.set_ylabel("Pull")
    bottom.set_xlabel("Average parent mass [GeV]")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_scan(hunt: BumpHunt, path: Path) -> Path:
    """Local significance of every window against its centre, per window width."""
    plt, _ = _pyplot()
    result = hunt.scan
    spectrum = result.spectrum
    centres = 0.5 * (spectrum.edges[result.windows[:, 0]] + spectrum.edges[result.windows[:, 1] + 1])
    widths = spectrum.edges[result.windows[:, 1] + 1] - spectrum.edges[result.windows[:, 0]]
    fig, ax = plt.subplots(figsize=(10, 7))
    sc = ax.scatter(centres, result.significances, c=widths, cmap="viridis", s=25)
    fig.colorbar(sc, ax=ax, label="Window width [GeV]")
    if hunt.global_ is not None:
        ax.axhline(hunt.global_.observed, ls="--", color="tab:red", label=f"max local, global {hunt.global_.significance:.2f}$\\sigma$")
        ax.legend(fontsize=14)
    ax.set_xlabel("Window centre [GeV]")
    ax.set_ylabel(f"Local significance ($\\sigma$), half-widths {', '.join(f'{w:g}' for w in WIDTHS)} x resolution")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_2d(histogram, path: Path, title: str = "") -> Path:
    """A 2D ``hist.Hist`` (m1 vs m2, or average mass vs anomaly score)."""
    plt, hep = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 8))
    hep.hist2dplot(histogram, ax=ax, cmin=1e-12)
    ax.set_title(title, fontsize=16)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path

"""mplhep figures of an anomaly search: the mass spectrum after each cut with its sideband fit,
and the sculpting check."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pairhunt.anomaly.regions import Window
from pairhunt.bumphunt.plots import _pyplot


def _finish(plt, fig, ax, window: Window, ylabel: str, path: Path) -> Path:
    """Shade the signal region, label the mass axis, save and close."""
    ax.axvspan(window.low, window.high, color="grey", alpha=0.15, label="signal region")
    ax.set_xlabel("Average parent mass [GeV]")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=12)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_cuts(histogram, window: Window, predictions: dict[str, np.ndarray], path: Path) -> Path:
    """Data before and after every cut; dashed, the sideband fit's prediction for each cut."""
    plt, hep = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 8))
    for k, selection in enumerate(histogram.axes["selection"]):
        h = histogram[{"selection": selection}]
        colour = f"C{k}"
        hep.histplot(h.values(), h.axes[0].edges, yerr=np.sqrt(h.variances()), histtype="errorbar", color=colour, label=selection, ax=ax)
        if selection in predictions:
            hep.histplot(predictions[selection], h.axes[0].edges, color=colour, ls="--", ax=ax)
    ax.set_yscale("log")
    return _finish(plt, fig, ax, window, "Events / bin", path)


def plot_sculpting(shapes: dict[str, dict], window: Window, path: Path) -> Path:
    """Simulated background: mass shape after each cut over before, normalised to its efficiency."""
    plt, _ = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 6))
    for k, (label, shape) in enumerate(shapes.items()):
        edges = np.asarray(shape["edges"])
        centres = 0.5 * (edges[1:] + edges[:-1]) + 0.01 * k * np.diff(edges)  # side by side
        label = f"{label}: χ²/ndf {shape['chi2']:.1f}/{shape['ndf']}"
        ax.errorbar(centres, shape["ratio"], yerr=shape["ratio_error"], fmt="o", label=label)
    ax.axhline(1.0, color="black", lw=1)
    return _finish(plt, fig, ax, window, "after cut / before (÷ efficiency)", path)


def plot_sic(sic: dict, path: Path) -> Path:
    """The significance improvement ε_S / √ε_B against the signal efficiency."""
    plt, _ = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 6))
    ax.plot(sic["eps_s"], sic["sic"], color="tab:red")
    ax.axhline(1.0, color="black", lw=1, ls="--")
    ax.set_xlabel("Signal efficiency ε_S (signal region)")
    ax.set_ylabel("SIC = ε_S / √ε_B")
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_scan(results: list[dict], path: Path) -> Path:
    """Local significance of every window of a scan, without a cut and after it, at the signal
    region's centre; horizontal bars span each signal region."""
    plt, _ = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 6))
    for key, label, marker in (("no_cut", "no cut", "s"), ("cut", "after the cut", "o")):
        rows = [r for r in results if "local_significance" in r[key]]
        low = np.array([r["signal_region_gev"][0] for r in rows])
        high = np.array([r["signal_region_gev"][1] for r in rows])
        z = np.array([r[key]["local_significance"] for r in rows])
        centre = 0.5 * (low + high)
        ax.errorbar(centre, z, xerr=[centre - low, high - centre], fmt=marker, label=label)
    ax.set_xlabel("Signal region [GeV]")
    ax.set_ylabel("Local significance (sideband fit)")
    ax.legend(fontsize=12)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path

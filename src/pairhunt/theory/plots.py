"""The theory map as a figure: the library's theories as clusters, the excess on top."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pairhunt.bumphunt.plots import _pyplot


def _projection(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and axes of the plane shown: the latent space itself in 2-d, else its first two principal axes."""
    centre = points.mean(axis=0)
    if points.shape[1] <= 2:
        return centre * 0, np.eye(points.shape[1], 2)
    return centre, np.linalg.svd(points - centre, full_matrices=False)[2][:2].T


def draw_library(plt, ax, library: dict[str, list]):
    """Each theory's embedded training sets, one colour each, named at their centre; returns the
    projection (centre, axes) for whatever is drawn on top."""
    everything = np.concatenate([np.asarray(p) for p in library.values()])
    centre, axes = _projection(everything)
    colours = plt.get_cmap("tab20").colors
    for k, (name, points) in enumerate(library.items()):
        xy = (np.asarray(points) - centre) @ axes
        colour = colours[(2 * k) % 20 + (2 * k) // 20]  # the strong shades first
        ax.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.4, color=colour)
        ax.annotate(name, xy.mean(axis=0), fontsize=11, ha="center", weight="bold", color=colour)
    latent = everything.shape[1]
    ax.set_xlabel("latent 1" if latent <= 2 else "principal axis 1")
    ax.set_ylabel("latent 2" if latent <= 2 else "principal axis 2")
    return centre, axes


def plot_map(library: dict[str, list], point: np.ndarray, resampled: np.ndarray, path: Path) -> Path:
    """The library; the characterised set (star) and its resamples (grey)."""
    plt, _ = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 9))
    centre, axes = draw_library(plt, ax, library)
    if len(resampled):
        xy = (resampled - centre) @ axes
        ax.scatter(xy[:, 0], xy[:, 1], s=4, color="grey", alpha=0.5, label="excess, resampled")
    xy = (np.atleast_2d(point) - centre) @ axes
    ax.scatter(xy[:, 0], xy[:, 1], s=300, marker="*", color="black", label="excess")
    ax.legend(fontsize=12)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return path

"""Write a run's results as files a physicist can open: .coffea accumulator, ROOT histograms, JSON."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import hist
import uproot
from coffea.util import save

from pairhunt.atomic import write_text_atomically

CATEGORY_AXES = ("dataset", "method", "parent", "selection")


def _slices(h: hist.Hist):
    """``(path suffix, histogram without category axes)`` for every category combination."""
    categories = [ax for ax in h.axes if ax.name in CATEGORY_AXES]
    for values in product(*categories):
        selection = {ax.name: hist.loc(v) for ax, v in zip(categories, values)}
        parts = [f"parent_{v}" if ax.name == "parent" else str(v) for ax, v in zip(categories, values)]
        yield "".join(f"/{p}" for p in parts), h[selection]


def write_root(hists: dict[str, hist.Hist], path: Path) -> None:
    """One ROOT histogram per (name, dataset, method, parent): ``mass/ttbar/chi2/parent_0``."""
    with uproot.recreate(path) as f:
        for name, h in hists.items():
            for suffix, leaf in _slices(h):
                f[f"{name}{suffix}"] = leaf


def write_hists(output: dict, hist_dir: Path) -> dict[str, Path]:
    """``hist_dir/hists.coffea`` (the whole accumulator) and ``hist_dir/hists.root``."""
    hist_dir.mkdir(parents=True, exist_ok=True)
    paths = {"accumulator": hist_dir / "hists.coffea", "root": hist_dir / "hists.root"}
    save(output, paths["accumulator"])
    write_root(output["hists"], paths["root"])
    return paths


def write_summary(summary: dict, path: Path) -> Path:
    """The JSON summary, replaced in one step: a reader sees the old one or the new one."""
    write_text_atomically(path, json.dumps(summary, indent=2, default=float) + "\n")
    return path

"""The bump hunt's files: JSON with every number, a Markdown summary, and the plots."""

from __future__ import annotations

import json
from pathlib import Path

from pairhunt.bumphunt.hunt import BumpHunt
from pairhunt.bumphunt.plots import plot_2d, plot_fit, plot_scan


def markdown(result: dict) -> str:
    """A short human summary of ``BumpHunt.to_dict()`` (plus any extra keys of the caller)."""
    best = result["most_significant_window"]
    fit = result["background_fit"]
    lines = [
        f"# Bump hunt: {result.get('label', '')}".rstrip(),
        "",
        f"- fit range {result['fit_range_gev'][0]:.0f}-{result['fit_range_gev'][1]:.0f} GeV, {result['bins']} bins, "
        f"{result['effective_entries']:.0f} effective entries",
        f"- background: dijet function with {fit['chosen_n_params']} parameters (F-test, alpha {fit['f_test_alpha']})",
        f"- most significant window: {best['low_gev']:.0f}-{best['high_gev']:.0f} GeV, observed {best['observed_effective']:.1f}, "
        f"expected {best['expected_effective']:.1f} +- {best['expected_uncertainty']:.1f} (effective entries)",
        f"- local significance {best['local_significance']:.2f} sigma (p = {best['local_p_value']:.2g})",
    ]
    if result.get("global"):
        g = result["global"]
        bound = "< " if g["p_value_is_upper_bound"] else ""
        lines.append(
            f"- global significance {g['global_significance']:.2f} sigma (p {bound}{max(g['global_p_value'], 1 / (g['pseudo_experiments'] + 1)):.2g}, "
            f"{g['pseudo_experiments']} pseudo-experiments, {g['failed_fits']} failed fits)"
        )
        if g["global_significance"] > best["local_significance"]:
            lines.append(
                "- global above local: the local p-value counts the fit's uncertainty and the refitted background "
                "absorbs part of any excess, so it is conservative; the global p-value is calibrated on "
                "pseudo-experiments treated the same way"
            )
    if result.get("injection"):
        lines += ["", "## Signal injection", "", "| strength | injected | peak [GeV] | found window [GeV] | local Z |", "| --- | --- | --- | --- | --- |"]
        for row in result["injection"]:
            lines.append(
                f"| {row['strength']:g} | {row['injected_signal_sum']:.1f} | {row['injected_signal_peak_gev']:.0f} | "
                f"{row['low_gev']:.0f}-{row['high_gev']:.0f} | {row['local_significance']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def write_report(hunt: BumpHunt, outdir: Path, label: str, extra: dict | None = None, hists_2d: dict | None = None) -> dict[str, Path]:
    """``bumphunt.json``, ``bumphunt.md``, ``fit.png``, ``scan.png`` and any 2D plots under ``outdir``."""
    outdir.mkdir(parents=True, exist_ok=True)
    result = {"label": label, **hunt.to_dict(), **(extra or {})}
    paths = {"json": outdir / "bumphunt.json", "markdown": outdir / "bumphunt.md"}
    paths["json"].write_text(json.dumps(result, indent=2) + "\n")
    paths["markdown"].write_text(markdown(result))
    paths["fit"] = plot_fit(hunt, outdir / "fit.png", title=label)
    paths["scan"] = plot_scan(hunt, outdir / "scan.png")
    for name, histogram in (hists_2d or {}).items():
        paths[name] = plot_2d(histogram, outdir / f"{name}.png", title=label)
    return paths

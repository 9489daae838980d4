"""Write one anomaly search: histograms (.coffea, ROOT), per-event scores (parquet), plots, a
bump-hunt report per cut, and ``anomaly.json`` last, so its presence marks a finished search."""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np

from pairhunt.anomaly.methods import Scores, SearchConfig
from pairhunt.anomaly.plots import plot_cuts, plot_scan, plot_sculpting, plot_sic
from pairhunt.anomaly.regions import SIGNAL_REGION, Window
from pairhunt.anomaly.sample import AnomalySample
from pairhunt.anomaly.scan import WindowSearch, look_elsewhere
from pairhunt.anomaly.search import apply_cut, describe, mass_histogram, score_events, score_histogram
from pairhunt.anomaly.significance import max_sic, sic_curve
from pairhunt.atomic import atomic_path, write_text_atomically
from pairhunt.bumphunt.fit import fit_dijet
from pairhunt.bumphunt.report import write_report
from pairhunt.bumphunt.spectrum import Spectrum
from pairhunt.errors import PairhuntError
from pairhunt.event_table import KEYS
from pairhunt.outputs import write_hists


def _sideband_prediction(histogram, window: Window) -> np.ndarray | None:
    """The sideband fit's prediction across the range for one selection's spectrum."""
    spectrum = Spectrum.from_hist(histogram)
    try:
        return fit_dijet(spectrum, 3, blind=(window.low, window.high)).expected()
    except PairhuntError:  # too few events after a cut: the plot goes without its dashed line
        return None


def signal_improvement(
    background: AnomalySample, background_scores: np.ndarray, signal: AnomalySample, signal_scores: np.ndarray, window: Window
) -> dict:
    """SIC = ε_S / √ε_B against ε_S in the signal region, simulated signal against simulated background."""
    in_background = window.roles(background.mass) == SIGNAL_REGION
    in_signal = window.roles(signal.mass) == SIGNAL_REGION
    events = {"signal": int(in_signal.sum()), "background": int(in_background.sum())}
    if not (in_signal.any() and in_background.any()):
        return {"events": events, "error": "no simulated signal or background in the signal region"}
    scores = np.concatenate([background_scores[in_background], signal_scores[in_signal]])
    truth = np.concatenate([np.zeros(in_background.sum(), dtype=bool), np.ones(in_signal.sum(), dtype=bool)])
    weight = np.concatenate([background.weight[in_background], signal.weight[in_signal]])
    eps_s, eps_b, sic = sic_curve(scores, truth, weight)
    return {
        "eps_s": eps_s.tolist(), "eps_b": eps_b.tolist(), "sic": sic.tolist(),
        "max_sic_eps_b_above_1pc": max_sic(eps_s, eps_b, sic, 0.01),
        "events": events,
    }


def write_search(
    output: Path, method: str, data: AnomalySample, window: Window, config: SearchConfig, keep: tuple[float, ...],
    reference: AnomalySample | None = None, signal: AnomalySample | None = None, background: AnomalySample | None = None,
    pseudo_experiments: int = 100, resolution: float = 0.1, inputs: dict | None = None, toys: int = 0,
) -> dict[str, Path]:
    """Run ``method`` on ``data`` in ``window`` and write everything under ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    done = output / "anomaly.json"
    done.unlink(missing_ok=True)  # a previous search's result must not outlive a failed rerun
    # simulated signal beside simulated background: scored by the same models for the SIC curve
    # (not for the supervised classifier, which trains on that signal)
    with_signal = background is not None and signal is not None and method != "supervised"
    also = AnomalySample.concatenate([background, signal]) if with_signal else background
    scores = score_events(method, data, window, config, reference, signal, also=also)
    if with_signal:
        signal_scores = scores.also[len(background):]
        scores = Scores(scores.data, scores.also[: len(background)])
    cuts = [apply_cut(data, scores, window, k, background, pseudo_experiments, config.seed, resolution, toys) for k in keep]
    masses = mass_histogram(data, window, cuts)
    paths = write_hists({"hists": {"mass": masses, "score": score_histogram(data, window, scores)}}, output)
    paths["scores"] = output / "scores.parquet"
    with atomic_path(paths["scores"]) as tmp:
        columns = {k: np.ascontiguousarray(data.keys[:, i]) for i, k in enumerate(KEYS)}
        columns |= {"dataset": data.origin.astype(str), "mass": data.mass, "weight": data.weight, "score": scores.data}
        ak.to_parquet(ak.zip(columns), tmp)
    predictions = {}
    for selection in masses.axes["selection"]:
        predicted = _sideband_prediction(masses[{"selection": selection}], window)
        if predicted is not None:
            predictions[selection] = predicted
    paths["cuts_plot"] = plot_cuts(masses, window, predictions, output / "mass_cuts.png")
    result = {
        "method": method, "window": window.to_dict(), "features": list(data.names), "inputs": inputs or {},
        "config": {"folds": config.folds, "seed": config.seed, "oversample": config.oversample},
        **describe(data, window), "cuts": [],
    }
    for cut in cuts:
        entry = {"keep": cut.keep, "threshold": cut.threshold, "sideband_fit": cut.significance, "sculpting": cut.sculpting}
        if cut.hunt is not None:
            hunt_dir = output / f"keep_{cut.keep:g}"
            write_report(cut.hunt, hunt_dir, f"{method}, keep {cut.keep:g}")
            entry["bump_hunt"] = {
                "most_significant_window": cut.hunt.scan.best_window(),
                "global": None if cut.hunt.global_ is None else cut.hunt.global_.to_dict(),
            }
        result["cuts"].append(entry)
    if background is not None:
        shapes = {f"keep {c.keep:g}": c.sculpting for c in cuts}
        paths["sculpting_plot"] = plot_sculpting(shapes, window, output / "sculpting.png")
    if with_signal:
        result["sic"] = signal_improvement(background, scores.also, signal, signal_scores, window)
        if "error" not in result["sic"]:
            paths["sic_plot"] = plot_sic(result["sic"], output / "sic.png")
    write_text_atomically(done, json.dumps(result, indent=2, default=float) + "\n")
    paths["json"] = done
    return paths


def write_scan(output: Path, method: str, results: list[WindowSearch], inputs: dict | None = None) -> tuple[dict, dict[str, Path]]:
    """A scan of sliding windows: ``scan.png`` and ``scan.json`` (last: its presence marks a
    finished scan); returns the JSON's content and the paths."""
    output.mkdir(parents=True, exist_ok=True)
    done = output / "scan.json"
    done.unlink(missing_ok=True)
    windows = [r.to_dict() for r in results]
    result = {"method": method, "inputs": inputs or {}, "look_elsewhere": look_elsewhere(results), "windows": windows}
    paths = {"plot": plot_scan(windows, output / "scan.png")}
    write_text_atomically(done, json.dumps(result, indent=2, default=float) + "\n")
    paths["json"] = done
    return result, paths

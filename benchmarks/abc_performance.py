"""ABC against minimal mass asymmetry on generated signals and QCD the model never saw.

For every sample the events go through the processor's own selection (``pair_abc``: >= 6 jets,
HT > 1 TeV, leading 10 jets), then through both methods; candidates are built in float64 as in
the processor. Reported per signal and method: the peak (mode) and the 68% half-width of the
signal's average parent mass, the signal and (weighted) QCD efficiency in a window of +-20%
around the true mass, and the S/B gain over mass asymmetry; per method the QCD average-mass
peak (sculpting); the anomaly-score ROC of each signal against QCD. Plots go next to the JSON.

    python benchmarks/abc_performance.py --model models/pair_abc.onnx \
        --background qcd_test.root --signal gluino1000=gluino1000.root:1000 ... \
        --output benchmarks/results/abc_performance.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from pairhunt.abc_assignment import AbcAssignment
from pairhunt.baselines import MassAsymmetry
from pairhunt.candidates import build_candidates
from pairhunt.cutflow import Cutflow
from pairhunt.inputs import select_jets
from pairhunt.topology import load_topology

WINDOW = 0.2  # +-20% of the true mass: 1.2-1.8 TeV for 1.5 TeV, the reference window


def reconstruct(path: str, methods, topology) -> dict:
    """Average parent mass per method, anomaly score, weights and the selection efficiency."""
    tree = uproot.open(path)["Events"]
    raw = tree.arrays(["Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "genWeight"])
    jets = ak.zip({k: raw[f"Jet_{k}"] for k in ("pt", "eta", "phi", "mass")})
    events = ak.zip({"Jet": jets}, depth_limit=1)
    weight = ak.to_numpy(raw.genWeight).astype(np.float64)
    features = sorted({f for m in methods for f in m.required_features(topology)})
    inputs, selected = select_jets(events, topology.jets, Cutflow(weight), features)
    out = {"weight": weight[selected], "selection_efficiency": float(weight[selected].sum() / weight.sum())}
    for method in methods:
        assignment = method.assign(inputs, topology)
        n_products = topology.max_products if assignment.fixed_multiplicity else None
        out[method.name] = build_candidates(inputs, assignment, topology.n_parents, n_products).mass_average
        if assignment.score is not None:
            out[f"{method.name}_score"] = assignment.score
    return out


def peak(values: np.ndarray, weights: np.ndarray, bin_width: float = 25.0) -> float:
    finite = np.isfinite(values)
    counts, edges = np.histogram(values[finite], bins=np.arange(0.0, 4000.0 + bin_width, bin_width), weights=weights[finite])
    return float(edges[np.argmax(counts)] + bin_width / 2)


def half_width_68(values: np.ndarray, centre: float) -> float:
    """Half-width of the narrowest interval around ``centre`` that holds 68% of the complete events."""
    distance = np.sort(np.abs(values[np.isfinite(values)] - centre))
    return float(distance[int(0.68 * (len(distance) - 1))]) if len(distance) else float("nan")


def in_window(values: np.ndarray, weights: np.ndarray, mass: float) -> float:
    inside = np.isfinite(values) & (values > (1 - WINDOW) * mass) & (values < (1 + WINDOW) * mass)
    return float(weights[inside].sum() / weights.sum())


def roc(signal: np.ndarray, background: np.ndarray, background_weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Signal and QCD efficiencies of the cuts score > c (an anomaly has a high score) and the AUC."""
    cuts = np.quantile(np.concatenate([signal, background]), np.linspace(0, 1, 201))
    eff_s = np.array([(signal > c).mean() for c in cuts])
    eff_b = np.array([background_weight[background > c].sum() / background_weight.sum() for c in cuts])
    auc = float(-np.trapezoid(eff_s, eff_b))
    return eff_s, eff_b, auc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/pair_abc.onnx")
    parser.add_argument("--background", nargs="+", required=True, help="QCD ROOT files (weighted)")
    parser.add_argument("--signal", nargs="+", required=True, help="NAME=FILE:MASS")
    parser.add_argument("--output", default="benchmarks/results/abc_performance.json")
    args = parser.parse_args()

    topology = load_topology("pair_abc")
    # mass asymmetry over all ten kept jets, and over the leading six (the usual multijet choice)
    methods = [AbcAssignment(model=args.model, name="abc", threads=2), MassAsymmetry(), MassAsymmetry(name="mass_asymmetry_6", max_jets=6)]
    names = [m.name for m in methods]
    parts = [reconstruct(path, methods, topology) for path in args.background]
    background = {k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k != "selection_efficiency"}
    bkg_w = background["weight"]
    results = {
        "model": args.model,
        "window": f"+-{WINDOW:.0%} of the true mass",
        "background": {
            "files": args.background,
            "selected_events": int(len(bkg_w)),
            "effective_events": float(bkg_w.sum() ** 2 / (bkg_w**2).sum()),
            "average_mass_peak_gev": {n: peak(background[n], bkg_w) for n in names},
        },
        "signals": {},
    }
    score_cut = float(np.quantile(background["abc_score"], 0.5))  # keeps half the QCD events (unweighted)
    results["background"]["score_cut"] = score_cut
    curves = {}
    for spec in args.signal:
        label, _, rest = spec.partition("=")
        path, _, mass = rest.rpartition(":")
        mass = float(mass)
        signal = reconstruct(path, methods, topology)
        sig_w = signal["weight"]
        entry = {"file": path, "mass_gev": mass, "selected_events": int(len(sig_w)), "selection_efficiency": signal["selection_efficiency"]}
        for n in names:
            mode = peak(signal[n], sig_w)
            entry[n] = {
                "peak_gev": mode,
                "half_width_68_gev": half_width_68(signal[n], mode),
                "signal_efficiency": in_window(signal[n], sig_w, mass),
                "background_efficiency": in_window(background[n], bkg_w, mass),
            }
            e = entry[n]
            e["s_over_b_factor"] = e["signal_efficiency"] / e["background_efficiency"] if e["background_efficiency"] else float("inf")
        keep_s, keep_b = signal["abc_score"] > score_cut, background["abc_score"] > score_cut
        entry["abc_score_cut"] = {
            "signal_efficiency": in_window(np.where(keep_s, signal["abc"], np.nan), sig_w, mass),
            "background_efficiency": in_window(np.where(keep_b, background["abc"], np.nan), bkg_w, mass),
        }
        for baseline in names[1:]:
            entry[f"s_over_b_gain_abc_vs_{baseline}"] = entry["abc"]["s_over_b_factor"] / entry[baseline]["s_over_b_factor"]
        eff_s, eff_b, auc = roc(signal["abc_score"], background["abc_score"], bkg_w)
        entry["anomaly_score_auc"] = auc
        curves[label] = (eff_s, eff_b, signal)
        results["signals"][label] = entry
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    plot(output.with_suffix(""), names, background, curves, score_cut)
    print(json.dumps(results, indent=2))


def plot(stem: Path, names: list[str], background: dict, curves: dict, score_cut: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep

    plt.style.use(hep.style.CMS)
    bins = np.linspace(0, 3000, 61)
    fig, axes = plt.subplots(1, len(names), figsize=(8 * len(names), 7), sharey=True)
    for ax, name in zip(axes, names):
        for label, (_, _, signal) in curves.items():
            values = signal[name][np.isfinite(signal[name])]
            ax.hist(values, bins=bins, histtype="step", density=True, label=label)
        finite = np.isfinite(background[name])
        ax.hist(background[name][finite], bins=bins, weights=background["weight"][finite], density=True, color="grey", alpha=0.5, label="QCD")
        ax.set_xlabel("Average parent mass [GeV]")
        ax.set_title(name, fontsize=18)
        ax.legend(fontsize=14)
    axes[0].set_ylabel("Normalised")
    fig.savefig(f"{stem}_mass.png", dpi=80, bbox_inches="tight")

    fig, ax = plt.subplots(figsize=(8, 7))
    for label, (eff_s, eff_b, _) in curves.items():
        ax.plot(eff_b, eff_s, label=label)
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_xlabel("QCD efficiency (anomaly score > cut)")
    ax.set_ylabel("Signal efficiency")
    ax.legend(fontsize=14)
    fig.savefig(f"{stem}_roc.png", dpi=80, bbox_inches="tight")

    fig, ax = plt.subplots(figsize=(8, 7))
    finite = np.isfinite(background["abc"])
    for label, keep in (("all", finite), (f"score > {score_cut:.3g}", finite & (background["abc_score"] > score_cut))):
        ax.hist(background["abc"][keep], bins=bins, weights=background["weight"][keep], density=True, histtype="step", label=label)
    ax.set_xlabel("QCD average parent mass, ABC [GeV]")
    ax.set_ylabel("Normalised")
    ax.legend(fontsize=14)
    fig.savefig(f"{stem}_sculpting.png", dpi=80, bbox_inches="tight")


if __name__ == "__main__":
    main()

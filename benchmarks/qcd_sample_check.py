"""Do QCD samples generated with different p̂T thresholds and biases describe the same physics?

A sample with a higher p̂T threshold and a milder bias gives flatter event weights (more
effective events per generated event) but misses the events with a p̂T below its threshold.
This compares the weighted cross-section of the ``pair_abc`` selection, binned in HT and in the
minimal-mass-asymmetry average mass (leading six jets), between samples: where the thresholds
do not matter the ratio is one within statistics. Cross-sections come from each file's summary
(Pythia's ``sigmaGen``; ``sum_genWeight`` covers every generated event).

    python benchmarks/qcd_sample_check.py --reference qcd_pthat200_pow4.root \\
        --sample qcd_pthat400_pow2.root [more.root ...] --output benchmarks/results/qcd_sample_check.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from pairhunt.assign.baselines import MassAsymmetry
from pairhunt.candidates import build_candidates
from pairhunt.cutflow import Cutflow
from pairhunt.inputs import select_jets
from pairhunt.topology import load_topology

HT_EDGES = np.array([1000, 1150, 1300, 1450, 1600, 1800, 2000, 2300, 2700, 3500.0])
MASS_EDGES = np.array([0, 200, 300, 400, 500, 600, 700, 850, 1000, 1300, 2000.0])


def selected(paths: list[str]) -> dict[str, np.ndarray]:
    """HT, six-jet mass-asymmetry average mass and cross-section per selected event [pb]."""
    topology = load_topology("pair_abc")
    parts = []
    for path in paths:
        summary = json.loads(Path(path).with_suffix(".summary.json").read_text())
        raw = uproot.open(path)["Events"].arrays(["Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "genWeight"])
        events = ak.zip({"Jet": ak.zip({k: raw[f"Jet_{k}"] for k in ("pt", "eta", "phi", "mass")})}, depth_limit=1)
        weight = ak.to_numpy(raw.genWeight).astype(np.float64)
        inputs, keep = select_jets(events, topology.jets, Cutflow(weight), [])
        assignment = MassAsymmetry(max_jets=6).assign(inputs, topology)
        mass = build_candidates(inputs, assignment, topology.n_parents, topology.max_products).mass_average
        # HT of all selected jets (pT > 30 GeV, |eta| < 2.5), not only the kept ten
        good = (raw.Jet_pt > 30) & (np.abs(raw.Jet_eta) < 2.5)
        ht = ak.to_numpy(ak.sum(raw.Jet_pt[good], axis=1))[keep]
        # each file is its own estimate of the cross-section: events weighted by sigma / sum of weights / files
        xsec = weight[keep] * summary["cross_section_pb"] / summary["sum_genWeight"] / len(paths)
        parts.append({"ht": ht, "mass": mass, "xsec": xsec})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def binned(values: np.ndarray, xsec: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cross-section per bin [pb] and its statistical uncertainty."""
    total = np.histogram(values, bins=edges, weights=xsec)[0]
    error = np.sqrt(np.histogram(values, bins=edges, weights=xsec**2)[0])
    return total, error


def compare(reference: dict, sample: dict, variable: str, edges: np.ndarray) -> list[dict]:
    ref, ref_err = binned(reference[variable], reference["xsec"], edges)
    val, val_err = binned(sample[variable], sample["xsec"], edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = val / ref
        error = ratio * np.sqrt((val_err / val) ** 2 + (ref_err / ref) ** 2)
    return [
        {"low": float(lo), "high": float(hi), "reference_pb": float(r), "sample_pb": float(v), "ratio": float(q), "ratio_error": float(e)}
        for lo, hi, r, v, q, e in zip(edges[:-1], edges[1:], ref, val, ratio, error)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", nargs="+", required=True, help="QCD files with the lower p̂T threshold")
    parser.add_argument("--sample", nargs="+", required=True, help="QCD files to check against them")
    parser.add_argument("--output", default="benchmarks/results/qcd_sample_check.json")
    args = parser.parse_args()
    reference, sample = selected(args.reference), selected(args.sample)
    effective = {
        name: {"selected": int(len(d["xsec"])), "effective": float(d["xsec"].sum() ** 2 / (d["xsec"] ** 2).sum())}
        for name, d in (("reference", reference), ("sample", sample))
    }
    result = {
        "reference": args.reference, "sample": args.sample, "events": effective,
        "selected_cross_section_pb": {"reference": float(reference["xsec"].sum()), "sample": float(sample["xsec"].sum())},
        "ht": compare(reference, sample, "ht", HT_EDGES),
        "mass_asymmetry_6_average_mass": compare(reference, sample, "mass", MASS_EDGES),
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(effective), json.dumps(result["selected_cross_section_pb"]))
    for variable in ("ht", "mass_asymmetry_6_average_mass"):
        print(f"\n{variable}: bin, sample / reference")
        for row in result[variable]:
            print(f"  {row['low']:6.0f}-{row['high']:6.0f}  {row['ratio']:.3f} +- {row['ratio_error']:.3f}")


if __name__ == "__main__":
    main()

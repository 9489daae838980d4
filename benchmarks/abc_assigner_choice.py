"""Which member of an ABC ensemble should assign the jets? Background-only criteria against signal.

Why: the members of one recipe assign very differently (tuning 1.8 TeV gluinos inside ±15 % of
the true mass: 0 % to 46 %), and the ensemble's mass spectrum is that of one member.
``pairhunt train abc --seeds`` lets the lowest validation loss assign; an unsupervised search
can only choose on background. This benchmark puts each candidate criterion next to what it
should predict, on tuning samples: for every member of every ensemble run given,

- background only: the validation loss terms of its ``best.pt`` epoch (``history.json``), its
  agreement with the other members' assignments on ``--choice-background`` events (fraction of
  real jets in the same category, parents A and B interchangeable; mean and median over the other
  members), the fraction of background jets it sends to ISR, the weighted 90th percentile of the
  background's average parent mass (how far it pushes QCD towards the masses where signals sit);
- with signal: per ``--signal``, the efficiency ε_S of the ±``--window`` mass window around the
  true mass, ε_B of the weighted ``--background`` in the same window, ε_S/ε_B and ε_S/√ε_B (what
  a bump hunt gains);
- which member each criterion picks, and the same figures for a per-event consensus (every
  event assigned by the member that agrees best with the others on that event).

The summary ranks every member by its mean ε_S/√ε_B over the signals and gives each criterion's
Spearman correlation with it over all members of all runs, and over the usable ones (those that
put ≥ 10 % of some signal in its window: the rest never left the ISR-heavy start of training).

    python benchmarks/abc_assigner_choice.py --runs runs/ens_a runs/ens_b \\
        --choice-background qcd_calib_507.root --background tune_qcd400b4.root \\
        --signal gluino1300=tune_gluino1300.root:1300 gluino1800=tune_gluino1800.root:1800 \\
        --output benchmarks/results/abc_assigner_choice.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from pairhunt.topology import load_topology
from pairhunt.train.abc_ensemble import member_dirs
from pairhunt.train.abc_model import PARENTS
from pairhunt.train.abc_trainer import load_member
from pairhunt.train.data import TrainingData, from_nanoaod
from pairhunt.train.loop import best_record

sys.path.insert(0, str(Path(__file__).parent))  # benchmarks/ is no package
from abc_reference import weighted_quantile  # noqa: E402  (the p90 of the issue's table, one definition)

ISR = PARENTS  # the category index of ISR


def agreement(first: torch.Tensor, second: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per event, the fraction of real jets two assignments put in the same category (A and B interchangeable)."""
    swapped = torch.where(second < PARENTS, PARENTS - 1 - second, second)
    same = ((first == second) & mask).sum(dim=1)
    crossed = ((first == swapped) & mask).sum(dim=1)
    return torch.maximum(same, crossed) / mask.sum(dim=1).clamp_min(1)


def assign(models: list[torch.nn.Module], data: TrainingData, batch_size: int = 4096) -> tuple[list[torch.Tensor], np.ndarray]:
    """Every member's argmax categories ``[E, N]`` and average parent masses ``[members, E]``."""
    categories: list[list[torch.Tensor]] = [[] for _ in models]
    masses: list[list[torch.Tensor]] = [[] for _ in models]
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            jets = torch.as_tensor(data.features[start : start + batch_size], dtype=torch.float32)
            mask = torch.as_tensor(data.mask[start : start + batch_size])
            for i, model in enumerate(models):
                probabilities, _, mass = model.hard_assignment_score(jets, mask)
                categories[i].append(probabilities.argmax(dim=-1))
                masses[i].append(mass)
    return [torch.cat(c) for c in categories], torch.stack([torch.cat(m) for m in masses]).numpy()


def agreement_matrix(categories: list[torch.Tensor], mask: torch.Tensor, weight: torch.Tensor) -> np.ndarray:
    """Weighted mean agreement of every pair of members."""
    n = len(categories)
    matrix = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i, j] = matrix[j, i] = float((weight * agreement(categories[i], categories[j], mask)).sum() / weight.sum())
    return matrix


def consensus(categories: list[torch.Tensor], mask: torch.Tensor) -> np.ndarray:
    """Per event, the member whose assignment agrees best (summed) with the others' on that event."""
    n = len(categories)
    total = torch.zeros(n, mask.shape[0], dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            if i != j:
                total[i] += agreement(categories[i], categories[j], mask)
    return total.argmax(dim=0).numpy()


def window_figures(signal_mass: np.ndarray, background_mass: np.ndarray, weight: np.ndarray, true_mass: float, window: float) -> dict:
    lo, hi = (1 - window) * true_mass, (1 + window) * true_mass
    eps_s = float(np.mean((signal_mass > lo) & (signal_mass < hi)))
    eps_b = float(weight[(background_mass > lo) & (background_mass < hi)].sum() / weight.sum())
    return {
        "eps_s": eps_s, "eps_b": eps_b,
        "s_over_b": eps_s / eps_b if eps_b > 0 else None,
        "s_over_sqrt_b": eps_s / np.sqrt(eps_b) if eps_b > 0 else None,
    }


def best_validation_record(run_dir: Path) -> dict:
    best = best_record(json.loads((run_dir / "history.json").read_text()), "val_objective")
    return {key[4:]: value for key, value in best.items() if key.startswith("val_")}


def study_run(run_dir: Path, choice: TrainingData, background: TrainingData, signals: dict, window: float) -> dict:
    members = member_dirs(run_dir) or sorted(run_dir.glob("seed_*"))
    members = sorted(members, key=lambda m: m.name)
    models = [load_member(m) for m in members]
    names = [m.name for m in members]
    choice_mask = torch.as_tensor(choice.mask)
    choice_categories, choice_mass = assign(models, choice)
    matrix = agreement_matrix(choice_categories, choice_mask, torch.as_tensor(choice.weights, dtype=torch.float64))
    others = ~np.eye(len(names), dtype=bool)
    background_categories, background_mass = assign(models, background)
    background_choice = consensus(background_categories, torch.as_tensor(background.mask))
    rows = {}
    for i, name in enumerate(names):
        isr = float(((choice_categories[i] == ISR) & choice_mask).sum() / choice_mask.sum())
        rows[name] = {
            "validation": best_validation_record(members[i]),
            "mean_agreement": float(matrix[i][others[i]].mean()),
            "median_agreement": float(np.median(matrix[i][others[i]])),
            "background_isr_jet_fraction": isr,
            "background_mass_q90": weighted_quantile(choice_mass[i], choice.weights, 0.9),
            "signals": {},
        }
    consensus_rows: dict[str, dict] = {}
    for signal_name, (data, true_mass) in signals.items():
        categories, mass = assign(models, data)
        chosen = consensus(categories, torch.as_tensor(data.mask))
        for i, name in enumerate(names):
            rows[name]["signals"][signal_name] = window_figures(mass[i], background_mass[i], background.weights, true_mass, window)
        consensus_rows[signal_name] = window_figures(
            mass[chosen, np.arange(len(chosen))], background_mass[background_choice, np.arange(len(background_choice))],
            background.weights, true_mass, window,
        )
    for row in rows.values():
        values = [s["s_over_sqrt_b"] or 0.0 for s in row["signals"].values()]
        row["mean_s_over_sqrt_b"] = float(np.mean(values))
    picks = {
        "lowest_validation_loss": min(names, key=lambda n: rows[n]["validation"]["loss"]),
        "mean_agreement": max(names, key=lambda n: rows[n]["mean_agreement"]),
        "lowest_background_mass_q90": min(names, key=lambda n: rows[n]["background_mass_q90"]),
        "median_agreement": max(names, key=lambda n: rows[n]["median_agreement"]),
    }
    by_quality = sorted(names, key=lambda n: -rows[n]["mean_s_over_sqrt_b"])
    return {
        "members": rows, "agreement_matrix": matrix.tolist(), "consensus": consensus_rows,
        "picks": {criterion: {"member": pick, "quality_rank": by_quality.index(pick) + 1} for criterion, pick in picks.items()},
        "best_member": by_quality[0],
    }


USABLE_EFFICIENCY = 0.1  # a member that puts this much of some signal in its window can assign at all


def usable(row: dict) -> bool:
    return max(figures["eps_s"] for figures in row["signals"].values()) >= USABLE_EFFICIENCY


def correlations(runs: dict, keep=lambda row: True) -> dict:
    """Spearman correlation of each background-only quantity with mean ε_S/√ε_B, over the members ``keep`` accepts."""
    rows = [row for run in runs.values() for row in run["members"].values() if keep(row)]
    quality = [row["mean_s_over_sqrt_b"] for row in rows]
    quantities = {
        "minus_validation_loss": [-row["validation"]["loss"] for row in rows],
        "mean_agreement": [row["mean_agreement"] for row in rows],
        "median_agreement": [row["median_agreement"] for row in rows],
        "minus_background_isr_jet_fraction": [-row["background_isr_jet_fraction"] for row in rows],
        "minus_background_mass_q90": [-row["background_mass_q90"] for row in rows],
    }
    for term in rows[0]["validation"]:
        if term not in ("loss", "objective"):
            quantities[f"minus_validation_{term}"] = [-row["validation"][term] for row in rows]
    return {name: float(spearmanr(values, quality).statistic) for name, values in quantities.items()}


def parse_signal(spec: str) -> tuple[str, str, float]:
    name, _, rest = spec.partition("=")
    path, _, mass = rest.rpartition(":")
    if not name or not path:
        raise SystemExit(f"--signal {spec!r}: expected NAME=FILE:MASS")
    return name, path, float(mass)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="ABC ensemble run directories")
    parser.add_argument("--choice-background", nargs="+", required=True, help="background files the agreement is measured on")
    parser.add_argument("--background", nargs="+", required=True, help="weighted background files (ε_B)")
    parser.add_argument("--signal", nargs="+", required=True, help="NAME=FILE:MASS")
    parser.add_argument("--window", type=float, default=0.15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/abc_assigner_choice.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    topology = load_topology("pair_abc")
    read = (lambda files: from_nanoaod(files, topology, require_truth=False))
    choice, background = read(args.choice_background), read(args.background)
    signals = {name: (read([path]), mass) for name, path, mass in map(parse_signal, args.signal)}
    runs = {str(run): study_run(run, choice, background, signals, args.window) for run in args.runs}
    result = {"command": vars(args) | {"runs": [str(r) for r in args.runs], "output": str(args.output)},
              "runs": runs, "spearman_with_mean_s_over_sqrt_b": correlations(runs),
              "spearman_over_usable_members": correlations(runs, usable)}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    for run, entry in runs.items():
        print(f"{run}: best member {entry['best_member']}; " + ", ".join(
            f"{c} picks {p['member']} (rank {p['quality_rank']})" for c, p in entry["picks"].items()))
        for name, row in entry["members"].items():
            figures = " ".join(f"{s}: {f['eps_s']:.2f}/{(f['s_over_sqrt_b'] or 0):.1f}" for s, f in row["signals"].items())
            print(f"  {name} loss {row['validation']['loss']:.3f} agreement {row['mean_agreement']:.3f}/{row['median_agreement']:.3f} "
                  f"ISR {row['background_isr_jet_fraction']:.2f} m90 {row['background_mass_q90']:.0f} | ε_S/(ε_S/√ε_B) {figures}")
        figures = " ".join(f"{s}: {f['eps_s']:.2f}/{(f['s_over_sqrt_b'] or 0):.1f}" for s, f in entry["consensus"].items())
        print(f"  per-event consensus | {figures}")
    print("Spearman with mean ε_S/√ε_B over all members:", json.dumps(result["spearman_with_mean_s_over_sqrt_b"], indent=1))
    print(f"... over the members that put >= {USABLE_EFFICIENCY:.0%} of a signal in its window:",
          json.dumps(result["spearman_over_usable_members"], indent=1))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

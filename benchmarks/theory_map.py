"""The theory map on held-out theory sets (issue 14's figures), from one run over files never
used in training.

    python benchmarks/theory_map.py --run RUN_TEST --model models/theory_map.onnx \
        --left-out-mass gluino_1375 --neighbours gluino_1250 gluino_1500 --left-out-theory stop_1200 stop_1600 \
        --output benchmarks/results/theory_map.json

- set-level accuracy over the library at several set sizes (disjoint sets of held-out events,
  unweighted by hit-or-miss; a set is assigned its most probable theory, and flagged unlike
  every theory, on the map or in the pooled representation, against the thresholds of its size),
  with the confusion matrix;
- single-event accuracy: the same network on sets of one event, each theory's density made from
  one half of the held-out events and tested on the other (and the other way round);
- the same on windowed sets (events within ±15 % of each theory's median mass), as
  ``pairhunt characterize`` forms them;
- the ordering test: the sets of a gluino mass left out of training, their two nearest gluino
  centres and where they fall between them (0 at the lighter, 1 at the heavier neighbour);
- the unlike flag on the sets of a theory left out entirely and on the library's own sets;
- ``theory_map.png``: the library, the left-out mass and the left-out theory on the map.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pairhunt.theory import TheoryDensity, TheoryMap, disjoint_sets, load_events
from pairhunt.theory.embedding import Placement


def placed_sets(
    theory_map: TheoryMap, run: str, dataset: str, size: int, rng: np.random.Generator, window: float | None = None
) -> Placement:
    """The disjoint sets of ``size`` held-out events of ``dataset`` placed on the map; with
    ``window``, only events within that fraction of the sample's weighted median mass (as a bump
    hunt's window)."""
    events = load_events(run, theory_map.contract.method, [dataset], tuple(theory_map.contract.features))
    if window is not None:
        order = np.argsort(events.mass)
        median = events.mass[order][np.searchsorted(np.cumsum(events.weight[order]), 0.5 * events.weight.sum())]
        events = events.subset(np.abs(events.mass - median) < window * median)
    sets = disjoint_sets(events.weight, size, rng)
    return theory_map.place(events.features[sets], np.ones(sets.shape, dtype=np.float32), size)


def set_accuracy(theory_map: TheoryMap, run: str, size: int, seed: int, window: float | None = None) -> dict:
    rng = np.random.default_rng(seed)
    classes = theory_map.classes
    confusion = np.zeros((len(classes), len(classes)), dtype=int)
    flagged, on_map, pooled = {}, {}, {}
    for k, name in enumerate(classes):
        placement = placed_sets(theory_map, run, name, size, rng, window)
        for nearest in placement.nearest():
            confusion[k, classes.index(nearest)] += 1
        flagged[name] = float(placement.unlike.mean())
        on_map[name], pooled[name] = float(placement.unlike_on_map.mean()), float(placement.unlike_pooled.mean())
    per_theory = {name: float(confusion[k, k] / max(confusion[k].sum(), 1)) for k, name in enumerate(classes)}
    return {
        "set_size": size, "sets": int(confusion.sum()), "accuracy": float(np.trace(confusion) / confusion.sum()),
        "per_theory": per_theory, "confusion": confusion.tolist(), "unlike_fraction": flagged,
        "unlike_fraction_all": float(np.average(list(flagged.values()), weights=confusion.sum(axis=1))),
        "unlike_on_map_fraction_all": float(np.average(list(on_map.values()), weights=confusion.sum(axis=1))),
        "unlike_pooled_fraction_all": float(np.average(list(pooled.values()), weights=confusion.sum(axis=1))),
    }


def single_event_accuracy(theory_map: TheoryMap, run: str, seed: int) -> float:
    """Cross-fitted: densities of single-event points from one half, accuracy on the other."""
    rng = np.random.default_rng(seed)
    halves: list[dict[str, np.ndarray]] = [{}, {}]
    for name in theory_map.classes:
        points = placed_sets(theory_map, run, name, 1, rng).points
        halves[0][name], halves[1][name] = points[: len(points) // 2], points[len(points) // 2 :]
    correct = total = 0
    for fit, test in ((0, 1), (1, 0)):
        density = TheoryDensity(halves[fit])
        for name, points in halves[test].items():
            nearest = np.array(density.classes)[density.probabilities(points).argmax(axis=1)]
            correct += int(np.sum(nearest == name))
            total += len(points)
    return correct / total


def ordering(theory_map: TheoryMap, points: np.ndarray, neighbours: list[str], gluinos: list[str]) -> dict:
    """Where the left-out mass's sets fall among the library's gluino masses."""
    centres = {name: np.mean(theory_map.contract.library[name], axis=0) for name in gluinos}
    lighter, heavier = (centres[n] for n in neighbours)
    axis = heavier - lighter
    position = (points - lighter) @ axis / (axis @ axis)
    distances = np.stack([np.linalg.norm(points - centres[n], axis=1) for n in gluinos], axis=1)
    two_nearest = np.sort(np.argsort(distances, axis=1)[:, :2], axis=1)
    wanted = np.sort([gluinos.index(n) for n in neighbours])
    centre_position = float((points.mean(axis=0) - lighter) @ axis / (axis @ axis))
    return {
        "neighbours": neighbours, "sets": len(points),
        "fraction_with_both_neighbours_nearest": float(np.mean(np.all(two_nearest == wanted, axis=1))),
        "fraction_between": float(np.mean((position > 0) & (position < 1))),
        "position_of_mean_point": centre_position,
        "position_quartiles": np.quantile(position, [0.25, 0.5, 0.75]).tolist(),
    }


def plot(theory_map: TheoryMap, extra: dict[str, np.ndarray], path: Path) -> None:
    from pairhunt.bumphunt.plots import _pyplot
    from pairhunt.theory.plots import draw_library

    plt, _ = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 10))
    centre, axes = draw_library(plt, ax, theory_map.contract.library)
    for (name, points), marker in zip(extra.items(), ("x", "+", "^", "v")):
        xy = (points - centre) @ axes
        ax.scatter(xy[:, 0], xy[:, 1], s=30, marker=marker, color="black", label=f"{name} (held out of training)")
    ax.legend(fontsize=11)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="run over held-out files: one dataset per library theory, named as in the map")
    parser.add_argument("--model", default="theory_map")
    parser.add_argument("--set-sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--left-out-mass", required=True, help="dataset of a gluino mass the map never saw")
    parser.add_argument("--neighbours", nargs=2, required=True, help="the library's lighter and heavier neighbour of it")
    parser.add_argument("--left-out-theory", nargs="+", required=True, help="datasets of a theory the library lacks")
    parser.add_argument("--left-out-run", help="the run that holds the --left-out-theory datasets (default: --run)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    theory_map = TheoryMap(args.model)
    size = theory_map.contract.set_size
    rng = np.random.default_rng(args.seed)
    result = {
        "model": str(theory_map.path), "run": args.run, "left_out_run": args.left_out_run or args.run, "seed": args.seed, "set_size": size,
        "accuracy_by_set_size": {str(k): set_accuracy(theory_map, args.run, k, args.seed) for k in args.set_sizes},
        "single_event_accuracy": single_event_accuracy(theory_map, args.run, args.seed),
        # sets as characterize sees them: events within +-15 % of each theory's median mass
        "windowed_15_percent": set_accuracy(theory_map, args.run, size, args.seed, window=0.15),
    }
    gluinos = [n for n in theory_map.classes if n.startswith("gluino")]
    mass = placed_sets(theory_map, args.run, args.left_out_mass, size, rng)
    result["ordering"] = {args.left_out_mass: ordering(theory_map, mass.points, args.neighbours, gluinos)}
    left_out_run = args.left_out_run or args.run
    placed = {name: placed_sets(theory_map, left_out_run, name, size, rng) for name in args.left_out_theory}
    result["left_out_theory"] = {
        name: {"sets": len(p.points), "unlike_fraction": float(p.unlike.mean()),
               "unlike_on_map_fraction": float(p.unlike_on_map.mean()), "unlike_pooled_fraction": float(p.unlike_pooled.mean()),
               "nearest": {c: float(np.mean(p.nearest() == c)) for c in theory_map.classes if np.any(p.nearest() == c)}}
        for name, p in placed.items()
    }
    result["left_out_mass_unlike_fraction"] = float(mass.unlike.mean())
    output = Path(args.output)
    plot(theory_map, {args.left_out_mass: mass.points, **{n: p.points for n, p in placed.items()}}, output.with_suffix(".png"))
    output.write_text(json.dumps(result, indent=2) + "\n")
    at_size = result["accuracy_by_set_size"].get(str(size))
    if at_size:
        print(f"set-level accuracy at K = {size}: {at_size['accuracy']:.3f} ({at_size['sets']} sets); library sets flagged unlike: "
              f"{at_size['unlike_fraction_all']:.3f}")
    print(f"single-event accuracy: {result['single_event_accuracy']:.3f}")
    windowed = result["windowed_15_percent"]
    print(f"windowed sets (±15 %): accuracy {windowed['accuracy']:.3f}, flagged unlike {windowed['unlike_fraction_all']:.3f}")
    print(json.dumps({"ordering": result["ordering"], "left_out_theory": result["left_out_theory"]}, indent=2))


if __name__ == "__main__":
    main()

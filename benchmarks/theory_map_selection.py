"""How the theory map's settings and its unlike flag were chosen, without the theory it is finally
tested on: leave one *library* theory out of training and see whether the map flags it.

    python benchmarks/theory_map_selection.py --run RUN_TRAIN --method mass_asymmetry_6 \
        --left-out ttbar qcd cascade_1400_400 --left-out-mass gluino_1500 --latent 2 --seeds 1 2 \
        --output benchmarks/results/theory_map_selection.json

For every setting and every left-out theory, a map is trained on the other theories of the
training run, and the left-out theory's own training events (which this map never saw) are
placed on it in disjoint sets: the fraction flagged unlike every theory is what a better map
raises. Three flags are compared: the map's own kernel densities (below every theory's 5 %
density quantile of its validation sets), the novelty test on the sets' pooled representations
(``pairhunt.theory.novelty``, beyond every theory's 5 % distance quantile), and either of the two
(what the map ships with). A left-out gluino *mass* is placed too: it should land between its
neighbours and, being a gluino, mostly not be flagged. The setting with the highest mean flagged
fraction over the left-out theories is the one to train on the whole library; the theory the final benchmark
leaves out (``benchmarks/theory_map.py``) plays no part here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from pairhunt.theory import SetNovelty, TheoryDensity, disjoint_sets, load_events
from pairhunt.train.config import EmbedConfig
from pairhunt.train.embed_trainer import EmbedTrainer, load_embedding_run


FLAGS = ("novelty", "map_density", "either")


def flagged(method: str, library: dict, left_out: str, config: EmbedConfig) -> dict:
    """Train without ``left_out``; place its events; per flag, the fraction of its sets flagged."""
    with tempfile.TemporaryDirectory() as directory:
        trainer = EmbedTrainer({n: e for n, e in library.items() if n != left_out}, directory, config,
                               {"topology": "", "topology_inputs": [], "method": method})
        trainer.fit(progress=False)
        model, _, saved = load_embedding_run(directory)
    density = TheoryDensity({n: np.array(p) for n, p in saved["library"].items()})
    validation = trainer.embedded_sets(trainer.validation, config.library_sets, config.set_size)[0]
    log_thresholds = np.array([np.quantile(density.log_densities(validation[c])[:, k], config.unlike_quantile)
                               for k, c in enumerate(density.classes)])
    events = library[left_out]
    sets = disjoint_sets(events.weight, config.set_size, np.random.default_rng(config.seed))
    with torch.no_grad():
        pooled = model.pool(torch.from_numpy(events.features[sets]), torch.ones(sets.shape))
        points = model.rho(pooled).numpy()
    novelty = SetNovelty.from_dict(saved["novelty"]).unlike(pooled.numpy(), config.set_size)
    on_map = (density.log_densities(points) < log_thresholds).all(axis=1)
    nearest = np.array(density.classes)[density.probabilities(points).argmax(axis=1)]
    return {
        "sets": len(sets),
        "unlike_fraction": {"novelty": float(novelty.mean()), "map_density": float(on_map.mean()), "either": float((novelty | on_map).mean())},
        "nearest": {c: float(np.mean(nearest == c)) for c in np.unique(nearest)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="the training run (one dataset per library theory)")
    parser.add_argument("--method", default="mass_asymmetry_6")
    parser.add_argument("--left-out", nargs="+", required=True, help="library theories to leave out, one at a time")
    parser.add_argument("--left-out-mass", required=True, help="a library gluino mass to leave out (should not be flagged)")
    parser.add_argument("--latent", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="training seeds per setting (the figures vary by seed)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    summary = json.loads((Path(args.run) / "summary.json").read_text())
    library = {name: load_events(args.run, args.method, [name]) for name in sorted(summary["cutflow"])}
    results = {}
    for latent in args.latent:
        rows = {
            seed: {name: flagged(args.method, library, name, dataclasses.replace(EmbedConfig(), latent=latent, seed=seed, threads=args.threads))
                   for name in [*args.left_out, args.left_out_mass]}
            for seed in args.seeds
        }
        means = {flag: float(np.mean([r[n]["unlike_fraction"][flag] for r in rows.values() for n in args.left_out])) for flag in FLAGS}
        results[str(latent)] = {"by_seed": rows, "mean_unlike_fraction_of_left_out_theories": means}
        for flag in FLAGS:
            each = ", ".join(f"{n} {np.mean([r[n]['unlike_fraction'][flag] for r in rows.values()]):.2f}" for n in [*args.left_out, args.left_out_mass])
            print(f"latent {latent}, {flag}: left-out theories flagged {means[flag]:.3f} on average (mean over seeds: {each})")
    best = max(results, key=lambda k: results[k]["mean_unlike_fraction_of_left_out_theories"]["either"])
    Path(args.output).write_text(json.dumps({"run": args.run, "results": results, "chosen_latent": int(best)}, indent=2) + "\n")
    print(f"chosen: latent {best}")


if __name__ == "__main__":
    main()

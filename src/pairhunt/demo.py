"""``pairhunt demo``: the whole chain on a bundled default, from Pythia to a bump hunt.

1. Generate QCD multijet background (weighted) and an RPV gluino signal (Pythia8, seeded).
2. Run the pairhunt processor through coffea's Runner with the shipped ABC model and the
   minimal-mass-asymmetry baseline over the leading six jets (topology ``pair_abc``).
3. Build unweighted pseudo-data per method: Poisson draws of the dijet fit to the weighted QCD
   spectrum (a chosen number of events, standing for a luminosity) plus a fixed number of
   injected signal events; fit, scan and compute the global significance; repeat the hunt at
   several injected strengths.
4. Write histograms, per-event tables, plots, JSON and ``report.md`` under one directory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pairhunt.bumphunt import Spectrum, bump_hunt, choose_fit, injection_test
from pairhunt.bumphunt.from_run import load_hists, method_spectrum, summed_2d
from pairhunt.bumphunt.report import write_report
from pairhunt.errors import PairhuntError

SIGNAL, BACKGROUND = "gluino", "qcd"


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and seeds of the demo; the defaults take a few minutes on two cores."""

    output: str = "pairhunt-demo"
    qcd_events: int = 30_000
    signal_events: int = 1_000
    signal_mass: float = 2000.0
    background_events: float = 5_000.0  # QCD events in the pseudo-data: the luminosity choice
    injected_events: float = 300.0  # signal events in the pseudo-data
    strengths: tuple[float, ...] = (0.5, 1.0, 2.0)  # of the injection test, relative to injected_events
    methods: tuple[str, ...] = ("abc=pair_abc", "mass_asymmetry_6")
    workers: int = 2
    seed: int = 1
    pseudo_experiments: int = 200
    resolution: float = 0.2  # sigma_m / m of the reconstructed gluino (ABC: 0.23, mass asymmetry 6 jets: 0.18)
    progress: bool = True


def generate_samples(config: DemoConfig) -> dict[str, Path]:
    """The two samples, reused when a previous demo made them with the same settings."""
    from pairhunt.generate import Request, generate, make_sample

    directory = Path(config.output) / "samples"
    requests = {
        BACKGROUND: Request(make_sample("qcd"), config.qcd_events, seed=config.seed),
        SIGNAL: Request(make_sample("gluino", mass=config.signal_mass), config.signal_events, seed=config.seed + 1),
    }
    paths = {}
    for name, request in requests.items():
        path = directory / f"{name}.root"
        summary = path.with_suffix(".summary.json")
        previous = json.loads(summary.read_text()) if summary.is_file() and path.is_file() else {}
        same = previous.get("events") == request.n_events and previous.get("seed") == request.seed
        if not (same and previous.get("parameters") == request.sample.parameters):
            generate(request, path, workers=config.workers, progress=config.progress)
        paths[name] = path
    return paths


def run_processor(config: DemoConfig, samples: dict[str, Path]) -> Path:
    """The processor over both samples with coffea's futures executor; returns the run directory."""
    from pairhunt.methods import make_method
    from pairhunt.outputs import write_run
    from pairhunt.processors import PairProcessor
    from pairhunt.runner import normalise_files, run_fileset
    from pairhunt.topology import load_topology

    run_dir = Path(config.output) / "run"
    topology = load_topology("pair_abc")
    processor = PairProcessor(topology, [make_method(m) for m in config.methods], output_dir=run_dir)
    fileset = {name: normalise_files([str(path.resolve())]) for name, path in samples.items()}
    result = run_fileset(fileset, processor, executor="futures", workers=config.workers, progress=config.progress)
    summary = {
        "topology": topology.name,
        "methods": list(config.methods),
        "events": result.events,
        "wall_time_s": round(result.seconds, 2),
        "cutflow": result.output["cutflow"],
        "files": result.report.as_dict(),
        "timing_s": result.output["timing"],
    }
    write_run(result.output, summary, run_dir)
    return run_dir


def pseudo_data(
    background_mc: Spectrum, signal_mc: Spectrum, background_events: float, injected_events: float, rng: np.random.Generator
) -> tuple[Spectrum, Spectrum, Spectrum, dict]:
    """Unweighted pseudo-data: Poisson draws of a smooth QCD expectation plus injected signal.

    The expectation is the dijet fit to the weighted QCD spectrum (so the generated sample's
    own fluctuations do not enter), normalised to ``background_events`` in the fit range; the
    signal template is the reconstructed signal normalised to ``injected_events``. Returns the
    pseudo-data, the background expectation, the signal expectation and a description.
    """
    mc = background_mc.fit_range()
    shape_fit = choose_fit(mc).chosen
    expected = shape_fit.expected() * background_events / shape_fit.expected().sum()
    signal = signal_mc.restrict(float(mc.edges[0]), float(mc.edges[-1]))
    signal_expected = signal.values * injected_events / max(signal_mc.values.sum(), 1e-300)
    counts = (rng.poisson(expected) + rng.poisson(signal_expected)).astype(np.float64)
    description = {
        "background_shape_fit": shape_fit.to_dict(),
        "background_mc_effective_events": float(mc.effective_counts().sum()),
        "background_events": background_events,
        "injected_signal_events": injected_events,
        "injected_signal_in_range": float(signal_expected.sum()),
    }
    return unweighted(mc.edges, counts), unweighted(mc.edges, expected), unweighted(mc.edges, signal_expected), description


def unweighted(edges: np.ndarray, values: np.ndarray) -> Spectrum:
    return Spectrum(edges, values, values.copy())


def hunt_method(config: DemoConfig, run_dir: Path, method: str) -> dict[str, Path]:
    """Pseudo-data for one method, its bump hunt, the injection test, the report and plots."""
    hists = load_hists(run_dir)
    background_mc = method_spectrum(hists, method, {BACKGROUND: 1.0})
    signal_mc = method_spectrum(hists, method, {SIGNAL: 1.0})
    if background_mc.values.sum() <= 0 or signal_mc.values.sum() <= 0:
        raise PairhuntError(f"method {method!r} reconstructed no QCD or no signal event; generate more events")
    rng = np.random.default_rng(config.seed)
    data, background, signal, description = pseudo_data(background_mc, signal_mc, config.background_events, config.injected_events, rng)
    hunt = bump_hunt(data, config.resolution, pseudo_experiments=config.pseudo_experiments, seed=config.seed, progress=config.progress)
    description["injection"] = injection_test(background, signal, list(config.strengths), config.resolution, counts=True)
    both = {BACKGROUND: 1.0, SIGNAL: 1.0}
    two_d = {name: summed_2d(hists[name], method, both) for name in ("m1_m2", "mass_score")}
    label = f"{method}: {config.background_events:g} QCD + {config.injected_events:g} gluino events"
    return write_report(hunt, Path(config.output) / "bumphunt" / method, label, description, {k: v for k, v in two_d.items() if v is not None})


def run_demo(config: DemoConfig) -> dict:
    """Everything; returns the summary also written to ``report.json`` and ``report.md``."""
    output = Path(config.output)
    samples = generate_samples(config)
    run_dir = run_processor(config, samples)
    hunts = {}
    for spec in config.methods:
        method = spec.partition("=")[0]
        paths = hunt_method(config, run_dir, method)
        hunts[method] = {"result": json.loads(paths["json"].read_text()), "files": {k: str(v) for k, v in paths.items()}}
    summary = {"config": asdict(config), "run": json.loads((run_dir / "summary.json").read_text()), "bumphunts": hunts}
    (output / "report.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    (output / "report.md").write_text(markdown_report(summary))
    return summary


def markdown_report(summary: dict) -> str:
    """``report.md``: what was run, the cutflow and each method's bump hunt."""
    config = summary["config"]
    lines = [
        "# pairhunt demo",
        "",
        f"QCD multijet ({config['qcd_events']} generated, weighted) and RPV gluinos of {config['signal_mass']:.0f} GeV "
        f"({config['signal_events']} generated), topology `pair_abc`, methods {', '.join(f'`{m}`' for m in config['methods'])}. "
        f"Pseudo-data per method: Poisson draws of the dijet fit to the weighted QCD spectrum "
        f"({config['background_events']:g} events) plus {config['injected_events']:g} injected signal events "
        f"(seed {config['seed']}); mass resolution {config['resolution']:g}.",
        "",
        "## Cutflow (events)",
        "",
    ]
    for dataset, flow in summary["run"]["cutflow"].items():
        lines.append(f"- {dataset}: " + ", ".join(f"{step} {n}" for step, n in flow["events"].items()))
    lines += ["", "## Bump hunts", "", "| method | fit params | best window [GeV] | local Z | global Z |", "| --- | --- | --- | --- | --- |"]
    for method, hunt in summary["bumphunts"].items():
        r = hunt["result"]
        best, glob = r["most_significant_window"], r["global"] or {}
        bound = ">" if glob.get("p_value_is_upper_bound") else ""
        lines.append(
            f"| {method} | {r['background_fit']['chosen_n_params']} | {best['low_gev']:.0f}-{best['high_gev']:.0f} | "
            f"{best['local_significance']:.2f} | {bound}{glob.get('global_significance', float('nan')):.2f} |"
        )
    for method, hunt in summary["bumphunts"].items():
        lines += ["", f"### {method}", "", f"Files: {', '.join(Path(p).name for p in hunt['files'].values())} in `{Path(hunt['files']['json']).parent}`"]
        for row in hunt["result"].get("injection", []):
            lines.append(
                f"- injected {row['injected_signal_sum']:.0f} events (strength {row['strength']:g}): window "
                f"{row['low_gev']:.0f}-{row['high_gev']:.0f} GeV, local Z {row['local_significance']:.2f}"
            )
    return "\n".join(lines) + "\n"

"""``pairhunt demo``: the whole chain on a bundled default, from Pythia to a bump hunt.

1. Generate QCD multijet background (weighted) and an RPV gluino signal (Pythia8, seeded).
2. Run the pairhunt processor through coffea's Runner with the shipped ABC model and the
   minimal-mass-asymmetry baseline over the leading six jets (topology ``pair_abc``).
3. Draw one set of unweighted pseudo-data *events*: QCD events kept by weight (hit-or-miss,
   none twice) plus injected signal events. Every method reconstructs the same events, so their
   hunts compare like with like; ABC is hunted as it is and after a cut on its
   mass-decorrelated anomaly score.
4. Per hunt: fit, scan, global significance, and an injection test on the expected spectra.
5. Characterise the excess: the pseudo-data of the baseline's most significant window, minus its
   sideband-estimated background, placed on the shipped theory map (``pairhunt characterize``).
6. CWoLa hunting on the same pseudo-data: sliding signal regions over the baseline's mass, in
   each a classifier of signal region against sidebands, a cut on it, the sideband fit
   (``pairhunt anomaly --scan``).
7. Write histograms, per-event tables, plots, JSON and ``report.md`` under one directory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pairhunt.bumphunt import Spectrum, bump_hunt, injection_test
from pairhunt.bumphunt.from_run import load_hists, summed_2d
from pairhunt.bumphunt.pseudodata import keep_by_weight
from pairhunt.bumphunt.report import write_report
from pairhunt.bumphunt.scan import significance
from pairhunt.errors import PairhuntError

SIGNAL, BACKGROUND = "gluino", "qcd"


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and seeds of the demo; the defaults take a few minutes on two cores."""

    output: str = "pairhunt-demo"
    qcd_events: int = 30_000
    qcd_pthat_min: float = 400.0  # with a mild bias (pow 2) most selected events have similar weights
    qcd_bias_pow: float = 2.0
    signal_events: int = 1_000
    signal_mass: float = 2000.0
    background_events: float = 1_500.0  # mean QCD events in the pseudo-data, each at most once: the template gives ~1,800
    injected_events: float = 100.0  # selected signal events in the pseudo-data
    strengths: tuple[float, ...] = (0.5, 1.0, 2.0)  # of the injection test, relative to injected_events
    methods: tuple[str, ...] = ("abc=pair_abc", "mass_asymmetry_6")
    score_cut: float = 0.5  # on ABC's mass-decorrelated score: keeps half of the QCD at every mass
    workers: int = 2
    seed: int = 1
    pseudo_experiments: int = 200
    resolution: float = 0.2  # sigma_m / m of the reconstructed gluino
    theory_map: str = "theory_map"  # the shipped map; it reads the six-jet mass asymmetry's candidates
    # CWoLa hunting, the better of the weakly supervised methods on the benchmark (docs/benchmarks.md)
    cwola_method: str = "mass_asymmetry_6"  # whose mass and candidates it reads
    cwola_scan: tuple[float, float] = (800.0, 3200.0)  # GeV the signal regions slide over
    cwola_width: float = 0.5  # signal region's width relative to its lower edge: about ±1 resolution
    cwola_step: float = 0.25
    cwola_keep: float = 0.2  # the cut keeps this fraction of each window's analysis range
    cwola_toys: int = 1000  # pseudo-datasets per sideband fit: the asymptotic Z over-states in sparse windows
    progress: bool = True


def generate_samples(config: DemoConfig) -> dict[str, Path]:
    """The two samples, reused when a previous demo made them with the same settings."""
    from pairhunt.generate import Request, generate, make_sample

    directory = Path(config.output) / "samples"
    requests = {
        BACKGROUND: Request(
            make_sample("qcd", pthat_min=config.qcd_pthat_min, bias_pow=config.qcd_bias_pow), config.qcd_events, seed=config.seed
        ),
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
    """The processor over both samples with coffea's futures executor, as ``pairhunt run`` runs it
    (a previous demo's run is replaced); returns the run directory."""
    from pairhunt.job import JobOptions, run_job
    from pairhunt.runner import normalise_files
    from pairhunt.topology import load_topology

    run_dir = Path(config.output) / "run"
    options = JobOptions(
        topology=load_topology("pair_abc"), methods=list(config.methods), executor="futures",
        workers=config.workers, progress=config.progress,
    )
    fileset = {name: normalise_files([str(path.resolve())]) for name, path in samples.items()}
    run_job(options, fileset, run_dir, overwrite=True)
    return run_dir


@dataclass(frozen=True)
class Hunt:
    """One bump hunt of the demo: a method's average mass, optionally after a cut on its score."""

    method: str
    score_min: float | None = None

    @property
    def label(self) -> str:
        return self.method if self.score_min is None else f"{self.method}_score{self.score_min:g}"


@dataclass
class Reconstructed:
    """The selected events of one sample: event weight, and per method the average mass and score."""

    weight: np.ndarray
    mass: dict[str, np.ndarray]
    score: dict[str, np.ndarray]

    def passing(self, hunt: Hunt) -> np.ndarray:
        """Events with a mass for the hunt's method and, with a cut, a score at or above it."""
        keep = np.isfinite(self.mass[hunt.method])
        if hunt.score_min is not None:
            keep &= np.nan_to_num(self.score[hunt.method], nan=-np.inf) >= hunt.score_min
        return keep


def load_reconstructed(run_dir: Path, dataset: str, sample: Path, methods: list[str]) -> Reconstructed:
    """The per-event tables of a dataset, joined to the sample's ``genWeight`` by event number."""
    import awkward as ak
    import uproot

    files = sorted((run_dir / "events" / dataset).glob("*.parquet"))
    if not files:
        raise PairhuntError(f"no per-event tables for {dataset} under {run_dir / 'events'}")
    table = ak.concatenate([ak.from_parquet(f) for f in files])
    table = table[ak.to_numpy(table.selected)]
    with uproot.open(sample) as handle:
        tree = handle["Events"].arrays(["event", "genWeight"], library="np")
    order = np.argsort(tree["event"])
    weight = tree["genWeight"][order][np.searchsorted(tree["event"][order], ak.to_numpy(table.event))]
    columns = set(table.fields)
    return Reconstructed(
        weight=weight.astype(np.float64),
        mass={m: ak.to_numpy(table[f"{m}_mavg"]) for m in methods},
        score={m: ak.to_numpy(table[f"{m}_score"]) for m in methods if f"{m}_score" in columns},
    )


def pseudo_data_events(background: Reconstructed, signal: Reconstructed, config: DemoConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Which QCD and signal events make the pseudo-data, the same events for every method.

    QCD: every selected event is kept with probability w · N / Σw (hit-or-miss, N =
    ``background_events``, :func:`~pairhunt.bumphunt.pseudodata.keep_by_weight`), so the
    pseudo-data follow the weighted template with a Poisson-like count and hold no event twice.
    Drawn with replacement, an event drawn twice passes every cut twice, and the counts the hunts
    treat as Poisson scatter more than that: on background alone the sideband fits of the CWoLa
    scan's windows reached local Z ≥ 2 in 5 of 20 such draws of the default demo, with distinct
    events in none (``benchmarks/demo_cwola.py``). Signal: a Poisson number (mean
    ``injected_events``) of distinct selected events. Drawing from the generated events
    themselves, not from a fit, keeps whatever shape each method gives QCD.
    """
    try:
        qcd = keep_by_weight(background.weight, config.background_events, rng)
    except PairhuntError as error:
        raise PairhuntError(f"QCD: {error}: generate more QCD (--qcd-events) or ask for fewer (--background-events)") from None
    n_signal = rng.poisson(config.injected_events)
    if n_signal > len(signal.weight):
        raise PairhuntError(f"{n_signal} signal events to inject, {len(signal.weight)} selected: generate more signal (--signal-events)")
    return qcd, np.sort(rng.choice(len(signal.weight), size=n_signal, replace=False))


def histogram(masses: np.ndarray, edges: np.ndarray, weights: np.ndarray | None = None) -> Spectrum:
    """A mass spectrum: unweighted counts (variance = count) or weighted sums with their variances."""
    values, _ = np.histogram(masses, bins=edges, weights=weights)
    variances = values if weights is None else np.histogram(masses, bins=edges, weights=weights**2)[0]
    return Spectrum(edges, values.astype(np.float64), np.asarray(variances, dtype=np.float64))


def expected_spectra(hunt: Hunt, background: Reconstructed, signal: Reconstructed, config: DemoConfig, edges: np.ndarray) -> tuple[Spectrum, Spectrum]:
    """Expected event counts of QCD and of the injected signal in the hunt's spectrum."""
    keep_b, keep_s = background.passing(hunt), signal.passing(hunt)
    qcd = np.histogram(background.mass[hunt.method][keep_b], bins=edges, weights=background.weight[keep_b])[0]
    gluino = np.histogram(signal.mass[hunt.method][keep_s], bins=edges)[0].astype(np.float64)
    qcd = qcd * config.background_events / background.weight.sum()
    gluino = gluino * config.injected_events / len(signal.weight)
    return Spectrum(edges, qcd, qcd.copy()), Spectrum(edges, gluino, gluino.copy())


def hunt_spectrum(
    hunt: Hunt, config: DemoConfig, run_dir: Path, data: Spectrum, background: Reconstructed, signal: Reconstructed, description: dict
) -> dict[str, Path]:
    """The bump hunt of one spectrum of the pseudo-data, the injection test, the report and plots."""
    outcome = bump_hunt(data, config.resolution, pseudo_experiments=config.pseudo_experiments, seed=config.seed, progress=config.progress)
    expected_qcd, expected_signal = expected_spectra(hunt, background, signal, config, data.edges)
    best = outcome.scan.best_window()
    extra = dict(description, score_min=hunt.score_min)
    # each method reconstructs the signal at its own mass scale: the hunt is right when its window holds that peak
    signal_peak = float(expected_signal.centres[np.argmax(expected_signal.values)])
    extra["reconstructed_signal_peak_gev"] = signal_peak
    extra["window_holds_signal_peak"] = bool(best["low_gev"] <= signal_peak <= best["high_gev"])
    extra["injection"] = injection_test(expected_qcd, expected_signal, list(config.strengths), config.resolution, counts=True)
    hists = load_hists(run_dir)
    both = {BACKGROUND: 1.0, SIGNAL: 1.0}
    two_d = {name: summed_2d(hists[name], hunt.method, both) for name in ("m1_m2", "mass_score")}
    cut = "" if hunt.score_min is None else f", score >= {hunt.score_min:g}"
    label = f"{hunt.method}{cut}: {description['qcd_events']} QCD + {description['signal_events']} gluino events"
    return write_report(outcome, Path(config.output) / "bumphunt" / hunt.label, label, extra, {k: v for k, v in two_d.items() if v is not None})


def hunts_of(config: DemoConfig) -> list[Hunt]:
    """Every method as it is, and each method with a score (ABC) again after the score cut."""
    methods = [spec.partition("=")[0] for spec in config.methods]
    scored = [m for spec, m in zip(config.methods, methods) if spec.startswith("abc")]
    return [Hunt(m) for m in methods] + [Hunt(m, config.score_cut) for m in scored]


def run_demo(config: DemoConfig) -> dict:
    """Everything; returns the summary also written to ``report.json`` and ``report.md``."""
    from pairhunt.topology import load_topology

    output = Path(config.output)
    samples = generate_samples(config)
    run_dir = run_processor(config, samples)
    methods = [spec.partition("=")[0] for spec in config.methods]
    background = load_reconstructed(run_dir, BACKGROUND, samples[BACKGROUND], methods)
    signal = load_reconstructed(run_dir, SIGNAL, samples[SIGNAL], methods)
    if len(background.weight) == 0 or len(signal.weight) == 0:
        raise PairhuntError("the selection kept no QCD or no signal event; generate more events")
    bins, start, stop = load_topology("pair_abc").mass_axis
    edges = np.linspace(start, stop, bins + 1)
    qcd_rows, signal_rows = pseudo_data_events(background, signal, config, np.random.default_rng(config.seed))
    description = {
        "qcd_template_selected_events": len(background.weight),
        "qcd_template_effective_events": float(background.weight.sum() ** 2 / (background.weight**2).sum()),
        "qcd_events": len(qcd_rows), "signal_events": len(signal_rows),
    }
    hunts = {}
    for hunt in hunts_of(config):
        masses = np.concatenate([background.mass[hunt.method][qcd_rows][background.passing(hunt)[qcd_rows]],
                                 signal.mass[hunt.method][signal_rows][signal.passing(hunt)[signal_rows]]])
        paths = hunt_spectrum(hunt, config, run_dir, histogram(masses, edges), background, signal, dict(description))
        hunts[hunt.label] = {"result": json.loads(paths["json"].read_text()), "files": {k: str(v) for k, v in paths.items()}}
    summary = {"config": asdict(config), "run": json.loads((run_dir / "summary.json").read_text()), "bumphunts": hunts}
    summary["characterize"] = characterize_excess(config, run_dir, qcd_rows, signal_rows, hunts)
    summary["cwola"] = cwola_hunt(config, run_dir, qcd_rows, signal_rows, hunts)
    (output / "report.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    (output / "report.md").write_text(markdown_report(summary))
    return summary


def characterize_excess(config: DemoConfig, run_dir: Path, qcd_rows: np.ndarray, signal_rows: np.ndarray, hunts: dict) -> dict:
    """The pseudo-data in the most significant window of the theory map's own method, placed on the map.

    The same events as the hunts (QCD rows, signal rows of the selected events); a failure to
    characterise (no excess over the sidebands there) is reported, not raised.
    """
    from pairhunt.anomaly.sample import table_columns
    from pairhunt.evaluate import load_results
    from pairhunt.theory import TheoryEvents, TheoryMap, characterize, window_set
    from pairhunt.theory.characterize import write_characterization
    from pairhunt.theory.inputs import feature_matrix

    (Path(config.output) / "characterize" / "characterize.json").unlink(missing_ok=True)  # a previous demo's
    theory_map = TheoryMap(config.theory_map)
    method = theory_map.contract.method
    if method not in hunts:
        return {"error": f"the theory map reads method {method!r}, which the demo did not hunt"}
    parts = []
    for dataset, rows in ((BACKGROUND, qcd_rows), (SIGNAL, signal_rows)):
        columns = table_columns(load_results(run_dir, dataset))
        selected = {k: v[columns["selected"]] for k, v in columns.items()}
        parts.append((feature_matrix(selected, method, theory_map.contract.features)[rows], selected[f"{method}_mavg"][rows]))
    features, mass = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    usable = np.isfinite(mass) & np.isfinite(features).all(axis=1)
    events = TheoryEvents(features[usable], np.ones(int(usable.sum())), mass[usable], tuple(theory_map.contract.features), np.full(int(usable.sum()), "pseudo-data"))
    best = hunts[method]["result"]["most_significant_window"]
    try:
        window = window_set(events, best["low_gev"], best["high_gev"])
    except PairhuntError as error:
        return {"method": method, "window_gev": [best["low_gev"], best["high_gev"]], "error": str(error)}
    result = characterize(theory_map, window, seed=config.seed)
    result["method"] = method
    paths = write_characterization(result, theory_map, Path(config.output) / "characterize")
    return dict(result, files={k: str(v) for k, v in paths.items()})


def pseudo_data_sample(run_dir: Path, method: str, qcd_rows: np.ndarray, signal_rows: np.ndarray):
    """The pseudo-data as an unweighted :class:`~pairhunt.anomaly.AnomalySample` of ``method``;
    a QCD event drawn twice is two rows of one event (``event_id``), kept in one fold."""
    from dataclasses import replace

    from pairhunt.anomaly.sample import AnomalySample, columns_sample, method_columns

    parts = []
    for dataset, rows in ((BACKGROUND, qcd_rows), (SIGNAL, signal_rows)):
        columns = method_columns(run_dir, dataset, method)
        selected = {k: v[columns["selected"]] for k, v in columns.items()}
        sample, usable = columns_sample(selected, method, dataset)
        kept = rows[usable[rows]]
        part = sample.subset((np.cumsum(usable) - 1)[kept])
        parts.append(replace(part, weight=np.ones(len(kept)), event_id=kept))
    return AnomalySample.concatenate(parts)


def cwola_hunt(config: DemoConfig, run_dir: Path, qcd_rows: np.ndarray, signal_rows: np.ndarray, hunts: dict) -> dict:
    """CWoLa hunting over sliding windows of ``config.cwola_method``'s mass of the pseudo-data,
    written to ``cwola/``; without the anomaly extra (torch, zuko) the reason is reported."""
    try:
        import torch

        from pairhunt.anomaly import SearchConfig, sliding_windows
        from pairhunt.anomaly.report import write_scan
        from pairhunt.anomaly.scan import scan_windows
    except ImportError as error:
        return {"error": f"needs the 'anomaly' extra (pip install 'pairhunt[anomaly]'): {error}"}
    method = config.cwola_method
    if method not in hunts:
        return {"error": f"CWoLa hunting reads method {method!r}, which the demo did not hunt"}
    torch.set_num_threads(config.workers)
    data = pseudo_data_sample(run_dir, method, qcd_rows, signal_rows)
    windows = sliding_windows(*config.cwola_scan, config.cwola_width, config.cwola_step)
    results = scan_windows("cwola", data, windows, SearchConfig(seed=config.seed), config.cwola_keep, toys=config.cwola_toys)
    inputs = {
        "method": method, "events": len(data), "keep": config.cwola_keep, "width": config.cwola_width, "step": config.cwola_step,
        "toys": config.cwola_toys,
    }
    result, paths = write_scan(Path(config.output) / "cwola", "cwola", results, inputs)
    peak = hunts[method]["result"]["reconstructed_signal_peak_gev"]
    best = result["look_elsewhere"].get("best")
    if best is not None:
        low, high = best["signal_region_gev"]
        result["look_elsewhere"]["best_holds_signal_peak"] = bool(low <= peak <= high)
    return dict(result, reconstructed_signal_peak_gev=peak, files={k: str(v) for k, v in paths.items()})


def _local_z(fit: dict) -> str:
    """The sideband fit's local Z from its toys where they were run (≥ where no toy was as
    extreme), else the asymptotic one."""
    if "local_significance_toys" in fit:
        return ("≥ " if fit["toys_lower_bound"] else "") + f"{fit['local_significance_toys']:.2f}"
    return f"{fit.get('local_significance', float('nan')):.2f}"


def _toy_z_limit(toys: int) -> float:
    """The largest local Z ``toys`` pseudo-datasets can give: p = 1 / (toys + 1)."""
    return float(significance(1.0 / (toys + 1))) if toys else float("inf")


def cwola_lines(result: dict, config: dict) -> list[str]:
    """The report's section on CWoLa hunting."""
    lines = ["", "## Weakly supervised: CWoLa hunting", ""]
    if "error" in result:
        return lines + [f"Not run: {result['error']}"]
    inputs, summary = result["inputs"], result["look_elsewhere"]
    lines += [
        f"The same pseudo-data ({inputs['events']} events with a complete pair), `{inputs['method']}`'s mass: signal regions "
        f"{inputs['width']:.0%} wide sliding by {inputs['step']:.0%}, sidebands as wide on each side. In every window a "
        "classifier learns signal region against sidebands on mass-decorrelated features (5 folds: no event scored by a "
        f"model that saw it), the cut keeps the {inputs['keep']:.0%} most signal-region-like events of the window's range, "
        "and the dijet function fitted to the sidebands (the signal region blinded) predicts the signal region; with no cut "
        "the same fit gives the plain local Z, a fixed-window statistic unlike the bump hunts' scan above. Each local Z "
        f"comes from {inputs['toys']} pseudo-datasets drawn from that fit and fitted the same way (it cannot exceed "
        f"{_toy_z_limit(inputs['toys']):.2f}): the asymptotic one over-states where the cut leaves the upper sideband nearly "
        "empty (docs/benchmarks.md). CWoLa is shown, "
        "not CATHODE, because it did better on the generated benchmark (docs/benchmarks.md). A window whose signal region "
        "holds fewer than 20 events cannot train a classifier (–).",
        "",
        "| signal region [GeV] | events (SR / sidebands) | local Z, no cut | local Z, CWoLa cut |",
        "| --- | --- | --- | --- |",
    ]
    for row in result["windows"]:
        window = "-".join(f"{m:.0f}" for m in row["signal_region_gev"])
        z = [_local_z(row[k]) if "local_significance" in row[k] else "–" for k in ("no_cut", "cut")]
        lines.append(f"| {window} | {row['events']['signal_region']} / {row['events']['sidebands']} | {z[0]} | {z[1]} |")
    if "best" not in summary:
        return lines + ["", f"No window could be measured: {summary['error']}"]
    best = summary["best"]
    window = "-".join(f"{m:.0f}" for m in best["signal_region_gev"])
    holds = "holds" if summary["best_holds_signal_peak"] else "does not hold"
    lines += [
        "",
        f"Most significant after the cut: **{window} GeV, local Z {_local_z(best['cut'])}** (asymptotic "
        f"{best['cut']['local_significance']:.2f}; no cut: {_local_z(best['no_cut'])}); it {holds} the reconstructed signal peak "
        f"({result['reconstructed_signal_peak_gev']:.0f} GeV). Global Z ≥ {summary['global_significance_bound']:.2f} over "
        f"{summary['windows']} windows (Bonferroni bound, conservative for overlapping windows).",
        "",
        f"![CWoLa scan]({Path(result['files']['plot']).relative_to(Path(config['output']))})",
    ]
    return lines


def characterize_lines(result: dict, config: dict) -> list[str]:
    """The report's section on the theory map."""
    lines = ["", "## Which theory does the excess look like? (theory map)", ""]
    window = "-".join(f"{m:.0f}" for m in result.get("window_gev", []))
    if "error" in result:
        return lines + [f"Not characterised ({window} GeV): {result['error']}"]
    top = result["ranking"][0]
    others = ", ".join(f"{r['theory']} {r['probability']:.2f}" for r in result["ranking"][1:4])
    lines += [
        f"The pseudo-data in `{result['method']}`'s most significant window, {window} GeV ({result['signal_region_events']} events), "
        f"minus the sideband fit's {result['background_estimate']:.1f} background events, on the shipped theory map "
        f"(`{Path(config['theory_map']).name}`; {result['bootstrap']} Poisson resamples):",
        "",
        f"- nearest theory: **{top['theory']}**, probability {top['probability']:.2f} (then {others}); injected: gluino of "
        f"{config['signal_mass']:.0f} GeV",
        f"- unlike every theory of the library: {'**yes**' if result['unlike_every_theory'] else 'no'} "
        f"({result['unlike_fraction_of_resamples']:.0%} of the resamples; judged as a set of {result['effective_events']:.0f} "
        "effective events, what the background subtraction leaves)",
        "",
        f"![theory map]({Path(result['files']['map']).relative_to(Path(config['output']))})",
    ]
    return lines


def markdown_report(summary: dict) -> str:
    """``report.md``: what was run, the cutflow, each bump hunt and which method found the signal best."""
    config = summary["config"]
    first = next(iter(summary["bumphunts"].values()))["result"]
    lines = [
        "# pairhunt demo",
        "",
        f"QCD multijet ({config['qcd_events']} generated, p̂T > {config['qcd_pthat_min']:g} GeV, weighted) and RPV gluinos of "
        f"{config['signal_mass']:.0f} GeV ({config['signal_events']} generated), topology `pair_abc`, methods "
        f"{', '.join(f'`{m}`' for m in config['methods'])}. One set of pseudo-data for every method: "
        f"{first['qcd_events']} QCD events kept by weight (hit-or-miss, none twice) from the {first['qcd_template_selected_events']} selected QCD events "
        f"({first['qcd_template_effective_events']:.0f} effective) plus {first['signal_events']} selected signal events "
        f"(seed {config['seed']}); mass resolution {config['resolution']:g}. ABC is hunted twice: as it is, and after its "
        f"mass-decorrelated score cut (≥ {config['score_cut']:g}, keeps {1 - config['score_cut']:.0%} of QCD at every mass).",
        "",
        "## Cutflow (events)",
        "",
    ]
    for dataset, flow in summary["run"]["cutflow"].items():
        lines.append(f"- {dataset}: " + ", ".join(f"{step} {n}" for step, n in flow["events"].items()))
    lines += [
        "", "## Bump hunts", "",
        "| hunt | fit params | best window [GeV] | holds the reconstructed signal peak [GeV] | local Z | global Z |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    found = {}
    for label, hunt in summary["bumphunts"].items():
        r = hunt["result"]
        best, glob = r["most_significant_window"], r["global"] or {}
        bound = ">" if glob.get("p_value_is_upper_bound") else ""
        if r["window_holds_signal_peak"]:
            found[label] = best["local_significance"]
        lines.append(
            f"| {label} | {r['background_fit']['chosen_n_params']} | {best['low_gev']:.0f}-{best['high_gev']:.0f} | "
            f"{'yes' if r['window_holds_signal_peak'] else 'no'} ({r['reconstructed_signal_peak_gev']:.0f}) | {best['local_significance']:.2f} | "
            f"{bound}{glob.get('global_significance', float('nan')):.2f} |"
        )
    expected = {
        label: row["local_significance"]
        for label, hunt in summary["bumphunts"].items()
        for row in hunt["result"].get("injection", [])
        if row["strength"] == 1.0
    }
    lines += ["", winner_line(found)]
    if expected:
        best = max(expected, key=expected.get)
        others = ", ".join(f"{k} {v:.2f}" for k, v in expected.items() if k != best)
        lines += [
            "",
            f"On the expected spectra (injection test at the nominal strength, no Poisson draw) the best is "
            f"**{best}**, local Z {expected[best]:.2f} ({others}): one draw of pseudo-data can favour another method.",
        ]
    for label, hunt in summary["bumphunts"].items():
        lines += ["", f"### {label}", "", f"Files: {', '.join(Path(p).name for p in hunt['files'].values())} in `{Path(hunt['files']['json']).parent}`"]
        for row in hunt["result"].get("injection", []):
            lines.append(
                f"- expected spectra, {row['injected_signal_sum']:.0f} signal events (strength {row['strength']:g}): window "
                f"{row['low_gev']:.0f}-{row['high_gev']:.0f} GeV, local Z {row['local_significance']:.2f}"
            )
    if "characterize" in summary:
        lines += characterize_lines(summary["characterize"], config)
    if "cwola" in summary:
        lines += cwola_lines(summary["cwola"], config)
    return "\n".join(lines) + "\n"


def winner_line(found: dict[str, float]) -> str:
    """Which hunt found the injected signal (a window holding its reconstructed peak) most significantly."""
    if not found:
        return "**No hunt put its most significant window on the reconstructed signal peak.**"
    best = max(found, key=found.get)
    others = ", ".join(f"{k} {v:.2f}" for k, v in found.items() if k != best)
    line = f"**Best: {best}**, local Z {found[best]:.2f} in a window holding its reconstructed signal peak"
    return line + (f" (also on the signal: {others})." if others else ".")

"""The resonant anomaly detectors: each gives every event of a window's analysis range a score
from models that never trained on it (NaN outside the range).

- CWoLa hunting: classify signal region against sidebands on the auxiliary features.
- CATHODE: classify signal-region data against samples of a flow learnt in the sidebands.
- Idealised anomaly detector: classify signal-region data against a perfectly known background
  sample (the upper bound CATHODE aims at).
- Supervised: classify known signal against known background (the ceiling).

Each also scores the events of an optional second sample (``also``, e.g. simulated QCD for the
sculpting check) with the same fold models, one model per event as for the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pairhunt.anomaly.classifier import ClassifierConfig, kfold_scores
from pairhunt.anomaly.decorrelate import MassDecorrelation
from pairhunt.anomaly.flow import BackgroundFlow, FlowConfig, sample_masses
from pairhunt.anomaly.regions import OUTSIDE, SIDEBAND, SIGNAL_REGION, Window
from pairhunt.anomaly.sample import AnomalySample
from pairhunt.errors import PairhuntError

METHODS = ("cwola", "cathode", "idealised", "supervised")
MIN_EVENTS = 20  # per class: fewer cannot train a classifier


@dataclass(frozen=True)
class SearchConfig:
    folds: int = 5
    seed: int = 1
    oversample: int = 4  # CATHODE: flow samples per signal-region data event
    decorrelate: bool = True  # features -> conditional quantiles given the mass, from the sidebands (anomaly.decorrelate)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)


@dataclass(frozen=True)
class Scores:
    """Per event of the data (and of ``also``) its score, NaN outside the analysis range."""

    data: np.ndarray
    also: np.ndarray | None = None


def _require(count: int, what: str) -> None:
    if count < MIN_EVENTS:
        raise PairhuntError(f"{what}: {count} events, need at least {MIN_EVENTS}")


def _features(data: AnomalySample, window: Window, config: SearchConfig, *others: AnomalySample | None) -> list[np.ndarray | None]:
    """The features the networks see, for ``data`` and ``others``: decorrelated from the mass on
    the data's sidebands (unless ``config.decorrelate`` is off)."""
    samples = (data, *others)
    if not config.decorrelate:
        return [None if s is None else s.features for s in samples]
    sideband = window.roles(data.mass) == SIDEBAND
    _require(int(sideband.sum()), "sidebands (to decorrelate the features from the mass)")
    rng = np.random.default_rng(config.seed + 3)
    transform = MassDecorrelation(data.features[sideband], data.mass[sideband], data.weight[sideband], rng)
    return [None if s is None else transform.transform(s.features, s.mass, rng) for s in samples]


def _in_range(sample: AnomalySample | None, window: Window) -> np.ndarray | None:
    return None if sample is None else window.roles(sample.mass) != OUTSIDE


def _scored(
    x: np.ndarray, labels: np.ndarray, weight: np.ndarray, config: SearchConfig, extra: list[np.ndarray], groups: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Out-of-fold scores of the training rows (rows of one ``groups`` id in one fold), and each
    ``extra`` block scored by one fold's model."""
    joined = np.concatenate(extra) if extra else np.empty((0, x.shape[1]))
    oof, scores = kfold_scores(x, labels, weight, config.folds, config.seed, config.classifier, extra=joined, groups=groups)
    return oof, np.split(scores, np.cumsum([len(b) for b in extra])[:-1])


def _fill(n: int, where: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.full(n, np.nan)
    out[where] = values
    return out


def cwola(data: AnomalySample, window: Window, config: SearchConfig = SearchConfig(), also: AnomalySample | None = None) -> Scores:
    """Signal region (label 1) against both sidebands (label 0), weights of the data."""
    roles = window.roles(data.mass)
    used = roles != OUTSIDE
    _require(int((roles == SIGNAL_REGION).sum()), "CWoLa signal region")
    _require(int((roles == SIDEBAND).sum()), "CWoLa sidebands")
    also_used = _in_range(also, window)
    x, x_also = _features(data, window, config, also)
    oof, extra = _scored(
        x[used], (roles[used] == SIGNAL_REGION).astype(np.float64), data.weight[used], config,
        [] if also is None else [x_also[also_used]], data.event_ids()[used],
    )
    return Scores(_fill(len(data), used, oof), None if also is None else _fill(len(also), also_used, extra[0]))


def _against_reference(
    data: AnomalySample, window: Window, features: np.ndarray, reference: np.ndarray, reference_weight: np.ndarray,
    config: SearchConfig, also: AnomalySample | None, also_features: np.ndarray | None,
) -> Scores:
    """Signal-region data (label 1) against a background model of the signal region (label 0),
    both as the networks see them (``features``, ``reference``); sideband data (and ``also``)
    scored by the same fold models, for the hunt across the range."""
    roles = window.roles(data.mass)
    region, sideband = roles == SIGNAL_REGION, roles == SIDEBAND
    _require(int(region.sum()), "signal region")
    _require(len(reference), "background model of the signal region")
    x = np.concatenate([features[region], reference])
    labels = np.concatenate([np.ones(int(region.sum())), np.zeros(len(reference))])
    weight = np.concatenate([data.weight[region], reference_weight])
    # the reference's rows are events of their own, distinct from the data's
    groups = np.concatenate([data.event_ids()[region], data.event_ids().max() + 1 + np.arange(len(reference))])
    also_used = _in_range(also, window)
    oof, extra = _scored(x, labels, weight, config, [features[sideband]] + ([] if also is None else [also_features[also_used]]), groups)
    scores = _fill(len(data), region, oof[: int(region.sum())])
    scores[sideband] = extra[0]
    return Scores(scores, None if also is None else _fill(len(also), also_used, extra[1]))


def cathode(
    data: AnomalySample, window: Window, config: SearchConfig = SearchConfig(), also: AnomalySample | None = None
) -> tuple[Scores, list[BackgroundFlow]]:
    """CATHODE: a flow learns the sidebands (unweighted data), is sampled for the signal region,
    and a classifier separates signal-region data from its samples.

    On decorrelated features (the default) the flow is unconditional: the decorrelation already
    carries each feature's mass dependence into the signal region, and a flow conditioned on the
    mass as well interpolated its few high-mass sideband events badly (measured on background
    alone at 1.7-2.2 TeV: a classifier told its samples from the signal region's QCD with AUC
    0.60, the unconditional flow's with 0.54, the sidebands' own events with 0.53; docs/anomaly.md).
    Without decorrelation the flow learns p(x | m) and is sampled at KDE-drawn signal-region masses.

    Twice, on the two halves of the events (seeded): a flow comes close to the very sideband
    events it learnt, so a classifier built on its samples scores those events as less data-like
    than fresh ones (measured: 10 % cuts kept 0.093-0.098 of them against 0.099-0.102 of the
    others and 0.104-0.107 of the signal region), and the cut would then deplete the sidebands
    and make a bump. Each half's events are scored by the pipeline whose flow did not learn them.
    """
    roles = window.roles(data.mass)
    sideband, region = roles == SIDEBAND, roles == SIGNAL_REGION
    _require(int(sideband.sum()), "CATHODE sidebands")
    _require(int(region.sum()), "CATHODE signal region")
    if not np.allclose(data.weight, data.weight[0]):
        raise PairhuntError("CATHODE learns the sidebands from unweighted events: unweight the data first")
    x, x_also = _features(data, window, config, also)
    rng = np.random.default_rng(config.seed + 4)
    distinct, row_event = np.unique(data.event_ids(), return_inverse=True)
    half = (rng.random(len(distinct)) < 0.5)[row_event]  # copies of an event in one half
    also_half = None if also is None else rng.random(len(also)) < 0.5
    scores = np.full(len(data), np.nan)
    also_scores = None if also is None else np.full(len(also), np.nan)
    flows = []
    n_samples = config.oversample * int(region.sum())
    conditional = not config.decorrelate
    masses = sample_masses(data.mass[region], n_samples, window.low, window.high, config.seed + 1) if conditional else None
    for learnt in (True, False):
        trained = sideband & (half == learnt)
        flow = BackgroundFlow(x[trained], data.mass[trained] if conditional else None, config.seed + int(learnt), config.flow)
        samples = flow.sample(n_samples, config.seed + 2, masses)
        weight = np.full(n_samples, data.weight[region].sum() / n_samples)
        part = _against_reference(data, window, x, samples, weight, config, also, x_also)
        scored = half != learnt
        scores[scored] = part.data[scored]
        if also is not None:
            also_scores[also_half != learnt] = part.also[also_half != learnt]
        flows.append(flow)
    return Scores(scores, also_scores), flows


def idealised(
    data: AnomalySample, background: AnomalySample, window: Window, config: SearchConfig = SearchConfig(),
    also: AnomalySample | None = None,
) -> Scores:
    """The idealised anomaly detector: the background model is true background (``background``,
    events distinct from the data's) in the signal region."""
    region = background.subset(window.roles(background.mass) == SIGNAL_REGION)
    x, x_region, x_also = _features(data, window, config, region, also)
    return _against_reference(data, window, x, x_region, region.weight, config, also, x_also)


def supervised(
    data: AnomalySample, signal: AnomalySample, background: AnomalySample, window: Window,
    config: SearchConfig = SearchConfig(), also: AnomalySample | None = None,
) -> Scores:
    """Known signal against known background in the signal region (neither is the data); every
    data event of the range scored by one fold's model."""
    sig = signal.subset(window.roles(signal.mass) == SIGNAL_REGION)
    bkg = background.subset(window.roles(background.mass) == SIGNAL_REGION)
    _require(len(sig), "supervised signal")
    _require(len(bkg), "supervised background")
    used, also_used = window.roles(data.mass) != OUTSIDE, _in_range(also, window)
    x_data, x_sig, x_bkg, x_also = _features(data, window, config, sig, bkg, also)
    x = np.concatenate([x_sig, x_bkg])
    labels = np.concatenate([np.ones(len(sig)), np.zeros(len(bkg))])
    _, extra = _scored(
        x, labels, np.concatenate([sig.weight, bkg.weight]), config,
        [x_data[used]] + ([] if also is None else [x_also[also_used]]), np.arange(len(x)),
    )
    return Scores(_fill(len(data), used, extra[0]), None if also is None else _fill(len(also), also_used, extra[1]))

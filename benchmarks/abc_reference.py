"""pairhunt's ABC beside the published ABC model and minimal mass asymmetry, on the same events.

Why: every change to pairhunt's ABC (issue 16) is judged against the published model of
arXiv:2309.05728 (public repository badeaa3/unsupervised-search, checkpoint
``config_files/2309.05728/finalWeights.ckpt``, config ``optimal_T2.json``: two parents, no ISR)
on pairhunt's own samples inside pairhunt's ``pair_abc`` selection (>= 6 jets with pT > 30 GeV and
|eta| < 2.5, HT > 1 TeV, the leading 10 jets). The reference has no licence: its code is never
copied here; ``--reference-dir`` is a work tree exported outside the project, put on ``sys.path``
to import its ``model_blocks``. Its input convention (its ``batcher.py``, ``model.py``): x = [log
pT/GeV, eta, cos phi, sin phi, log E/GeV], padded jets zero (its training padding had cos phi = 1,
per its BatchNorm statistics; the outputs do not depend on padded values, checked every run),
w = (eta, cos phi, sin phi), mask True where padded; its anomaly score is the per-event reconstruction MSE (``loss``), its
assignment the argmax of ``jet_choice`` in eval mode. Its pairwise attention bias is repeated
head-major while torch reads a 3-D ``attn_mask`` batch-major, so in a batch an event sees other
events' bias: batch size 1 is exact, and the batched path here reorders the bias to batch-major
(a wrapper around each attention of the loaded instance) and is checked against batch size 1 on
the first ``--check-events`` events of every run (the run stops if they differ by > 1e-5).

Methods: ``pairhunt_abc`` (ONNX, every per-event output of the model is reported as a score,
e.g. ``anomaly_score`` and ``anomaly_score_decorrelated`` when the model has it),
``reference_abc``, ``mass_asymmetry`` (all 10 jets), ``mass_asymmetry_6`` (leading six).
Backgrounds are weighted (``genWeight``); each is scored on its own (several files of one
generator setting: ``NAME=FILE1,FILE2``). A signal is ``NAME=FILE:MASS``, with ``:cascade``
appended (or a name containing "cascade") for the cascade decay g -> qq chi, chi -> qqq.
Efficiencies are relative to selected events; the S/B gain divides eps_S/eps_B of the window
+-``--window`` around the true mass by that of ``mass_asymmetry`` on the same pair; pairhunt's
eps_S/eps_B over the reference's comes with a paired bootstrap interval (``paired_ratio``). Score cuts
keep 50 % and 10 % of the weighted QCD of each background; the ratio of the cut to the uncut
normalised mass shape per bin has a binomial error for weighted events and a chi2/ndf against
flat (variance of a flat cut, in bins where a flat cut would keep and reject >= 5 effective
events each, the usual validity rule of a chi2 on counts), with its p-value from random flat
cuts of the same efficiency on the same weighted events (weights far from uniform make the chi2
distribution wider than chi2(ndf)).

    mkdir -p /work/reference/unsupervised-search
    git -C /work/.mirror/badeaa3+unsupervised-search/repo archive HEAD | tar -x -C /work/reference/unsupervised-search
    python benchmarks/abc_reference.py --model models/pair_abc.onnx \\
        --reference-dir /work/reference/unsupervised-search \\
        --background qcd200=qcd_test200.root qcd400=qcd_test400.root \\
        --signal gluino1300=gluino1300.root:1300 gluino1800=gluino1800.root:1800 \\
                 cascade1700=cascade1700.root:1700:cascade \\
        --output bench.json
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import importlib
import json
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np
import onnxruntime
import torch
import uproot

from pairhunt.assign.abc import AbcAssignment
from pairhunt.assign.base import JetAssignment
from pairhunt.assign.baselines import MassAsymmetry
from pairhunt.candidates import build_candidates
from pairhunt.cutflow import Cutflow
from pairhunt.inputs import JetInputs, select_jets
from pairhunt.padding import to_padded
from pairhunt.topology import Topology, load_topology

TOPOLOGY = "pair_abc"
PAIRHUNT, REFERENCE, BASELINE = "pairhunt_abc", "reference_abc", "mass_asymmetry"
CHECKPOINT = "config_files/2309.05728/finalWeights.ckpt"
CONFIG = "config_files/2309.05728/optimal_T2.json"
KEEP_FRACTIONS = (0.5, 0.1)  # score cuts keeping these fractions of the weighted QCD
SHAPE_BINS = np.arange(0.0, 3000.0 + 100.0, 100.0)  # GeV, for the score-cut shape ratios
MIN_EXPECTED_PER_BIN = 5.0  # effective events a flat cut keeps (and rejects) in a bin, or it stays out of the chi2
FLAT_CUT_TOYS = 500  # random flat cuts that give the chi2 its p-value
BOOTSTRAP_REPLICAS = 4000  # paired Poisson-bootstrap replicas of the pairhunt / reference S/B ratio
BATCH_TOLERANCE = 1e-5  # batched reference vs batch size 1, relative to the loss (float32 sums differ by a few ulps: ~5e-7)


# ---------------------------------------------------------------- samples


@dataclass
class Sample:
    """One command-line sample: a name, its files, and for a signal its true mass."""

    name: str
    files: list[str]
    mass: float | None = None
    cascade: bool = False


@dataclass
class Selected:
    """The selected events of one sample, their weights, the truth parent of each kept jet."""

    jets: JetInputs
    weight: np.ndarray
    truth_parent: np.ndarray | None  # [events, width]; -1 unmatched, -2 padding
    events_read: int
    sumw_read: float
    mass: dict[str, np.ndarray] = field(default_factory=dict)  # method -> average parent mass
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # "method.score" -> per event
    parent: dict[str, np.ndarray] = field(default_factory=dict)  # method -> [events, width]
    seconds: dict[str, float] = field(default_factory=dict)  # method -> wall time


def parse_background(spec: str) -> Sample:
    """``NAME=FILE[,FILE...]``."""
    name, _, files = spec.partition("=")
    if not name or not files:
        raise SystemExit(f"--background {spec!r}: expected NAME=FILE[,FILE...]")
    return Sample(name, files.split(","))


def parse_signal(spec: str) -> Sample:
    """``NAME=FILE[,FILE...]:MASS[:cascade]``; a name containing 'cascade' marks a cascade too."""
    name, _, rest = spec.partition("=")
    parts = rest.split(":")
    cascade = parts[-1] == "cascade"
    if cascade:
        parts = parts[:-1]
    if not name or len(parts) < 2:
        raise SystemExit(f"--signal {spec!r}: expected NAME=FILE:MASS[:cascade]")
    return Sample(name, ":".join(parts[:-1]).split(","), float(parts[-1]), cascade or "cascade" in name.lower())


def read_events(files: list[str], max_events: int | None = None) -> tuple[ak.Array, np.ndarray, ak.Array | None]:
    """Jets (pt, eta, phi, mass), genWeight and, when every file has it, Jet_truthParent (first ``max_events`` per file)."""
    trees = [uproot.open(f)["Events"] for f in files]
    truth = all("Jet_truthParent" in t.keys() for t in trees)
    branches = ["Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "genWeight"] + (["Jet_truthParent"] if truth else [])
    raw = ak.concatenate([t.arrays(branches, entry_stop=max_events) for t in trees])
    jets = ak.zip({k: raw[f"Jet_{k}"] for k in ("pt", "eta", "phi", "mass")})
    events = ak.zip({"Jet": jets}, depth_limit=1)
    return events, ak.to_numpy(raw.genWeight).astype(np.float64), raw.Jet_truthParent if truth else None


def kept_truth(truth: ak.Array, selected: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Truth parent of every kept jet, ``[events, width]``, -2 for padding."""
    truth = truth[selected]
    width = max(int(ak.max(ak.num(truth))) if len(truth) else 1, 1)
    padded = to_padded(truth, width, fill=-1, dtype=np.int64)
    return np.where(index >= 0, np.take_along_axis(padded, np.maximum(index, 0), axis=1), -2)


def select(sample: Sample, topology: Topology, features: list[str], max_events: int | None = None) -> Selected:
    """pairhunt's own selection (the processor's ``select_jets``) on the sample's events."""
    events, weight, truth = read_events(sample.files, max_events)
    jets, selected = select_jets(events, topology.jets, Cutflow(weight), features)
    truth_parent = kept_truth(truth, selected, jets.index) if truth is not None else None
    return Selected(jets, weight[selected], truth_parent, len(weight), float(weight.sum()))


# ---------------------------------------------------------------- the reference


class BatchMajorBias(torch.nn.Module):
    """One of the reference's attentions, fed its pairwise bias reordered head-major -> batch-major.

    The reference builds ``wij.repeat(heads, 1, 1)`` (index head * B + event) and torch reads
    index event * heads + head; reordering makes every event see its own bias, as at batch size 1.
    """

    def __init__(self, attention: torch.nn.MultiheadAttention):
        super().__init__()
        self.attention = attention
        self.num_heads = attention.num_heads

    def forward(self, query, key, value, key_padding_mask=None, attn_mask=None, need_weights=False):
        if attn_mask is not None and attn_mask.dim() == 3:
            n, q, k = attn_mask.shape
            attn_mask = attn_mask.reshape(self.num_heads, n // self.num_heads, q, k).transpose(0, 1).reshape(n, q, k)
        return self.attention(query, key, value, key_padding_mask=key_padding_mask, attn_mask=attn_mask, need_weights=need_weights)


def load_reference(directory: Path) -> tuple[torch.nn.Module, dict]:
    """The published encoder in eval mode, from the reference's own ``model_blocks`` and checkpoint."""
    sys.path.insert(0, str(directory))
    try:
        model_blocks = importlib.import_module("model_blocks")
    finally:
        sys.path.remove(str(directory))
    config = json.loads((directory / CONFIG).read_text())
    encoder = model_blocks.Encoder(**config["model"]["encoder_config"])
    # weights_only: plain tensors and dicts, no pytorch_lightning needed to unpickle
    checkpoint = torch.load(directory / CHECKPOINT, map_location="cpu", weights_only=True)
    state = {k.removeprefix("Encoder."): v for k, v in checkpoint["state_dict"].items() if k.startswith("Encoder.")}
    encoder.load_state_dict(state)
    encoder.eval()
    info = {
        "directory": str(directory),
        "checkpoint": CHECKPOINT,
        "checkpoint_sha256": sha256(directory / CHECKPOINT),
        "config": CONFIG,
        "encoder_config": config["model"]["encoder_config"],
        "parameters": sum(p.numel() for p in encoder.parameters()),
    }
    return encoder, info


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def batch_major(encoder: torch.nn.Module) -> torch.nn.Module:
    """A copy of the encoder whose object attentions read the pairwise bias per event."""
    fixed = copy.deepcopy(encoder)
    for block in fixed.obj_blocks:
        block.attn = BatchMajorBias(block.attn)
    return fixed.eval()


def reference_inputs(jets: JetInputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x = [log pT, eta, cos phi, sin phi, log E] in GeV (zero for padding), w, padding mask."""
    energy = jets.four_momenta()[3]
    real = jets.mask
    columns = [
        np.log(np.where(real, jets.pt, 1.0)),
        jets.eta,
        np.cos(jets.phi),
        np.sin(jets.phi),
        np.log(np.where(real, energy, 1.0)),
    ]
    x = np.where(real[..., None], np.stack(columns, axis=-1), 0.0).astype(np.float32)
    x = torch.from_numpy(x)
    return x, x[..., 1:4].contiguous(), torch.from_numpy(~real)


@torch.no_grad()
def run_reference(encoder: torch.nn.Module, jets: JetInputs, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reconstruction MSE per event, argmax category per jet (-1 padding), the reference's own candidate masses."""
    x, w, mask = reference_inputs(jets)
    losses, choices, masses = [], [], []
    for start in range(0, len(x), batch_size):
        rows = slice(start, start + batch_size)
        loss, _, candidates_p4, jet_choice = encoder(x[rows], w[rows], mask[rows])
        e, px, py, pz = candidates_p4.double().unbind(-1)
        losses.append(loss.double().numpy())
        choices.append(jet_choice.argmax(-1).numpy())
        masses.append(np.sqrt(np.maximum((e * e - px * px - py * py - pz * pz).numpy(), 0.0)).mean(axis=1))
    if not losses:
        return np.zeros(0), np.zeros((0, jets.width), dtype=np.int8), np.zeros(0)
    parent = np.where(jets.mask, np.concatenate(choices), -1).astype(np.int8)
    return np.concatenate(losses), parent, np.concatenate(masses)


def check_batching(encoder: torch.nn.Module, fixed: torch.nn.Module, jets: JetInputs, n: int, batch_size: int) -> dict:
    """The batched path against batch size 1 (exact by construction) on the first ``n`` events."""
    head = subset(jets, np.arange(min(n, jets.n_events)))
    loss_1, parent_1, _ = run_reference(encoder, head, 1)
    loss_b, parent_b, _ = run_reference(fixed, head, batch_size)
    loss_raw, parent_raw, _ = run_reference(encoder, head, batch_size)
    result = {
        "events": head.n_events,
        "max_abs_loss_difference": float(np.abs(loss_b - loss_1).max(initial=0.0)),
        "max_relative_loss_difference": float((np.abs(loss_b - loss_1) / np.maximum(np.abs(loss_1), 1.0)).max(initial=0.0)),
        "assignments_differing": int((parent_b != parent_1).any(axis=1).sum()),
        "unfixed_batch_max_abs_loss_difference": float(np.abs(loss_raw - loss_1).max(initial=0.0)),
        "unfixed_batch_assignments_differing": int((parent_raw != parent_1).any(axis=1).sum()),
    }
    if result["max_relative_loss_difference"] > BATCH_TOLERANCE or result["assignments_differing"]:
        raise SystemExit(f"batched reference differs from batch size 1: {result}")
    return result


@torch.no_grad()
def padding_invariance(encoder: torch.nn.Module, jets: JetInputs) -> float:
    """Max |loss change| when padded slots carry cos phi = 1 (phi = 0) instead of 0, as in the reference's training."""
    x, w, mask = reference_inputs(jets)
    padded = x.clone()
    padded[..., 2] = torch.where(mask, 1.0, padded[..., 2])
    loss, *_ = encoder(x, w, mask)
    loss_padded, *_ = encoder(padded, padded[..., 1:4].contiguous(), mask)
    return float((loss - loss_padded).abs().max())


def input_check(encoder: torch.nn.Module, jets: JetInputs) -> dict:
    """Units check: the reference's input BatchNorm statistics (its training data, padded slots included) beside ours.

    Its statistics say that its padded slots had cos phi = 1 (mean cos phi 0.39, <cos^2> + <sin^2> = 1);
    ours are 0: ``padding_max_abs_loss_change`` shows the outputs do not depend on padded values.
    """
    x, _, _ = reference_inputs(jets)
    flat = x.reshape(-1, x.shape[-1]).double()
    bn = encoder.embed.input_bn
    return {
        "padding_max_abs_loss_change": padding_invariance(encoder, subset(jets, np.arange(min(200, jets.n_events)))),
        "features": ["log_pt", "eta", "cos_phi", "sin_phi", "log_e"],
        "reference_training_mean": bn.running_mean.tolist(),
        "reference_training_std": bn.running_var.sqrt().tolist(),
        "these_events_mean": flat.mean(0).tolist(),
        "these_events_std": flat.std(0).tolist(),
        "note": "means include padded (zero) slots: compare log_e/log_pt, which the padding fraction does not change",
        "log_e_over_log_pt": [float(bn.running_mean[4] / bn.running_mean[0]), float(flat[:, 4].mean() / flat[:, 0].mean())],
    }


def subset(jets: JetInputs, rows: np.ndarray) -> JetInputs:
    """The jet inputs of some events."""
    return JetInputs(
        **{k: getattr(jets, k)[rows] for k in ("pt", "eta", "phi", "mass", "mask", "index", "counts", "multiplicity")},
        features={k: v[rows] for k, v in jets.features.items()},
    )


# ---------------------------------------------------------------- reconstruction


def pairhunt_scores(method: AbcAssignment, jets: JetInputs, assignment: JetAssignment) -> dict[str, np.ndarray]:
    """Every per-event output of the ONNX model, and the method's ``score`` if it is none of them."""
    outputs = {name: v.astype(np.float64) for name, v in method.outputs(jets).items() if v.ndim == 1}
    score = assignment.score
    if score is not None and not any(np.array_equal(score, v, equal_nan=True) for v in outputs.values()):
        outputs["score"] = score.astype(np.float64)
    return outputs


def average_mass(jets: JetInputs, assignment: JetAssignment, topology: Topology) -> np.ndarray:
    n_products = topology.max_products if assignment.fixed_multiplicity else None
    return build_candidates(jets, assignment, topology.n_parents, n_products).mass_average


def reconstruct(events: Selected, pairhunt: AbcAssignment, reference: torch.nn.Module, topology: Topology, batch_size: int) -> None:
    """Fill the average parent mass of every method, the anomaly scores and the assignments."""
    jets = events.jets
    start = time.perf_counter()
    assignment = pairhunt.assign(jets, topology)
    for name, values in pairhunt_scores(pairhunt, jets, assignment).items():
        events.scores[f"{PAIRHUNT}.{name}"] = values
    events.mass[PAIRHUNT], events.parent[PAIRHUNT] = average_mass(jets, assignment, topology), assignment.parent
    events.seconds[PAIRHUNT] = time.perf_counter() - start

    start = time.perf_counter()
    loss, parent, own_mass = run_reference(reference, jets, batch_size)
    ref = JetAssignment(parent=parent, product=np.zeros_like(parent), fixed_multiplicity=False)
    events.scores[f"{REFERENCE}.loss"] = loss
    events.mass[REFERENCE], events.parent[REFERENCE] = average_mass(jets, ref, topology), parent
    events.mass[f"{REFERENCE}_own_p4"] = own_mass  # its own candidate four-momenta: a cross-check only
    events.seconds[REFERENCE] = time.perf_counter() - start

    for baseline in (MassAsymmetry(), MassAsymmetry(name="mass_asymmetry_6", max_jets=6)):
        start = time.perf_counter()
        assignment = baseline.assign(jets, topology)
        events.mass[baseline.name], events.parent[baseline.name] = average_mass(jets, assignment, topology), assignment.parent
        events.seconds[baseline.name] = time.perf_counter() - start


# ---------------------------------------------------------------- statistics


def effective(weight: np.ndarray) -> float:
    return float(weight.sum() ** 2 / (weight**2).sum()) if len(weight) else 0.0


def in_window(mass: np.ndarray, true_mass: float, window: float) -> np.ndarray:
    return np.isfinite(mass) & (mass > (1 - window) * true_mass) & (mass < (1 + window) * true_mass)


def gain_relative_error(method: dict, baseline: dict) -> float:
    """Statistical relative error of an S/B gain: Poisson on the four effective window counts
    (signal and QCD, method and baseline), their correlation ignored. With a handful of QCD
    events in a window the gain is a count of a handful: this says so beside it."""
    counts = [e[k] for e in (method, baseline) for k in ("signal_effective_in_window", "background_effective_in_window")]
    return float(np.sqrt(sum(1 / c for c in counts))) if all(c > 0 for c in counts) else float("inf")


def paired_ratio(sig: Selected, bkg: Selected, true_mass: float, window: float, seed: int) -> dict:
    """pairhunt's eps_S/eps_B in the window over the reference's, with a paired bootstrap interval.

    Why: the question the issue asks is this ratio (>= 1?), and both methods see the same signal
    and QCD events, so their window counts are correlated: the four-count errors of the two gains
    do not give its error. Each replica draws one Poisson(1) multiplicity per event, shared by both
    methods; the selected totals cancel in the ratio, so only events inside either window enter.
    """
    rng = np.random.default_rng(seed)

    def window_sums(events: Selected) -> tuple[float, float, np.ndarray, np.ndarray, float]:
        """Weight in either method's window, as measured and per replica; effective QCD events in either."""
        ours = in_window(events.mass[PAIRHUNT], true_mass, window)
        theirs = in_window(events.mass[REFERENCE], true_mass, window)
        rows = ours | theirs
        weight = events.weight[rows]
        counts = rng.poisson(1.0, size=(BOOTSTRAP_REPLICAS, int(rows.sum())))
        ours_w, theirs_w = weight * ours[rows], weight * theirs[rows]
        return ours_w.sum(), theirs_w.sum(), counts @ ours_w, counts @ theirs_w, effective(weight)

    s_ours, s_theirs, s_ours_r, s_theirs_r, _ = window_sums(sig)
    b_ours, b_theirs, b_ours_r, b_theirs_r, b_effective = window_sums(bkg)
    with np.errstate(divide="ignore", invalid="ignore"):
        central = (s_ours / s_theirs) * (b_theirs / b_ours)
        replicas = (s_ours_r / s_theirs_r) * (b_theirs_r / b_ours_r)
    replicas = np.where(np.isnan(replicas), np.inf, replicas)  # 0/0: no event of either method in a window
    return {
        "ratio": float(central),
        "interval_68": [float(q) for q in np.quantile(replicas, [0.16, 0.84])],
        "interval_95": [float(q) for q in np.quantile(replicas, [0.025, 0.975])],
        "replicas_at_or_above_1": float(np.mean(replicas >= 1.0)),
        "background_effective_in_either_window": b_effective,
        "replicas": BOOTSTRAP_REPLICAS,
        "seed": seed,
    }


def fraction(passing: np.ndarray, weight: np.ndarray) -> float:
    return float(weight[passing].sum() / weight.sum()) if weight.sum() else float("nan")


def weighted_quantile(values: np.ndarray, weight: np.ndarray, q: float) -> float:
    """Quantile of the finite values, each weighted (midpoint rule of the weighted CDF)."""
    finite = np.isfinite(values)
    order = np.argsort(values[finite])
    v, w = values[finite][order], weight[finite][order]
    if not len(v):
        return float("nan")
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return float(np.interp(q, cdf, v))


def weight_above(values: np.ndarray, weight: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Weighted fraction of ``values > cut`` for every cut."""
    order = np.argsort(values)
    cumulative = np.concatenate([[0.0], np.cumsum(weight[order])])
    below = cumulative[np.searchsorted(values[order], cuts, side="right")]
    return (cumulative[-1] - below) / cumulative[-1]


def weighted_auc(signal: np.ndarray, signal_weight: np.ndarray, background: np.ndarray, background_weight: np.ndarray) -> float:
    """P(signal score > background score), weighted, ties counted half (high score = anomalous)."""
    s, b = np.isfinite(signal), np.isfinite(background)
    signal, signal_weight, background, background_weight = signal[s], signal_weight[s], background[b], background_weight[b]
    order = np.argsort(background)
    cumulative = np.concatenate([[0.0], np.cumsum(background_weight[order])])
    low = cumulative[np.searchsorted(background[order], signal, side="left")]
    high = cumulative[np.searchsorted(background[order], signal, side="right")]
    return float((signal_weight * (low + 0.5 * (high - low))).sum() / (signal_weight.sum() * cumulative[-1]))


def roc_curve(
    signal: np.ndarray, signal_weight: np.ndarray, background: np.ndarray, background_weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted (eps_B, eps_S) of score > cut at 201 quantiles of the pooled scores."""
    cuts = np.nanquantile(np.concatenate([signal, background]), np.linspace(0, 1, 201))
    s, b = np.isfinite(signal), np.isfinite(background)
    return weight_above(background[b], background_weight[b], cuts), weight_above(signal[s], signal_weight[s], cuts)


def peak(values: np.ndarray, weight: np.ndarray, bin_width: float = 25.0) -> float:
    """Mode of the weighted histogram (25 GeV bins)."""
    finite = np.isfinite(values)
    counts, edges = np.histogram(values[finite], bins=np.arange(0.0, 4000.0 + bin_width, bin_width), weights=weight[finite])
    return float(edges[np.argmax(counts)] + bin_width / 2)


def half_width_68(values: np.ndarray, centre: float) -> float:
    """Half-width of the narrowest interval around ``centre`` holding 68 % of the complete events."""
    distance = np.sort(np.abs(values[np.isfinite(values)] - centre))
    return float(distance[int(0.68 * (len(distance) - 1))]) if len(distance) else float("nan")


def shape_ratio(
    mass: np.ndarray, keep: np.ndarray, weight: np.ndarray, bins: np.ndarray = SHAPE_BINS, flat_cut_toys: int = FLAT_CUT_TOYS
) -> dict:
    """Cut / uncut normalised mass shape per bin, its error, chi2/ndf against flat and its p-value.

    Per bin the weighted efficiency e_i = W_pass/W; its error is binomial for weighted events,
    sqrt((1-e)^2 S2_pass + e^2 S2_fail)/W; the chi2 uses the variance a flat cut of efficiency
    eps would have, eps (1-eps) S2/W^2, in bins where such a cut keeps and rejects at least
    ``MIN_EXPECTED_PER_BIN`` effective events (ndf = bins - 1). The p-value is the fraction of
    random flat cuts (each event kept with probability eps, seeded) with a larger chi2; with
    ``flat_cut_toys=0`` it is not computed (NaN), for callers that only sum chi2 values.
    """
    finite = np.isfinite(mass)
    mass, keep, weight = mass[finite], keep[finite], weight[finite]
    total = np.histogram(mass, bins=bins, weights=weight)[0]
    s2_all = np.histogram(mass, bins=bins, weights=weight**2)[0]
    eps = weight[keep].sum() / weight.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        effective_events = total**2 / s2_all
        used = (eps * effective_events >= MIN_EXPECTED_PER_BIN) & ((1 - eps) * effective_events >= MIN_EXPECTED_PER_BIN)
    ndf = int(used.sum()) - 1

    def chi2_of(kept: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        passed = np.histogram(mass[kept], bins=bins, weights=weight[kept])[0]
        s2_pass = np.histogram(mass[kept], bins=bins, weights=weight[kept] ** 2)[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            e = passed / total
            error = np.sqrt((1 - e) ** 2 * s2_pass + e**2 * (s2_all - s2_pass)) / total
            chi2 = float((((e - eps) ** 2) / (eps * (1 - eps) * s2_all / total**2))[used].sum())
        return chi2, e, error

    chi2, e, error = chi2_of(keep)
    rng = np.random.default_rng(0)
    toys = np.array([chi2_of(rng.random(len(mass)) < eps)[0] for _ in range(flat_cut_toys)])
    return {
        "bins_gev": bins.tolist(),
        "efficiency": float(eps),
        "ratio": _floats(e / eps),
        "ratio_error": _floats(error / eps),
        "used_in_chi2": used.tolist(),
        "chi2": chi2,
        "ndf": ndf,
        "chi2_per_ndf": chi2 / ndf if ndf > 0 else float("nan"),
        "p_value_flat": float((toys >= chi2).mean()) if flat_cut_toys else float("nan"),
        "flat_cut_toys": flat_cut_toys,
    }


def isr_usage(parent: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict:
    """Fractions of truth-matched and of unmatched kept jets that the assignment leaves to ISR (parent -1)."""
    matched, unmatched, to_isr = mask & (truth >= 0), mask & (truth == -1), parent < 0
    return {
        "matched_jets": int(matched.sum()),
        "matched_to_isr": float(to_isr[matched].mean()) if matched.any() else float("nan"),
        "unmatched_jets": int(unmatched.sum()),
        "unmatched_to_isr": float(to_isr[unmatched].mean()) if unmatched.any() else float("nan"),
    }


def _floats(values: np.ndarray) -> list[float | None]:
    """JSON-safe: NaN and inf become null."""
    return [float(v) if np.isfinite(v) else None for v in values]


# ---------------------------------------------------------------- the benchmark


def score_cuts(background: Selected) -> dict[str, dict[float, float]]:
    """Per score, the cut value keeping each fraction of the weighted background."""
    return {
        score: {keep: weighted_quantile(values, background.weight, 1 - keep) for keep in KEEP_FRACTIONS}
        for score, values in background.scores.items()
    }


def score_mass(score: str) -> str:
    """The method whose mass a score belongs to."""
    return score.split(".")[0]


def background_summary(sample: Sample, events: Selected, methods: list[str], cuts: dict) -> dict:
    w = events.weight
    return {
        "files": sample.files,
        "events_read": events.events_read,
        "selected_events": events.jets.n_events,
        "effective_events": effective(w),
        "selection_efficiency_weighted": float(w.sum() / events.sumw_read),
        "average_mass_p90_gev": {m: weighted_quantile(events.mass[m], w, 0.9) for m in methods},
        "average_mass_median_gev": {m: weighted_quantile(events.mass[m], w, 0.5) for m in methods},
        "complete_fraction": {m: fraction(np.isfinite(events.mass[m]), w) for m in methods},
        "score_cuts": {
            score: {
                f"keep_{keep:g}": {"cut": cut, **shape_ratio(events.mass[score_mass(score)], events.scores[score] > cut, w)}
                for keep, cut in by_keep.items()
            }
            for score, by_keep in cuts.items()
        },
        "seconds": events.seconds,
    }


def s_over_b(eps_s: float, eps_b: float) -> dict:
    return {"signal_efficiency": eps_s, "background_efficiency": eps_b, "s_over_b": eps_s / eps_b if eps_b else float("inf")}


def pair_summary(
    signal: Sample, sig: Selected, bkg: Selected, methods: list[str], cuts: dict, window: float, seed: int
) -> dict:
    """Window efficiencies, S/B and its gain over mass asymmetry, with and without the score cuts;
    pairhunt's S/B over the reference's with its paired bootstrap interval."""
    out: dict = {"methods": {}, "score_cut": {}, "auc": {}}
    out["pairhunt_over_reference"] = paired_ratio(sig, bkg, signal.mass, window, seed)
    for m in methods:
        inside = in_window(bkg.mass[m], signal.mass, window)
        signal_inside = in_window(sig.mass[m], signal.mass, window)
        out["methods"][m] = s_over_b(fraction(signal_inside, sig.weight), fraction(inside, bkg.weight))
        out["methods"][m]["background_effective_in_window"] = effective(bkg.weight[inside])  # eps_B known to ~1/sqrt of this
        out["methods"][m]["signal_effective_in_window"] = effective(sig.weight[signal_inside])
    for m in methods:
        entry, base = out["methods"][m], out["methods"][BASELINE]
        entry["s_over_b_gain"] = entry["s_over_b"] / base["s_over_b"]
        entry["s_over_b_gain_relative_error"] = 0.0 if m == BASELINE else gain_relative_error(entry, base)
    for score, by_keep in cuts.items():
        mass = score_mass(score)
        out["auc"][score] = weighted_auc(sig.scores[score], sig.weight, bkg.scores[score], bkg.weight)
        out["score_cut"][score] = {}
        for keep, cut in by_keep.items():
            eps_s = fraction(in_window(sig.mass[mass], signal.mass, window) & (sig.scores[score] > cut), sig.weight)
            eps_b = fraction(in_window(bkg.mass[mass], signal.mass, window) & (bkg.scores[score] > cut), bkg.weight)
            out["score_cut"][score][f"keep_{keep:g}"] = s_over_b(eps_s, eps_b)
    return out


def signal_summary(sample: Sample, events: Selected, methods: list[str], window: float) -> dict:
    w = events.weight
    entry = {
        "files": sample.files,
        "mass_gev": sample.mass,
        "cascade": sample.cascade,
        "events_read": events.events_read,
        "selected_events": events.jets.n_events,
        "selection_efficiency": float(w.sum() / events.sumw_read),
        "methods": {},
        "seconds": events.seconds,
    }
    for m in methods:
        mode = peak(events.mass[m], w)
        entry["methods"][m] = {
            "signal_efficiency": fraction(in_window(events.mass[m], sample.mass, window), w),
            "peak_gev": mode,
            "half_width_68_gev": half_width_68(events.mass[m], mode),
            "complete_fraction": fraction(np.isfinite(events.mass[m]), w),
        }
    own = events.mass[f"{REFERENCE}_own_p4"]
    entry["reference_own_p4_peak_gev"] = peak(own, w)  # the reference's own candidate masses: same jets, its arithmetic
    if events.truth_parent is not None:
        entry["isr"] = {PAIRHUNT: isr_usage(events.parent[PAIRHUNT], events.truth_parent, events.jets.mask)}
    return entry


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    results, samples, events = benchmark(args)
    output = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    results["plots"] = plot(output.with_suffix(""), results["methods"], *samples, events, results)
    results["wall_seconds"] = time.perf_counter() - started
    results["table"] = markdown(results)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print()
    print(results["table"])


def benchmark(args: argparse.Namespace) -> tuple[dict, tuple[list[Sample], list[Sample]], dict[str, Selected]]:
    """Select, reconstruct and score every sample with every method; the results without plots."""
    torch.set_num_threads(args.threads)
    # raised inside the reference's attention (float bias with a bool padding mask), harmless
    warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask and attn_mask")
    topology = load_topology(TOPOLOGY)
    pairhunt = AbcAssignment(model=args.model, name=PAIRHUNT, threads=args.threads, device="cpu")
    model_sha256 = sha256(pairhunt.path)
    features = list(pairhunt.required_features(topology))
    encoder, reference_info = load_reference(args.reference_dir.resolve())
    fixed = batch_major(encoder)
    methods = [PAIRHUNT, REFERENCE, BASELINE, "mass_asymmetry_6"]

    backgrounds = [parse_background(s) for s in args.background]
    signals = [parse_signal(s) for s in args.signal]
    events = {s.name: select(s, topology, features, args.max_events) for s in backgrounds + signals}
    reference_info["batch_check"] = {
        name: check_batching(encoder, fixed, e.jets, args.check_events, args.reference_batch_size) for name, e in events.items()
    }
    reference_info["input_check"] = {name: input_check(fixed, e.jets) for name, e in events.items()}
    for sample in backgrounds + signals:
        reconstruct(events[sample.name], pairhunt, fixed, topology, args.reference_batch_size)

    cuts = {b.name: score_cuts(events[b.name]) for b in backgrounds}
    results = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "numpy": np.__version__},
        "model": args.model,
        "model_sha256": model_sha256,
        "reference": reference_info,
        "topology": TOPOLOGY,
        "window": args.window,
        "methods": methods,
        "scores": list(events[backgrounds[0].name].scores),
        "backgrounds": {b.name: background_summary(b, events[b.name], methods, cuts[b.name]) for b in backgrounds},
        "signals": {},
    }
    for s in signals:
        entry = signal_summary(s, events[s.name], methods, args.window)
        entry["versus"] = {
            b.name: pair_summary(s, events[s.name], events[b.name], methods, cuts[b.name], args.window, seed=args.bootstrap_seed)
            for b in backgrounds
        }
        results["signals"][s.name] = entry
    if sha256(pairhunt.path) != model_sha256:  # the ONNX session opens lazily: a model replaced meanwhile would be mixed in
        raise SystemExit(f"{pairhunt.path} changed during the run: results would mix two models")
    return results, (backgrounds, signals), events


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/pair_abc.onnx", help="pairhunt ABC ONNX model")
    parser.add_argument("--reference-dir", type=Path, required=True, help="work tree of badeaa3/unsupervised-search")
    parser.add_argument("--background", nargs="+", required=True, help="NAME=FILE[,FILE...] weighted QCD")
    parser.add_argument("--signal", nargs="+", required=True, help="NAME=FILE[,FILE...]:MASS[:cascade]")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/abc_reference.json"))
    parser.add_argument("--window", type=float, default=0.15, help="relative half-width of the mass window")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reference-batch-size", type=int, default=512)
    parser.add_argument("--check-events", type=int, default=50, help="events checked at batch size 1")
    parser.add_argument("--bootstrap-seed", type=int, default=1, help="seed of the paired bootstrap of the S/B ratio")
    parser.add_argument("--max-events", type=int, default=None, help="read at most this many events per file (quick checks)")
    return parser.parse_args()


# ---------------------------------------------------------------- report


def _joined(values: list[float], digits: int = 2, suffix: str = "") -> str:
    """One cell, a value per background joined by ' / '."""
    return " / ".join("–" if not np.isfinite(v) else f"{v:.{digits}f}{suffix}" for v in values)


def _gain(entry: dict) -> str:
    """An S/B gain with its statistical relative error."""
    gain, error = entry["s_over_b_gain"], entry["s_over_b_gain_relative_error"]
    if not np.isfinite(gain):
        return "–"
    return f"{gain:.2f}×" if error == 0 else f"{gain:.2f}× ±{100 * error:.0f} %"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def summary_table(results: dict) -> str:
    """The issue's table: S/B gain, anomaly-score AUC, QCD average-mass 90th percentile."""
    bkgs, signals = list(results["backgrounds"]), results["signals"]
    kind = {s: "cascade" if e["cascade"] else "3q" for s, e in signals.items()}
    header = ["method", *[f"S/B gain {s} ({kind[s]}), stat. error" for s in signals], *[f"AUC {s}" for s in signals], "QCD ⟨m⟩ p90 [GeV]"]

    def aucs(score: str) -> list[str]:
        return [_joined([signals[s]["versus"][b]["auc"][score] for b in bkgs]) for s in signals]

    rows = []
    for m in results["methods"]:
        gains = [" / ".join(_gain(signals[s]["versus"][b]["methods"][m]) for b in bkgs) for s in signals]
        scores = [k for k in results["scores"] if score_mass(k) == m]
        p90 = _joined([results["backgrounds"][b]["average_mass_p90_gev"][m] for b in bkgs], 0)
        rows.append([m, *gains, *(aucs(scores[0]) if scores else ["–"] * len(signals)), p90])
        rows += [[f"{m} [{extra.split('.', 1)[1]}]", *["–"] * len(signals), *aucs(extra), "–"] for extra in scores[1:]]
    return _table(header, rows)


def efficiency_table(results: dict) -> str:
    """Per signal and method: peak, width, eps_S, eps_B (effective QCD events in the window), eps_S/eps_B."""
    bkgs = list(results["backgrounds"])
    header = ["signal", "method", "peak [GeV]", "68 % half-width [GeV]", "ε_S"]
    header += [f"ε_B {b} (N_eff in window)" for b in bkgs] + [f"ε_S/ε_B {b}" for b in bkgs]
    rows = []
    for s, entry in results["signals"].items():
        for m in results["methods"]:
            e, pairs = entry["methods"][m], [entry["versus"][b]["methods"][m] for b in bkgs]
            rows.append([s, m, f"{e['peak_gev']:.0f}", f"{e['half_width_68_gev']:.0f}", f"{e['signal_efficiency']:.3f}",
                         *[f"{p['background_efficiency']:.4f} ({p['background_effective_in_window']:.0f})" for p in pairs],
                         *[f"{p['s_over_b']:.1f}" for p in pairs]])
    return _table(header, rows)


def ratio_table(results: dict) -> str:
    """pairhunt's eps_S/eps_B over the reference's per signal and background, paired bootstrap intervals."""
    header = ["signal", "background", "pairhunt / reference S/B", "68 % interval", "95 % interval", "replicas ≥ 1",
              "N_eff QCD in either window"]
    rows = []
    for s, entry in results["signals"].items():
        for b, pair in entry["versus"].items():
            r = pair["pairhunt_over_reference"]
            rows.append([s, b, f"{r['ratio']:.2f}", "{:.2f}-{:.2f}".format(*r["interval_68"]),
                         "{:.2f}-{:.2f}".format(*r["interval_95"]), f"{r['replicas_at_or_above_1']:.2f}",
                         f"{r['background_effective_in_either_window']:.0f}"])
    return _table(header, rows)


def score_cut_tables(results: dict) -> str:
    """eps_S/eps_B in the window after the score cuts, and the chi2/ndf of the cut QCD shape against flat."""
    bkgs = list(results["backgrounds"])
    keeps = [f"keep_{k:g}" for k in KEEP_FRACTIONS]
    header = ["signal", "score (cut on its method's mass)", *[f"ε_S/ε_B, {k.replace('_', ' ')} of {b}" for k in keeps for b in bkgs]]
    rows = [
        [s, score, *[f"{entry['versus'][b]['score_cut'][score][k]['s_over_b']:.1f}" for k in keeps for b in bkgs]]
        for s, entry in results["signals"].items()
        for score in results["scores"]
    ]
    shapes = ["background", "selected", "effective", *[f"score cut {k.replace('_', ' ')}: χ²/ndf, p (ε)" for k in keeps]]
    shape_rows = [
        [f"{b} {score}", str(entry["selected_events"]), f"{entry['effective_events']:.0f}",
         *[f"{c['chi2']:.1f}/{c['ndf']}, {c['p_value_flat']:.3f} ({c['efficiency']:.2f})" for c in cuts.values()]]
        for b, entry in results["backgrounds"].items()
        for score, cuts in entry["score_cuts"].items()
    ]
    return _table(header, rows) + "\n\n" + _table(shapes, shape_rows)


def notes(results: dict) -> list[str]:
    """ISR use on signal, the reference's batching check, the wall time."""
    lines = [
        f"- ISR use, {m} on {s}: {isr['matched_to_isr']:.3f} of {isr['matched_jets']} truth-matched jets, "
        f"{isr['unmatched_to_isr']:.3f} of {isr['unmatched_jets']} unmatched jets"
        for s, entry in results["signals"].items()
        for m, isr in entry.get("isr", {}).items()
    ]
    checks = results["reference"]["batch_check"].values()
    lines.append(
        f"- reference batched vs batch size 1 on {sum(c['events'] for c in checks)} events: "
        f"max |Δloss| {max(c['max_abs_loss_difference'] for c in checks):.1e}, "
        f"relative {max(c['max_relative_loss_difference'] for c in checks):.1e} (without the bias reordering: "
        f"{max(c['unfixed_batch_max_abs_loss_difference'] for c in checks):.1e}, "
        f"{sum(c['unfixed_batch_assignments_differing'] for c in checks)} events assigned differently)"
    )
    lines.append(f"- wall time {results['wall_seconds']:.0f} s")
    return lines


def markdown(results: dict) -> str:
    """The issue's table and the details behind it."""
    intro = f"Window ±{results['window']:.0%}; cells hold one value per background: {' / '.join(results['backgrounds'])}."
    parts = [intro, summary_table(results), efficiency_table(results), ratio_table(results), score_cut_tables(results),
             "\n".join(notes(results))]
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------- plots


def plot(
    stem: Path, methods: list[str], backgrounds: list[Sample], signals: list[Sample], events: dict[str, Selected], results: dict
) -> list[str]:
    """Mass shapes per method, ROC curves, score-cut shape ratios (mplhep style); returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep

    plt.style.use(hep.style.CMS)
    written = [plot_masses(plt, stem, methods, backgrounds, signals, events), plot_rocs(plt, stem, backgrounds, signals, events)]
    written.append(plot_score_cuts(plt, stem, backgrounds, results))
    plt.close("all")
    return written


def plot_masses(plt, stem: Path, methods: list[str], backgrounds: list[Sample], signals: list[Sample], events: dict[str, Selected]) -> str:
    bins = np.linspace(0, 3000, 61)
    fig, axes = plt.subplots(1, len(methods), figsize=(8 * len(methods), 7), sharey=True)
    for ax, m in zip(axes, methods):
        for sample in backgrounds + signals:
            e = events[sample.name]
            finite = np.isfinite(e.mass[m])
            filled = sample.mass is None
            ax.hist(e.mass[m][finite], bins=bins, weights=e.weight[finite], density=True, histtype="stepfilled" if filled else "step",
                    alpha=0.35 if filled else 1.0, label=sample.name, linewidth=2)
        ax.set_xlabel("Average parent mass [GeV]")
        ax.set_title(m, fontsize=18)
        ax.legend(fontsize=13)
    axes[0].set_ylabel("Normalised")
    path = f"{stem}_mass.png"
    fig.savefig(path, dpi=80, bbox_inches="tight")
    return path


def plot_rocs(plt, stem: Path, backgrounds: list[Sample], signals: list[Sample], events: dict[str, Selected]) -> str:
    fig, axes = plt.subplots(1, len(backgrounds), figsize=(8 * len(backgrounds), 7), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["-", "--", "-.", ":"]
    for ax, b in zip(axes[0], backgrounds):
        bkg = events[b.name]
        for i, s in enumerate(signals):
            sig = events[s.name]
            for j, score in enumerate(bkg.scores):
                eff_b, eff_s = roc_curve(sig.scores[score], sig.weight, bkg.scores[score], bkg.weight)
                ax.plot(eff_b, eff_s, color=colours[i % len(colours)], ls=styles[j % len(styles)], label=f"{s.name} {score}")
        ax.plot([0, 1], [0, 1], ls=":", color="grey")
        ax.set_xlabel(f"{b.name} efficiency (score > cut, weighted)")
        ax.set_ylabel("Signal efficiency")
        ax.legend(fontsize=10)
    path = f"{stem}_roc.png"
    fig.savefig(path, dpi=80, bbox_inches="tight")
    return path


def ratio_axis_top(cuts) -> float:
    """At least 3, enough for the points in the chi2 (at most 1 / the smallest kept fraction)."""
    tops = [r + e for c in cuts for r, e, u in zip(c["ratio"], c["ratio_error"], c["used_in_chi2"]) if u and r is not None and e is not None]
    return float(np.clip(1.1 * max(tops, default=3.0), 3.0, 1.05 / min(KEEP_FRACTIONS)))


def plot_score_cuts(plt, stem: Path, backgrounds: list[Sample], results: dict) -> str:
    scores = results["scores"]
    fig, axes = plt.subplots(len(scores), len(backgrounds), figsize=(8 * len(backgrounds), 5 * len(scores)), squeeze=False, sharex=True)
    for col, b in enumerate(backgrounds):
        for row, score in enumerate(scores):
            ax = axes[row][col]
            for keep, cut in results["backgrounds"][b.name]["score_cuts"][score].items():
                edges = np.array(cut["bins_gev"])
                centre, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * np.diff(edges)
                ratio = np.array([np.nan if v is None else v for v in cut["ratio"]])
                error = np.array([np.nan if v is None else v for v in cut["ratio_error"]])
                used = np.array(cut["used_in_chi2"])
                label = f"{keep.replace('_', ' ')}: χ²/ndf {cut['chi2']:.1f}/{cut['ndf']}, p {cut['p_value_flat']:.2f}"
                line = ax.errorbar(centre[used], ratio[used], yerr=error[used], xerr=half[used], fmt="o", ms=5, label=label)
                # bins outside the chi2 (a flat cut keeps or rejects < 5 effective events): open markers
                ax.errorbar(centre[~used], ratio[~used], yerr=error[~used], xerr=half[~used], fmt="o", ms=5, mfc="none",
                            color=line[0].get_color(), alpha=0.5)
            ax.axhline(1.0, color="grey", ls=":")
            ax.set_ylim(0, ratio_axis_top(results["backgrounds"][b.name]["score_cuts"][score].values()))
            ax.set_title(f"{b.name}: {score}", fontsize=14)
            ax.set_ylabel("cut / uncut shape")
            ax.legend(fontsize=11)
        axes[-1][col].set_xlabel("Average parent mass [GeV]")
    path = f"{stem}_score_cut.png"
    fig.savefig(path, dpi=80, bbox_inches="tight")
    return path


if __name__ == "__main__":
    main()

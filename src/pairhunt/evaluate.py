"""Jet-assignment efficiency of a run's methods against generator truth, as in the SPANet papers.

The per-event parquet files of ``pairhunt run`` are joined to the truth labels of the ROOT files
by (run, luminosityBlock, event): the generated files' ``Jet_truthParent``/``Jet_truthProduct``,
or labels built from a NanoAOD MC file's ``GenPart`` (``pairhunt.gen_truth``). Both
sides become slot tables ``[events, parents, products]`` of jet indices; sorting the jets within
each product symmetry group and trying every allowed parent permutation makes the comparison
blind to the labelling symmetries of the topology.

- Visible jets: pT > pt_min and |eta| < eta_max of the topology's jet selection, among the
  leading ``keep``: the jets a method could see. A quark matched to another jet is unmatched.
- Jet multiplicity: visible-cut jets before ``keep`` (as the run's ``n_jets`` histogram).
- A truth parent is reconstructable when every product slot is matched to a visible jet; an
  event is complete when every parent is.
- A predicted parent is correct when its (jet, slot) pairs equal the truth's up to the product
  symmetries. Event efficiency: fraction of events with every parent correct under one allowed
  parent permutation. Per-parent efficiency: correct / reconstructable parents, taking each
  event's best parent permutation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from pairhunt.errors import PairhuntError, unreadable
from pairhunt.event_table import KEYS
from pairhunt.gen_truth import per_object, read_labels, truth_branches, truth_requirement
from pairhunt.runner import load_fileset
from pairhunt.slot_matching import best_correct, canonical, reconstructable
from pairhunt.topology import Selection, Topology, load_topology, topology_from_dict

CATEGORIES = ("all", "complete")
CONFLICT = -2  # slot claimed by several jets: never equal to a truth jet


# --- inputs ------------------------------------------------------------------------------------


def resolve_topology(run_dir: str | Path, topology: Topology | str | None) -> Topology:
    """The topology to evaluate with, checked against the run's ``summary.json`` when present.

    Evaluating with another topology than the run's would silently change the jet cuts.
    """
    summary = Path(run_dir) / "summary.json"
    recorded = json.loads(summary.read_text()) if summary.is_file() else {}
    run_name = recorded.get("topology")
    if topology is None:
        if run_name is None:
            raise PairhuntError(f"{run_dir}: no summary.json naming the run's topology; pass --topology")
        definition = recorded.get("topology_definition")  # runs made with a topology YAML of the user's
        topology = topology_from_dict(definition, f"{summary}") if definition else run_name
    topology = load_topology(topology) if not isinstance(topology, Topology) else topology
    if run_name is not None and run_name != topology.name:
        raise PairhuntError(f"the run in {run_dir} used topology {run_name!r}, not {topology.name!r}")
    return topology


def event_branches(topology: Topology) -> list[str]:
    """The keys and the objects' pt and eta, read from a truth file besides the labels."""
    return [*KEYS, *(f"{c}_{k}" for c in topology.jets.source_collections for k in ("pt", "eta"))]


def _open_tree(filename: str, tree: str):
    try:
        return uproot.open(filename)[tree]
    except Exception as error:  # noqa: BLE001 - any failure to open is reported with the file
        raise unreadable(filename, error) from error


def has_truth(filename: str, tree: str, topology: Topology) -> bool:
    """The file stores jet truth labels or has the GenPart record to build them from."""
    return truth_branches(_open_tree(filename, tree).keys(), topology) is not None


def truth_datasets(
    fileset: dict[str, dict], topology: Topology, dataset: str | None = None
) -> tuple[list[str], list[str]]:
    """Datasets to evaluate and datasets skipped for lack of truth.

    A named dataset, or a dataset with truth in some files only, must have it in every file.
    """
    if dataset is not None and dataset not in fileset:
        raise PairhuntError(f"dataset {dataset!r} is not in the fileset (it has {sorted(fileset)})")
    chosen, skipped = [], []
    for name in [dataset] if dataset is not None else list(fileset):
        files = fileset[name]["files"]
        lacking = [f for f, t in files.items() if not has_truth(f, t, topology)]
        if not lacking:
            chosen.append(name)
        elif dataset is None and len(lacking) == len(files):
            skipped.append(name)
        else:
            raise PairhuntError(
                f"dataset {name!r}: {lacking[0]} has no truth branches ({len(lacking)} of {len(files)} files "
                f"lack them); evaluate needs {truth_requirement(topology)}"
            )
    if not chosen:
        raise PairhuntError(f"no dataset of the fileset has truth: evaluate needs {truth_requirement(topology)}")
    return chosen, skipped


def load_truth(files: dict[str, str], topology: Topology) -> ak.Array:
    """Keys and per-jet pt, eta, truth parent and product of every event of ``files``.

    The labels are the file's own (``pairhunt generate``) or built from its GenPart record.
    """
    branches = event_branches(topology)
    parts = []
    for filename, tree in files.items():
        handle = _open_tree(filename, tree)
        labels = truth_branches(handle.keys(), topology)
        arrays = handle.arrays(sorted(set(branches) | set(labels)))
        parent, product = read_labels(arrays, topology)
        fields = {**{k: arrays[k] for k in KEYS}, **{k: per_object(arrays, topology, k) for k in ("pt", "eta")}}
        parts.append(ak.Array({**fields, "parent": parent, "product": product}))
    return ak.concatenate(parts) if len(parts) > 1 else parts[0]


def load_results(run_dir: str | Path, dataset: str) -> ak.Array:
    """All per-event rows a run wrote for ``dataset`` (one parquet file per chunk)."""
    directory = Path(run_dir) / "events" / dataset
    paths = sorted(directory.glob("*.parquet"))
    if not paths:
        raise PairhuntError(f"no per-event parquet files in {directory} (was the run made with --no-events?)")
    tables = [ak.from_parquet(p) for p in paths]
    return ak.concatenate(tables) if len(tables) > 1 else tables[0]


def method_names(results: ak.Array) -> list[str]:
    """Methods with per-jet columns ``M_jet_parent`` and ``M_jet_product``, in column order."""
    fields = set(results.fields)
    names = [f.removesuffix("_jet_parent") for f in results.fields if f.endswith("_jet_parent")]
    return [n for n in names if f"{n}_jet_product" in fields]


# --- join --------------------------------------------------------------------------------------


def key_matrix(table: ak.Array) -> np.ndarray:
    """``[rows, 3]`` uint64 of (run, luminosityBlock, event)."""
    return np.stack([ak.to_numpy(table[k]).astype(np.uint64) for k in KEYS], axis=1).reshape(-1, len(KEYS))


def join_keys(results: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """Truth row of every results row (-1 if none or ambiguous) and counts of what did not match.

    Keys repeated on either side (say two files generated with the same event numbers, or
    stale parquet files of an earlier run) are ambiguous: excluded and counted, never guessed.
    """
    _, ids = np.unique(np.concatenate([results, truth]), axis=0, return_inverse=True)
    ids = ids.reshape(-1)
    res_ids, truth_ids = ids[: len(results)], ids[len(results) :]
    n_ids = len(ids) and int(ids.max()) + 1
    res_count = np.bincount(res_ids, minlength=n_ids)
    truth_count = np.bincount(truth_ids, minlength=n_ids)
    unique = (res_count <= 1) & (truth_count <= 1)
    lookup = np.full(n_ids, -1, dtype=np.int64)
    lookup[truth_ids] = np.arange(len(truth_ids))
    match = np.where(unique[res_ids], lookup[res_ids], -1)
    stats = {
        "results": len(results),
        "truth": len(truth),
        "matched": int((match >= 0).sum()),
        "results_without_truth": int((truth_count[res_ids] == 0).sum()),
        "truth_without_results": int((res_count[truth_ids] == 0).sum()),
        "results_ambiguous": int((~unique[res_ids] & (truth_count[res_ids] > 0)).sum()),
        "truth_ambiguous": int((~unique[truth_ids] & (res_count[truth_ids] > 0)).sum()),
    }
    return match, stats


# --- slots and scoring -------------------------------------------------------------------------


def visible_jets(pt: ak.Array, eta: ak.Array, selection: Selection) -> tuple[ak.Array, np.ndarray]:
    """Jets a method could see (cuts, then leading ``keep``) and the multiplicity after the cuts."""
    passing = (pt > selection.pt_min) & (abs(eta) < selection.eta_max)
    order = ak.argsort(ak.where(passing, pt, -np.inf), axis=1, ascending=False, stable=True)
    rank = ak.argsort(order, axis=1, stable=True)
    return passing & (rank < selection.keep), ak.to_numpy(ak.sum(passing, axis=1)).astype(np.int64)


def label_slots(parent: ak.Array, product: ak.Array, topology: Topology, what: str = "labels") -> np.ndarray:
    """Per-jet labels -> ``[events, parents, max_products]`` jet index per slot, -1 when empty.

    A slot claimed by several jets gets ``CONFLICT`` so it never counts as correct.
    """
    counts = ak.to_numpy(ak.num(parent, axis=1)).astype(np.int64)
    p = ak.to_numpy(ak.flatten(parent, axis=1)).astype(np.int64)
    s = ak.to_numpy(ak.flatten(product, axis=1)).astype(np.int64)
    jet = ak.to_numpy(ak.flatten(ak.local_index(parent, axis=1), axis=1)).astype(np.int64)
    event = np.repeat(np.arange(len(counts)), counts)
    used = (p >= 0) & (s >= 0)
    n_products = np.array([len(topology.products[name]) for name in topology.parents])
    bad = used & ((p >= topology.n_parents) | (s >= n_products[np.clip(p, 0, topology.n_parents - 1)]))
    if bad.any():
        raise PairhuntError(
            f"{what}: parent {p[bad][0]} / product slot {s[bad][0]} do not exist in topology {topology.name!r}"
        )
    shape = (len(counts), topology.n_parents, topology.max_products)
    slots = np.full(shape, -1, dtype=np.int64)
    claims = np.zeros(shape, dtype=np.int64)
    where = (event[used], p[used], s[used])
    np.add.at(claims, where, 1)
    slots[where] = jet[used]
    slots[claims > 1] = CONFLICT
    return slots


# --- summary -----------------------------------------------------------------------------------


def multiplicity_bins(topology: Topology) -> tuple[str, ...]:
    """``==n, ==n+1, >=n+2, inclusive`` with n the jets needed to fill every parent (6 for both shipped)."""
    n = topology.n_assigned
    return (f"=={n}", f"=={n + 1}", f">={n + 2}", "inclusive")


def _bin_mask(name: str, multiplicity: np.ndarray) -> np.ndarray:
    if name == "inclusive":
        return np.ones(len(multiplicity), dtype=bool)
    value = int(name[2:])
    return multiplicity == value if name.startswith("==") else multiplicity >= value


def _ratio(numerator: int | float, denominator: int | float) -> float | None:
    """JSON-ready ratio: None (not NaN) when nothing was counted."""
    return float(numerator) / float(denominator) if denominator else None


def summarise(multiplicity: np.ndarray, recon: np.ndarray, best: np.ndarray, topology: Topology) -> dict:
    """Cells ``{bin: {category: {...}}}`` of one method; fractions are of all evaluated events."""
    n_recon = recon.sum(axis=1)
    complete = n_recon == topology.n_parents
    cells: dict[str, dict] = {}
    for name in multiplicity_bins(topology):
        in_bin = _bin_mask(name, multiplicity)
        cells[name] = {}
        for category, mask in zip(CATEGORIES, (in_bin, in_bin & complete)):
            events = int(mask.sum())
            cells[name][category] = {
                "events": events,
                "event_fraction": _ratio(events, len(multiplicity)),
                "event_efficiency": _ratio(int((best[mask] == topology.n_parents).sum()), events),
                "parent_efficiency": _ratio(int(best[mask].sum()), int(n_recon[mask].sum())),
                "reconstructable_parents": int(n_recon[mask].sum()),
            }
    return cells


def evaluate_dataset(results: ak.Array, truth: ak.Array, topology: Topology) -> dict:
    """Join one dataset's per-event results to its truth and score every method."""
    methods = method_names(results)
    if not methods:
        raise PairhuntError("the per-event files have no method columns (M_jet_parent, M_jet_product)")
    match, join = join_keys(key_matrix(results), key_matrix(truth))
    selected = ak.to_numpy(results["selected"]).astype(bool)
    join["selected"] = int(selected.sum())
    join["selected_without_truth"] = int((selected & (match < 0)).sum())
    rows = np.flatnonzero(selected & (match >= 0))
    chosen, labels = results[rows], truth[match[rows]]
    n_jets = ak.to_numpy(ak.num(chosen[f"{methods[0]}_jet_parent"], axis=1))
    differ = ak.to_numpy(ak.num(labels.pt, axis=1)) != n_jets
    if differ.any():
        raise PairhuntError(
            f"{int(differ.sum())} events have a different number of jets in the results and in the truth "
            "file: were the results made from these files?"
        )
    visible, multiplicity = visible_jets(labels.pt, labels.eta, topology.jets.selection)
    truth_labels = label_slots(ak.where(visible, labels.parent, -1), labels.product, topology, "truth")
    truth_slots = canonical(truth_labels, topology)
    recon = reconstructable(truth_slots, topology)
    scores = {}
    for method in methods:
        predicted = label_slots(chosen[f"{method}_jet_parent"], chosen[f"{method}_jet_product"], topology, method)
        best = best_correct(canonical(predicted, topology), truth_slots, recon, topology)
        scores[method] = summarise(multiplicity, recon, best, topology)
    return {"join": join, "evaluated_events": len(rows), "methods": scores}


def evaluate_run(
    run_dir: str | Path,
    fileset: str | Path | dict,
    topology: Topology | str | None = None,
    dataset: str | None = None,
) -> dict:
    """Evaluate every method of a run on the datasets with truth; JSON-ready report."""
    topology = resolve_topology(run_dir, topology)
    files = fileset if isinstance(fileset, dict) else load_fileset(fileset)
    chosen, skipped = truth_datasets(files, topology, dataset)
    report = {
        "topology": topology.name,
        "run_dir": str(run_dir),
        "bins": list(multiplicity_bins(topology)),
        "skipped_datasets": skipped,
        "datasets": {},
    }
    for name in chosen:
        truth = load_truth(files[name]["files"], topology)
        report["datasets"][name] = evaluate_dataset(load_results(run_dir, name), truth, topology)
    return report


# --- Markdown ----------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def join_warnings(join: dict) -> list[str]:
    """Human sentences for events that were not evaluated although they could have been."""
    texts = {
        "selected_without_truth": "selected events have no (unique) truth row and were not evaluated",
        "truth_without_results": "truth events are absent from the per-event results",
        "results_ambiguous": "result rows share their keys with another row (ambiguous)",
        "truth_ambiguous": "truth rows share their keys with another row (ambiguous)",
    }
    return [f"{join[key]} {text}" for key, text in texts.items() if join.get(key)]


def markdown_table(name: str, entry: dict, bins: list[str]) -> str:
    """One dataset in SPANet's layout: rows jet bins x {all, complete}, columns per method."""
    methods = list(entry["methods"])
    header = ["N_jets", "events", "count", "fraction"]
    header += [f"{m} {what}" for m in methods for what in ("event eff.", "parent eff.")]
    lines = [
        f"### {name}: {entry['evaluated_events']} selected events evaluated",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---", "---"] + ["---:"] * (len(header) - 2)) + " |",
    ]
    for bin_name in bins:
        for category in CATEGORIES:
            first = entry["methods"][methods[0]][bin_name][category]
            row = [bin_name if category == "all" else "", category, str(first["events"]), _fmt(first["event_fraction"])]
            for m in methods:
                cell = entry["methods"][m][bin_name][category]
                row += [_fmt(cell["event_efficiency"]), _fmt(cell["parent_efficiency"])]
            lines.append("| " + " | ".join(row) + " |")
    lines += [""] + [f"- {w}" for w in join_warnings(entry["join"])]
    return "\n".join(lines).rstrip() + "\n"


def markdown_report(report: dict) -> str:
    """All datasets of a report as Markdown."""
    parts = [f"## Jet-assignment efficiency (topology {report['topology']})", ""]
    parts += [markdown_table(name, entry, report["bins"]) for name, entry in report["datasets"].items()]
    if report["skipped_datasets"]:
        parts.append(f"Skipped (no truth labels or GenPart): {', '.join(report['skipped_datasets'])}\n")
    return "\n".join(parts)

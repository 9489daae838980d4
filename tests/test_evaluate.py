"""``pairhunt evaluate``: hand-made events with known answers, then a generated ttbar run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from pairhunt.cli import main
from pairhunt.errors import PairhuntError
from pairhunt.evaluate import evaluate_run, join_keys, label_slots
from pairhunt.slot_matching import best_correct, canonical, parent_permutations, reconstructable
from pairhunt.topology import load_topology

TTBAR = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]  # (parent, slot) of jets 0..5


def jets(labels, pts=None):
    """One event's jets: (parent, slot) per jet, pT 50 GeV unless given, eta 0."""
    pts = pts or [50.0] * len(labels)
    return {"pt": pts, "parent": [p for p, _ in labels], "product": [s for _, s in labels]}


# event number -> truth jets, prediction of method "pred", selected
EVENTS = {
    # both tops right up to t1<->t2 and q1<->q2 swaps: correct
    1: (jets(TTBAR), [(1, 1), (1, 0), (1, 2), (0, 1), (0, 0), (0, 2)], True),
    # b and q1 of t1 swapped: t1 wrong, t2 right
    2: (jets(TTBAR), [(0, 2), (0, 1), (0, 0), (1, 0), (1, 1), (1, 2)], True),
    # 7 jets, q1 of t1 unmatched (jet 0 unlabelled): not complete; t2 right
    3: (
        jets([(-1, -1), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (-1, -1)]),
        [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (-1, -1)],
        True,
    ),
    # 9 jets, b of t2 on a 20 GeV jet the selection drops: 8 visible, t2 not reconstructable; t1 right
    4: (
        jets([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (-1, -1), (-1, -1), (-1, -1), (1, 2)], [50.0] * 8 + [20.0]),
        [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (-1, -1), (-1, -1), (-1, -1)],
        True,
    ),
    # not selected by the run: not evaluated
    5: (jets(TTBAR), [(-1, -1)] * 6, False),
}
RESULTS_ONLY, TRUTH_ONLY = 6, 7


def write_truth(path: Path, events: dict[int, dict]) -> None:
    """A TTree like pairhunt generate's: run, luminosityBlock, event, nJet, Jet_* with truth."""
    jet = ak.Array([{**j, "eta": [0.0] * len(j["pt"])} for j in events.values()])
    jet = ak.zip(
        {
            "pt": ak.values_astype(jet.pt, np.float32),
            "eta": ak.values_astype(jet.eta, np.float32),
            "truthParent": ak.values_astype(jet.parent, np.int32),
            "truthProduct": ak.values_astype(jet.product, np.int32),
        }
    )
    columns = {
        "run": np.ones(len(events), dtype=np.uint32),
        "luminosityBlock": np.ones(len(events), dtype=np.uint32),
        "event": np.array(list(events), dtype=np.uint64),
        "Jet": jet,
    }
    with uproot.recreate(path) as f:
        tree = f.mktree("Events", {k: ak.Array(v).type.content for k, v in columns.items()})
        tree.extend(columns)


def write_results(path: Path, numbers: list[int], methods: dict[str, list], selected: list[bool]) -> None:
    """A per-event parquet file as pairhunt run writes it."""
    columns = {
        "run": np.ones(len(numbers), dtype=np.uint32),
        "luminosityBlock": np.ones(len(numbers), dtype=np.uint32),
        "event": np.array(numbers, dtype=np.uint64),
        "selected": np.array(selected),
    }
    for name, labels in methods.items():
        columns[f"{name}_mavg"] = np.zeros(len(numbers))
        columns[f"{name}_jet_parent"] = ak.values_astype(ak.Array([[p for p, _ in ev] for ev in labels]), np.int8)
        columns[f"{name}_jet_product"] = ak.values_astype(ak.Array([[s for _, s in ev] for ev in labels]), np.int8)
    path.parent.mkdir(parents=True, exist_ok=True)
    ak.to_parquet(ak.zip(columns, depth_limit=1), path)


@pytest.fixture
def handmade(tmp_path) -> tuple[Path, Path]:
    """Run directory and fileset of the hand-made events above."""
    truth_events = {n: ev[0] for n, ev in EVENTS.items()}
    truth_events[TRUTH_ONLY] = jets(TTBAR)
    write_truth(tmp_path / "ttbar.root", truth_events)
    numbers = [*EVENTS, RESULTS_ONLY]
    truth_labels = [list(zip(ev[0]["parent"], ev[0]["product"])) for ev in EVENTS.values()] + [TTBAR]
    predictions = [ev[1] for ev in EVENTS.values()] + [TTBAR]
    selected = [ev[2] for ev in EVENTS.values()] + [True]
    methods = {"pred": predictions, "truth": truth_labels}
    write_results(tmp_path / "run" / "events" / "ttbar" / "chunk.parquet", numbers, methods, selected)
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({"ttbar": ["ttbar.root"]}))
    return tmp_path / "run", fileset


def test_known_answers(handmade):
    run_dir, fileset = handmade
    report = evaluate_run(run_dir, fileset, "ttbar_allhad")
    entry = report["datasets"]["ttbar"]
    assert report["bins"] == ["==6", "==7", ">=8", "inclusive"]
    assert entry["join"] == {
        "results": 6,
        "truth": 6,
        "matched": 5,
        "results_without_truth": 1,
        "truth_without_results": 1,
        "results_ambiguous": 0,
        "truth_ambiguous": 0,
        "selected": 5,
        "selected_without_truth": 1,
    }
    assert entry["evaluated_events"] == 4
    pred = entry["methods"]["pred"]
    expected = {  # (bin, category): (events, fraction, event eff., parent eff.)
        ("==6", "all"): (2, 0.5, 0.5, 0.75),
        ("==6", "complete"): (2, 0.5, 0.5, 0.75),
        ("==7", "all"): (1, 0.25, 0.0, 1.0),
        ("==7", "complete"): (0, 0.0, None, None),
        (">=8", "all"): (1, 0.25, 0.0, 1.0),
        (">=8", "complete"): (0, 0.0, None, None),
        ("inclusive", "all"): (4, 1.0, 0.25, 5 / 6),
        ("inclusive", "complete"): (2, 0.5, 0.5, 0.75),
    }
    for (bin_name, category), (events, fraction, event_eff, parent_eff) in expected.items():
        cell = pred[bin_name][category]
        assert cell["events"] == events, (bin_name, category)
        assert cell["event_fraction"] == pytest.approx(fraction)
        for key, value in (("event_efficiency", event_eff), ("parent_efficiency", parent_eff)):
            assert cell[key] == (None if value is None else pytest.approx(value)), (bin_name, category, key)
    truth = entry["methods"]["truth"]["inclusive"]
    assert truth["complete"]["event_efficiency"] == 1.0
    assert truth["all"]["parent_efficiency"] == 1.0


def test_symmetries_at_slot_level():
    """ttbar: only q1<->q2 inside a top; gluinos: any order of the three quarks."""
    ttbar, gluino = load_topology("ttbar_allhad"), load_topology("pair_3body")
    assert parent_permutations(ttbar).tolist() == [[0, 1], [1, 0]]
    truth = np.array([[[0, 1, 2], [3, 4, 5]]] * 3)
    predicted = np.array(
        [
            [[4, 3, 5], [1, 0, 2]],  # tops swapped, q1<->q2 swapped: correct
            [[2, 1, 0], [3, 4, 5]],  # q1<->b: wrong for ttbar, right for gluinos
            [[0, 1, 3], [2, 4, 5]],  # a jet of each parent exchanged: wrong for both
        ]
    )
    for topology, expected in ((ttbar, [2, 1, 0]), (gluino, [2, 2, 0])):
        true = canonical(truth, topology)
        recon = reconstructable(true, topology)
        assert best_correct(canonical(predicted, topology), true, recon, topology).tolist() == expected


def test_label_slots_marks_conflicts_and_rejects_foreign_labels():
    topology = load_topology("ttbar_allhad")
    parent = ak.Array([[0, 0, 1, -1]])
    slots = label_slots(parent, ak.Array([[0, 0, 2, 1]]), topology)
    assert slots[0, 0, 0] == -2 and slots[0, 1, 2] == 2 and slots[0, 1, 0] == -1
    with pytest.raises(PairhuntError, match="do not exist"):
        label_slots(ak.Array([[2]]), ak.Array([[0]]), topology)


def test_join_counts_duplicates():
    results = np.array([[1, 1, 1], [1, 1, 2], [1, 1, 2], [1, 1, 3]], dtype=np.uint64)
    truth = np.array([[1, 1, 3], [1, 1, 2], [1, 1, 4]], dtype=np.uint64)
    match, stats = join_keys(results, truth)
    assert match.tolist() == [-1, -1, -1, 0]
    assert stats["results_ambiguous"] == 2 and stats["results_without_truth"] == 1
    assert stats["truth_without_results"] == 1 and stats["matched"] == 1


def test_errors(handmade, tmp_path):
    run_dir, fileset = handmade
    with pytest.raises(PairhuntError, match="not in the fileset"):
        evaluate_run(run_dir, fileset, "ttbar_allhad", dataset="qcd")
    with pytest.raises(PairhuntError, match="no per-event parquet"):
        evaluate_run(tmp_path / "elsewhere", fileset, "ttbar_allhad")
    with pytest.raises(PairhuntError, match="pass --topology"):
        evaluate_run(run_dir, fileset)
    (run_dir / "summary.json").write_text(json.dumps({"topology": "pair_3body"}))
    with pytest.raises(PairhuntError, match="used topology 'pair_3body'"):
        evaluate_run(run_dir, fileset, "ttbar_allhad")
    # a run made with a topology YAML of the user's: its summary carries the definition
    custom = dict(load_topology("ttbar_allhad").to_dict(), name="ttbar_mine")
    (run_dir / "summary.json").write_text(json.dumps({"topology": "ttbar_mine", "topology_definition": custom}))
    assert evaluate_run(run_dir, fileset)["topology"] == "ttbar_mine"
    (run_dir / "summary.json").unlink()
    plain = tmp_path / "plain.root"
    with uproot.recreate(plain) as f:
        f.mktree("Events", {"event": np.uint64}).extend({"event": np.arange(3, dtype=np.uint64)})
    (tmp_path / "plain.json").write_text(json.dumps({"qcd": [str(plain)]}))
    with pytest.raises(PairhuntError, match="no dataset of the fileset has truth"):
        evaluate_run(run_dir, tmp_path / "plain.json", "pair_3body")
    with pytest.raises(PairhuntError, match="has no truth branch"):
        evaluate_run(run_dir, tmp_path / "plain.json", "pair_3body", dataset="qcd")


def add_truth_methods(run_dir: Path, root_file: Path) -> None:
    """Give the run's single parquet file two methods made of the truth labels: ``truth`` copies
    them; ``no_b0`` leaves the b jet of parent 0 unassigned, so exactly one parent of every
    complete event is wrong."""
    (path,) = (run_dir / "events" / "ttbar").glob("*.parquet")
    table = ak.from_parquet(path)
    with uproot.open(root_file) as f:
        labels = f["Events"].arrays(["event", "Jet_truthParent", "Jet_truthProduct"])
    assert ak.to_list(labels.event) == ak.to_list(table.event)  # one chunk, file order
    parent, product = labels.Jet_truthParent, labels.Jet_truthProduct
    b0 = (parent == 0) & (product == 2)  # ttbar products: q1, q2, b
    table = ak.with_field(table, parent, "truth_jet_parent")
    table = ak.with_field(table, product, "truth_jet_product")
    table = ak.with_field(table, ak.where(b0, -1, parent), "no_b0_jet_parent")
    table = ak.with_field(table, ak.where(b0, -1, product), "no_b0_jet_product")
    ak.to_parquet(table, path)


def test_generated_ttbar_end_to_end(generated, tmp_path, capsys):
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({"ttbar": [str(generated["ttbar"])], "qcd": [str(generated["qcd"])]}))
    out = tmp_path / "run"
    assert main(["run", str(fileset), "-o", str(out), "--method", "chi2", "--no-progress"]) == 0
    add_truth_methods(out, generated["ttbar"])
    capsys.readouterr()
    assert main(["evaluate", str(out), str(fileset)]) == 0
    assert "| N_jets |" in capsys.readouterr().out

    report = json.loads((out / "evaluation.json").read_text())
    assert (out / "evaluation.md").read_text().startswith("## Jet-assignment efficiency")
    assert report["skipped_datasets"] == []  # generated QCD carries truth branches, all -1
    assert report["datasets"]["qcd"]["methods"]["chi2"]["inclusive"]["complete"]["events"] == 0
    entry = report["datasets"]["ttbar"]
    cutflow = json.loads((out / "summary.json").read_text())["cutflow"]["ttbar"]["events"]
    selected = list(cutflow.values())[-1]
    assert entry["join"]["selected"] == selected == entry["evaluated_events"]
    assert entry["join"]["truth_without_results"] == entry["join"]["results_without_truth"] == 0
    for method in ("chi2", "truth", "no_b0"):
        cells = entry["methods"][method]
        assert cells["inclusive"]["all"]["events"] == selected
        assert sum(cells[b]["all"]["events"] for b in report["bins"][:3]) == selected
        for cell in (c for b in cells.values() for c in b.values()):
            assert cell["event_fraction"] == cell["events"] / selected
    for cells in entry["methods"]["no_b0"].values():
        if cells["complete"]["events"]:
            assert cells["complete"]["event_efficiency"] == 0.0 and cells["complete"]["parent_efficiency"] == 0.5
    complete = entry["methods"]["truth"]["inclusive"]["complete"]
    assert complete["events"] > 0
    assert complete["event_efficiency"] == complete["parent_efficiency"] == 1.0
    truth_all = entry["methods"]["truth"]["inclusive"]["all"]
    assert truth_all["parent_efficiency"] == 1.0
    assert truth_all["event_efficiency"] == pytest.approx(complete["events"] / selected)
    chi2 = entry["methods"]["chi2"]["inclusive"]["complete"]
    assert 0.0 < chi2["event_efficiency"] < 1.0

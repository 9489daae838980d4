"""The processor through coffea's Runner: executors agree, chunking is exact, outputs align,
real CMS NanoAOD runs, and every bad input gets a clear answer."""

from __future__ import annotations

import glob
import json

import awkward as ak
import numpy as np
import pytest
import uproot

from pairhunt.cli import main
from pairhunt.errors import PairhuntError
from pairhunt.generate.nanoaod import NanoAODWriter
from pairhunt.assign.registry import make_method
from pairhunt.processors import PairProcessor
from pairhunt.processors.pair_processor import warm_up_once
from pairhunt.runner import load_fileset, normalise_files, run_fileset

CMS_FILES = [
    "nanoAOD_2015_CMS_Open_Data_ttbar.root",
    "nano_tt_v12.root",
    "nano_tt_v15.root",
    "nano_dy.root",
    "nano_dy_empty.root",
    "nano_dimuon.root",
]


def run(files: dict, methods=("chi2", "mass_asymmetry"), output_dir=None, **options):
    fileset = {dataset: normalise_files(paths) for dataset, paths in files.items()}
    processor = PairProcessor("ttbar_allhad", [make_method(m) for m in methods], output_dir=output_dir)
    options.setdefault("progress", False)
    return run_fileset(fileset, processor, **options)


def assert_same_hists(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        assert list(a[name].axes[0]) == list(b[name].axes[0])
        np.testing.assert_array_equal(a[name].values(flow=True), b[name].values(flow=True), err_msg=name)
        np.testing.assert_array_equal(a[name].variances(flow=True), b[name].variances(flow=True), err_msg=name)


def write_nanoaod(path, jets: dict, n_events: int):
    """A minimal NanoAOD-like file: run/lumi/event keys and a Jet collection."""
    events = ak.zip(
        {
            "run": np.ones(n_events, dtype=np.uint32),
            "luminosityBlock": np.ones(n_events, dtype=np.uint32),
            "event": np.arange(1, n_events + 1, dtype=np.uint64),
            "Jet": ak.zip(jets),
        },
        depth_limit=1,
    )
    with NanoAODWriter(path) as writer:
        writer.write(events)
    return path


@pytest.fixture(scope="module")
def reference(generated):
    """The iterative executor, one chunk per file: the reference for the other runs."""
    return run({"ttbar": [str(generated["ttbar"])]}, executor="iterative")


def test_iterative_futures_and_dask_agree(generated, reference):
    files = {"ttbar": [str(generated["ttbar"])]}
    futures = run(files, executor="futures", workers=2, chunksize=150)
    dask = run(files, executor="dask", workers=2, chunksize=150)
    for other in (futures, dask):
        assert_same_hists(reference.output["hists"], other.output["hists"])
        assert other.output["cutflow"] == reference.output["cutflow"]


def test_chunked_run_equals_one_chunk(generated, reference):
    chunked = run({"ttbar": [str(generated["ttbar"])]}, executor="iterative", chunksize=37)
    assert_same_hists(reference.output["hists"], chunked.output["hists"])
    assert chunked.output["cutflow"] == reference.output["cutflow"]


def test_cutflow_counts_events_with_too_few_jets(generated, reference):
    with uproot.open(generated["ttbar"]) as f:
        jets = f["Events"].arrays(["Jet_pt", "Jet_eta"])
    passing = ak.sum((jets.Jet_pt > 25) & (abs(jets.Jet_eta) < 2.5), axis=1)
    flow = reference.output["cutflow"]["ttbar"]["events"]
    assert flow["all events"] == len(jets)
    assert flow[">= 6 jets"] == int(ak.sum(passing >= 6))
    assert reference.output["hists"]["n_jets"].sum(flow=True).value == flow[">= 6 jets"]
    assert reference.output["hists"]["mass_average"][{"method": "chi2"}].sum(flow=True).value == flow[">= 6 jets"]


def test_event_table_aligns_with_the_input_jet_collection(generated, tmp_path):
    run({"ttbar": [str(generated["ttbar"])]}, output_dir=tmp_path, chunksize=150)
    table = ak.concatenate([ak.from_parquet(p) for p in sorted(glob.glob(str(tmp_path / "events/ttbar/*.parquet")))])
    table = table[np.argsort(ak.to_numpy(table.event))]
    with uproot.open(generated["ttbar"]) as f:
        source = f["Events"].arrays(["event", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass"])
    assert np.array_equal(ak.to_numpy(table.event), ak.to_numpy(source.event))  # one row per event read
    assert ak.all(ak.num(table.chi2_jet_parent) == ak.num(source.Jet_pt))
    chosen = table.selected
    parent = table.chi2_jet_parent[chosen]
    assert ak.all(ak.sum(parent >= 0, axis=1) == 6)
    assert ak.all(table.chi2_jet_parent[~chosen] == -1)
    # the masses in the table are the masses of the jets the table assigns, in file order
    jets = source[ak.to_numpy(chosen)]
    px, py = jets.Jet_pt * np.cos(jets.Jet_phi), jets.Jet_pt * np.sin(jets.Jet_phi)
    pz = jets.Jet_pt * np.sinh(jets.Jet_eta)
    energy = np.sqrt(px**2 + py**2 + pz**2 + jets.Jet_mass**2)
    for p in (0, 1):
        member = parent == p
        sums = [ak.to_numpy(ak.sum(ak.values_astype(x, np.float64)[member], axis=1)) for x in (px, py, pz, energy)]
        mass = np.sqrt(np.maximum(sums[3] ** 2 - sums[0] ** 2 - sums[1] ** 2 - sums[2] ** 2, 0))
        np.testing.assert_allclose(ak.to_numpy(table.chi2_mass[chosen][:, p]), mass, rtol=1e-5)


def test_real_cms_nanoaod_files(shared_nanoaod):
    files = {name.removesuffix(".root"): [str(shared_nanoaod / name)] for name in CMS_FILES}
    result = run(files, methods=("chi2", "chi2_btag", "mass_asymmetry"), executor="iterative")
    for name in CMS_FILES:
        with uproot.open(shared_nanoaod / name) as f:
            entries = f["Events"].num_entries
        flow = result.output["cutflow"][name.removesuffix(".root")]["events"]
        assert flow["all events"] == entries
    assert result.report.skipped == {}
    assert result.output["hists"]["mass"][{"dataset": "nano_tt_v15", "method": "chi2"}].sum().value > 0


def test_empty_file_gives_empty_histograms(shared_nanoaod, tmp_path):
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({"dy_empty": [str(shared_nanoaod / "nano_dy_empty.root")]}))
    assert main(["run", str(fileset), "-o", str(tmp_path / "out"), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["events"] == 0 and summary["files"]["skipped"] == {}
    assert summary["warnings"] == ["dataset 'dy_empty' has no events"]
    with uproot.open(tmp_path / "out" / "hists" / "hists.root") as f:
        assert f.keys() == []  # no dataset filled, so no histogram slices
    hists = PairProcessor("ttbar_allhad", []).empty_output()["hists"]
    assert all(h.sum(flow=True).value == 0 for h in hists.values())


def test_nan_kinematics_are_dropped_and_counted(tmp_path):
    rng = np.random.default_rng(0)
    counts = np.full(40, 7)
    pt = rng.uniform(30, 200, counts.sum())
    pt[[3, 50, 51]] = np.nan  # events 0 and 7
    jets = {
        "pt": ak.unflatten(pt.astype(np.float32), counts),
        "eta": ak.unflatten(rng.uniform(-2, 2, counts.sum()).astype(np.float32), counts),
        "phi": ak.unflatten(rng.uniform(-3, 3, counts.sum()).astype(np.float32), counts),
        "mass": ak.unflatten(rng.uniform(5, 20, counts.sum()).astype(np.float32), counts),
        "btag": ak.unflatten(rng.random(counts.sum()) < 0.3, counts),
    }
    path = write_nanoaod(tmp_path / "nan.root", jets, 40)
    result = run({"nan": [str(path)]}, methods=("chi2_btag",), output_dir=tmp_path)
    flow = result.output["cutflow"]["nan"]["events"]
    assert flow == {"all events": 40, "finite jet kinematics": 38, ">= 6 jets": 38}
    table = ak.from_parquet(glob.glob(str(tmp_path / "events/nan/*.parquet"))[0])
    assert not table.selected[0] and not table.selected[7]
    assert np.all(np.isfinite(ak.to_numpy(table.chi2_btag_mavg[table.selected])))


def test_missing_branch_names_branch_and_file(tmp_path):
    jets = {k: ak.Array([[50.0] * 6]) for k in ("pt", "eta", "phi")}
    path = write_nanoaod(tmp_path / "no_mass.root", jets, 1)
    with pytest.raises(PairhuntError, match=r"no_mass\.root.*Jet_mass"):
        run({"broken": [str(path)]})


def test_missing_btag_branches_are_listed(tmp_path):
    jets = {k: ak.Array([[50.0] * 6]) for k in ("pt", "eta", "phi", "mass")}
    path = write_nanoaod(tmp_path / "no_btag.root", jets, 1)
    with pytest.raises(PairhuntError, match="Jet_btag, Jet_btagDeepFlavB, Jet_btagDeepB"):
        run({"broken": [str(path)]}, methods=("chi2_btag",))
    assert run({"fine": [str(path)]}, methods=("chi2",)).events == 1  # chi2 needs no b-tag


def test_corrupt_and_missing_files_are_skipped_and_reported(generated, tmp_path):
    corrupt = tmp_path / "corrupt.root"
    corrupt.write_bytes(b"root" + bytes(range(256)) * 40)
    missing = tmp_path / "missing.root"
    result = run({"ttbar": [str(generated["ttbar"]), str(corrupt), str(missing)]})
    assert set(result.report.skipped) == {str(corrupt), str(missing)}
    assert "FileNotFoundError" in result.report.skipped[str(missing)]
    assert result.output["cutflow"]["ttbar"]["events"]["all events"] == 400
    with pytest.raises(PairhuntError, match="corrupt.root"):
        run({"ttbar": [str(corrupt)]}, skipbadfiles=False)


def test_fileset_forms(tmp_path, generated):
    path = tmp_path / "fileset.json"
    path.write_text(json.dumps({"a": [str(generated["ttbar"])], "b": {"files": {str(generated["qcd"]): "Events"}}}))
    fileset = load_fileset(path)
    assert fileset["a"]["files"] == {str(generated["ttbar"]): "Events"}
    assert fileset["b"]["files"] == {str(generated["qcd"]): "Events"}
    path.write_text("[1, 2]")
    with pytest.raises(PairhuntError, match="must map dataset names"):
        load_fileset(path)


def test_run_command_writes_every_output(generated, tmp_path):
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({"ttbar": [str(generated["ttbar"])]}))
    out = tmp_path / "out"
    assert main(["run", str(fileset), "-o", str(out), "--method", "chi2", "--chunksize", "200", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["events"] == 400 and summary["events_per_s"] > 0
    assert {"read+select", "assign:chi2", "candidates:chi2", "fill:chi2"} <= set(summary["timing_s"])
    assert summary["cutflow"]["ttbar"]["events"]["all events"] == 400
    assert len(glob.glob(str(out / "events/ttbar/*.parquet"))) == 2
    with uproot.open(out / "hists" / "hists.root") as f:
        assert f["mass/ttbar/chi2/parent_0"].values().sum() > 0
    from coffea.util import load

    assert load(out / "hists" / "hists.coffea")["hists"]["m1_m2"].sum().value > 0


def test_methods_warm_up_once_per_process():
    class Counting:
        name = "counting"

        def __init__(self):
            self.calls = 0

        def warm_up(self):
            self.calls += 1

    method = Counting()
    assert warm_up_once([method]) > 0
    assert warm_up_once([method]) == 0.0 and method.calls == 1



def test_top_k_assignments_in_the_event_table(generated, tmp_path):
    k = 3
    processor = PairProcessor("ttbar_allhad", [make_method("spanet=ttbar_allhad", top_k=k)], output_dir=tmp_path)
    run_fileset({"ttbar": normalise_files([str(generated["ttbar"])])}, processor, progress=False)
    table = ak.concatenate([ak.from_parquet(p) for p in sorted(glob.glob(str(tmp_path / "events/ttbar/*.parquet")))])
    selected = ak.to_numpy(table.selected)
    scores = np.stack([ak.to_numpy(table[f"spanet_top{r}_score"]) for r in range(1, k + 1)], axis=1)[selected]
    assert np.isfinite(scores[:, 0]).all()
    assert np.all(np.diff(scores, axis=1)[np.isfinite(scores[:, 1:])] <= 0)  # best first
    assert np.all(scores[np.isfinite(scores)] <= 0)  # summed log-probabilities
    parents = [ak.to_list(table[f"spanet_top{r}_jet_parent"][selected]) for r in range(1, k + 1)]
    products = [ak.to_list(table[f"spanet_top{r}_jet_product"][selected]) for r in range(1, k + 1)]
    distinct_events = 0
    for event in range(min(300, len(scores))):
        ranked = set()
        for rank in range(k):
            if not np.isfinite(scores[event, rank]):
                continue
            tops = []
            for top in (0, 1):  # a top: its W jets (q1, q2 interchangeable) and its b jet
                slots = {p: j for j, (t, p) in enumerate(zip(parents[rank][event], products[rank][event])) if t == top}
                assert sorted(slots) == [0, 1, 2]
                tops.append((frozenset((slots[0], slots[1])), slots[2]))
            ranked.add(frozenset(tops))  # the two tops are interchangeable
        distinct_events += len(ranked) == np.isfinite(scores[event]).sum()
    assert distinct_events == min(300, len(scores))

"""Jet truth labels from NanoAOD ``GenPart``: real CMS ttbar files, generated files, train and evaluate."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot

from pairhunt.cli import main
from pairhunt.errors import PairhuntError
from pairhunt.gen_truth import GENPART, GENPART_FIELDS, gen_labels, label_branches
from pairhunt.topology import load_topology
from pairhunt.train.data import from_nanoaod

CMS = {
    "cms_2015": "nanoAOD_2015_CMS_Open_Data_ttbar.root",  # its GenPart holds W bosons, no top
    "cms_v12": "nano_tt_v12.root",  # semi-leptonic ttbar: one W to leptons in every event
    "cms_v15": "nano_tt_v15.root",  # all-hadronic ttbar
}
TOP_MASS, W_MASS = 172.5, 80.4


def read_labels_and_jets(path, topology):
    """Labels built from the file's GenPart, and its jets' four-momenta."""
    with uproot.open(path) as f:
        arrays = f["Events"].arrays([f"{GENPART}_{x}" for x in GENPART_FIELDS] + ["Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass"])
    genpart = ak.zip({x: arrays[f"{GENPART}_{x}"] for x in GENPART_FIELDS})
    jets = ak.zip({x: arrays[f"Jet_{x}"] for x in ("pt", "eta", "phi", "mass")})
    parent, product = gen_labels(genpart, jets, topology)
    return parent, product, jets


def invariant_mass(jets) -> np.ndarray:
    """Mass of the sum of ``[events, n]`` jets (awkward records pt, eta, phi, mass)."""
    pt, eta, phi, mass = (ak.to_numpy(jets[x]).astype(np.float64) for x in ("pt", "eta", "phi", "mass"))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    return np.sqrt(np.maximum(e.sum(1) ** 2 - px.sum(1) ** 2 - py.sum(1) ** 2 - pz.sum(1) ** 2, 0.0))


def test_cms_all_hadronic_triplets_peak_at_the_top_mass(shared_nanoaod):
    topology = load_topology("ttbar_allhad")
    parent, product, jets = read_labels_and_jets(shared_nanoaod / CMS["cms_v15"], topology)
    full = ak.to_numpy(ak.sum(parent >= 0, axis=1)) == topology.n_assigned
    assert full.sum() >= 30  # 46 of the 200 events
    for p in range(topology.n_parents):
        mine = parent[full] == p
        triplet = jets[full][mine][ak.argsort(product[full][mine], axis=1)]  # slots q1, q2, b
        assert ak.all(ak.num(triplet) == 3)
        assert 140.0 < np.median(invariant_mass(triplet)) < 200.0
        assert 60.0 < np.median(invariant_mass(triplet[:, :2])) < 100.0
    used = ak.to_numpy(ak.flatten(parent[parent >= 0] * 10 + product[parent >= 0]))
    event = np.repeat(np.arange(len(parent)), ak.to_numpy(ak.sum(parent >= 0, axis=1)))
    assert len(np.unique(np.stack([event, used]), axis=1).T) == len(used)  # each (parent, slot) once


@pytest.mark.parametrize("name", ["cms_v12", "cms_2015"])
def test_cms_events_that_are_not_all_hadronic_ttbar_have_no_labels(shared_nanoaod, name):
    parent, product, _ = read_labels_and_jets(shared_nanoaod / CMS[name], load_topology("ttbar_allhad"))
    assert len(parent) == 200 and ak.all(parent == -1) and ak.all(product == -1)


@pytest.mark.parametrize(("sample", "topology"), [("ttbar", "ttbar_allhad"), ("gluino", "pair_3body"), ("qcd", "pair_3body")])
def test_genpart_labels_reproduce_the_generator(generated, sample, topology):
    """Generated files carry GenPart (parents, W, quarks): labels from it equal the stored ones."""
    topology = load_topology(topology)
    with uproot.open(generated[sample]) as f:
        stored = f["Events"].arrays(list(label_branches(topology)))
    parent, product, _ = read_labels_and_jets(generated[sample], topology)
    assert ak.to_list(parent) == ak.to_list(stored[label_branches(topology)[0]])
    assert ak.to_list(product) == ak.to_list(stored[label_branches(topology)[1]])
    if sample != "qcd":
        assert ak.sum(parent >= 0) > 0.5 * len(parent) * topology.n_assigned


def test_training_data_from_cms_genpart(shared_nanoaod, tmp_path):
    topology = load_topology("ttbar_allhad")
    data = from_nanoaod([shared_nanoaod / CMS["cms_v15"]], topology)
    assert len(data) > 50 and (data.targets >= 0).all(axis=(1, 2)).sum() > 10
    assert (data.targets < topology.jets.selection.keep).all()
    with pytest.raises(PairhuntError, match=r"supervised training needs Jet_truthParent.* \(pairhunt generate\) or GenPart_pdgId"):
        from_nanoaod([shared_nanoaod / "nano_dimuon.root"], topology)


def test_run_and_evaluate_on_cms_files(shared_nanoaod, tmp_path, capsys):
    files = {name: [str(shared_nanoaod / filename)] for name, filename in CMS.items()}
    files["data"] = [str(shared_nanoaod / "nano_dimuon.root")]  # collision data: no GenPart, skipped
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps(files))
    out = tmp_path / "run"
    methods = ["--method", "chi2", "--method", "chi2_btag", "--method", "spanet=ttbar_allhad"]
    assert main(["run", str(fileset), "-o", str(out), *methods, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), str(fileset)]) == 0
    assert "### cms_v15" in capsys.readouterr().out
    report = json.loads((out / "evaluation.json").read_text())
    assert report["skipped_datasets"] == ["data"]
    v15 = report["datasets"]["cms_v15"]
    assert v15["join"]["selected"] == v15["evaluated_events"] > 50
    for method in ("chi2", "chi2_btag", "spanet"):
        complete = v15["methods"][method]["inclusive"]["complete"]
        assert complete["events"] > 10
        assert 0.0 <= complete["event_efficiency"] <= 1.0 and 0.0 < complete["parent_efficiency"] <= 1.0
    for name in ("cms_v12", "cms_2015"):  # no all-hadronic decay: nothing complete
        assert report["datasets"][name]["methods"]["chi2"]["inclusive"]["complete"]["events"] == 0
    with pytest.raises(SystemExit):
        main(["evaluate", str(out), str(fileset), "--dataset", "data"])
    error = capsys.readouterr().err
    assert "has no truth branches" in error and "Jet_truthParent" in error and "GenPart_pdgId" in error

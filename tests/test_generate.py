"""pairhunt generate: NanoAOD-compatible files, physical truth, reproducibility, clear errors."""

from __future__ import annotations

import json
import warnings

import awkward as ak
import numpy as np
import pytest
import uproot

from pairhunt.cli import main
from pairhunt.errors import PairhuntError
from pairhunt.generate import Request, generate, make_sample
from pairhunt.generate.truth import match_exclusive


def open_nanoaod(path):
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing cross-references (Jet_genJetIdx, ...)
        return NanoEventsFactory.from_root({str(path): "Events"}, schemaclass=NanoAODSchema, mode="eager").events()


def truth_mass(jets, parent: int, slots: tuple[int, ...]) -> np.ndarray:
    """Mass of the jets matched to ``slots`` of ``parent``, in events where all of them are matched."""
    chosen = jets[jets.truthParent == parent]
    in_slots = sum(chosen.truthProduct == slot for slot in slots) > 0
    chosen = chosen[in_slots]
    return ak.to_numpy(chosen[ak.num(chosen) == len(slots)].sum().mass)


@pytest.mark.parametrize("name", ["ttbar", "ttbar-semileptonic", "gluino", "gluino-cascade", "stop", "qcd"])
def test_opens_with_nanoaod_schema(generated, name):
    events = open_nanoaod(generated[name])
    assert len(events) > 0
    assert set(events.fields) >= {"Jet", "GenPart", "MET", "genWeight", "run", "luminosityBlock", "event"}
    assert ak.all(events.Jet.pt > 25) and ak.all(abs(events.Jet.eta) < 2.5)
    assert ak.all(events.Jet.pt[:, :-1] >= events.Jet.pt[:, 1:])  # pT ordered
    # the parent of a decay quark is a hard-process particle with a PDG id of the decay chain
    parents = events.GenPart.parent
    roots = ak.is_none(parents, axis=1)
    assert ak.all(ak.sum(roots, axis=1) == 2)
    if name != "qcd":
        assert set(np.unique(ak.to_numpy(ak.flatten(abs(parents.pdgId[~roots]))))) <= {6, 24, 1000006, 1000021, 1000022}
    with uproot.open(generated[name]) as f:
        assert f["Events"].classname == "TTree"
        assert {"nJet", "nGenPart", "Jet_truthParent", "Jet_truthProduct"} <= set(f["Events"].keys())


@pytest.mark.parametrize(
    ("name", "slots", "low", "high"),
    [
        ("ttbar", (0, 1, 2), 140.0, 190.0),  # top, 172.5
        ("ttbar", (0, 1), 65.0, 95.0),  # W, 80.4
        ("gluino", (0, 1, 2), 880.0, 1050.0),  # 1000
        ("gluino-cascade", (0, 1, 2, 3, 4), 1350.0, 1560.0),  # 1500
        ("gluino-cascade", (2, 3, 4), 430.0, 530.0),  # neutralino, 500
        ("stop", (0, 1), 880.0, 1050.0),  # 1000, two quarks
    ],
)
def test_truth_matched_jets_peak_at_the_mass(generated, name, slots, low, high):
    jets = open_nanoaod(generated[name]).Jet
    masses = np.concatenate([truth_mass(jets, parent, slots) for parent in (0, 1)])
    assert len(masses) >= 30
    assert low < np.median(masses) < high


@pytest.mark.parametrize("name", ["ttbar", "ttbar-semileptonic", "gluino", "gluino-cascade", "stop"])
def test_truth_labels_are_exclusive(generated, name):
    jets = open_nanoaod(generated[name]).Jet
    n_products = np.array(make_sample(name).products_per_parent)
    labelled = jets[jets.truthParent >= 0]
    parent = ak.to_numpy(ak.flatten(labelled.truthParent))
    assert ak.all(labelled.truthProduct >= 0) and np.all(ak.to_numpy(ak.flatten(labelled.truthProduct)) < n_products[parent])
    assert ak.all(jets.truthProduct[jets.truthParent < 0] == -1)
    key = ak.to_numpy(ak.flatten(labelled.truthParent * 10 + labelled.truthProduct))
    event = np.repeat(np.arange(len(labelled)), ak.to_numpy(ak.num(labelled)))
    assert len(np.unique(event * 100 + key)) == len(key)  # each quark matched to one jet at most


def test_semileptonic_ttbar_has_isolated_leptons_with_truth(generated):
    """t -> b q q' and tbar -> b l nu: one isolated lepton (outside the jets), labelled as product
    ``l`` (slot 1) of parent 1; the hadronic top peaks at its mass, m(b l) stays below its endpoint
    sqrt(mt^2 - mW^2) = 153 GeV, and the neutrino is in the MET."""
    events = open_nanoaod(generated["ttbar-semileptonic"])
    leptons = ak.concatenate([events.Electron, events.Muon], axis=1)
    assert np.mean(ak.num(leptons) == 1) > 0.6
    matched = leptons[leptons.truthParent >= 0]
    assert np.mean(ak.num(matched) == 1) > 0.6 and ak.all(ak.num(matched) <= 1)
    assert ak.all(matched.truthParent == 1) and ak.all(matched.truthProduct == 1) and ak.all(matched.charge == -1)
    assert np.median(truth_mass(events.Jet, 0, (0, 1, 2))) == pytest.approx(172.5, abs=20)

    b = events.Jet[(events.Jet.truthParent == 1) & (events.Jet.truthProduct == 0)]
    both = (ak.num(b) == 1) & (ak.num(matched) == 1)
    jet, lepton = b[both][:, 0], matched[both][:, 0]
    m_bl = np.sqrt(2 * jet.pt * lepton.pt * (np.cosh(jet.eta - lepton.eta) - np.cos(jet.phi - lepton.phi)))
    assert len(m_bl) > 50 and np.quantile(ak.to_numpy(m_bl), 0.95) < 165  # masses neglected: a lower bound
    d_phi = (events.Jet[both].phi - lepton.phi + np.pi) % (2 * np.pi) - np.pi
    nearest = ak.min(np.hypot(events.Jet[both].eta - lepton.eta, d_phi), axis=1)
    assert np.mean(ak.to_numpy(nearest) > 0.2) > 0.9  # the lepton is not inside a jet
    assert np.median(ak.to_numpy(events.MET.pt)) > 30


def test_qcd_events_are_weighted(generated):
    events = open_nanoaod(generated["qcd"])
    weights = ak.to_numpy(events.genWeight)
    assert np.all(weights > 0) and weights.std() > 0
    assert ak.all(events.Jet.truthParent == -1)


def test_summary_is_written(generated):
    summary = json.loads(generated["gluino"].with_suffix(".summary.json").read_text())
    assert summary["events"] == 200
    assert 0 < summary["cross_section_pb"] < 10  # 1 TeV gluino pairs: ~0.2 pb at LO
    assert 0.5 < summary["matched_quark_fraction"] <= 1


def _columns(path):
    with uproot.open(path) as f:
        return f["Events"].arrays(library="np")


def test_same_seed_same_file_whatever_the_workers(tmp_path):
    request = Request(make_sample("ttbar"), 60, seed=5, block_size=30)
    generate(request, tmp_path / "a.root", progress=False)
    generate(request, tmp_path / "b.root", workers=2, progress=False)
    generate(Request(make_sample("ttbar"), 60, seed=6, block_size=30), tmp_path / "c.root", progress=False)
    a, b, c = (_columns(tmp_path / f"{x}.root") for x in "abc")
    for branch in ("Jet_pt", "Jet_truthParent", "GenPart_pt", "MET_pt"):
        assert all(np.array_equal(x, y) for x, y in zip(a[branch], b[branch]))
    assert not all(np.array_equal(x, y) for x, y in zip(a["Jet_pt"], c["Jet_pt"]))
    assert np.array_equal(a["event"], np.arange(1, 61))


def test_exclusive_matching_takes_the_closest_pairs():
    quark_eta = np.array([[0.0, 0.1]])
    quark_phi = np.zeros((1, 2))
    jet_eta = np.array([[0.05, 0.12, 3.0]])
    jet_phi = np.zeros((1, 3))
    # quark 1 is closest to jet 1 (0.02); quark 0 then takes jet 0; jet 2 is too far
    assert match_exclusive(quark_eta, quark_phi, jet_eta, jet_phi).tolist() == [[0, 1]]
    far = match_exclusive(np.array([[1.0]]), np.zeros((1, 1)), np.array([[0.0]]), np.zeros((1, 1)))
    assert far.tolist() == [[-1]]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "squark", "-o", "x.root"], "invalid choice"),
        (["generate", "stop", "--mass", "0", "-o", "x.root"], "--mass must be positive"),
        (["generate", "ttbar", "-n", "-5", "-o", "x.root"], "number of events must be positive"),
        (["generate", "gluino-cascade", "--mass", "800", "--mchi", "900", "-o", "x.root"], "mchi"),
        (["generate", "gluino", "--mass", "-1", "-o", "x.root"], "--mass must be positive"),
        (["generate", "ttbar", "--workers", "0", "-o", "x.root"], "--workers"),
    ],
)
def test_bad_arguments_give_a_clear_error(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.root").exists()


def test_library_errors_are_pairhunt_errors():
    with pytest.raises(PairhuntError, match="unknown sample"):
        make_sample("squark")
    with pytest.raises(PairhuntError, match="mchi"):
        make_sample("gluino-cascade", mass=1000, mchi=1000)


def test_pythia_failure_is_one_line_and_leaves_no_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "gluino", "--mass", "20000", "-n", "10", "-o", str(tmp_path / "g.root"), "--no-progress"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        "pairhunt generate: error: Pythia failed to initialise sample 'gluino' (mass 20000): "
        "are these values possible at 13 TeV?"
    )
    assert list(tmp_path.iterdir()) == []  # no partial ROOT file, no hidden temporary one

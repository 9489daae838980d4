"""Semi-leptonic ttbar end to end: jets, electrons and muons merged into one object sequence (the
``ttbar_semilep`` topology), MET as an event-level input: generate -> train -> export -> run ->
evaluate, and clear errors when a file lacks an input."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot

from pairhunt.assign.registry import make_method
from pairhunt.cli import main
from pairhunt.cutflow import Cutflow
from pairhunt.errors import PairhuntError
from pairhunt.inputs import merged_objects, select_jets
from pairhunt.ml import OnnxWrapper
from pairhunt.processors import PairProcessor
from pairhunt.runner import normalise_files, run_fileset
from pairhunt.topology import load_topology, topology_from_dict

torch = pytest.importorskip("torch", reason="needs the 'train' extra")

from pairhunt.train.data import from_nanoaod  # noqa: E402
from pairhunt.train.export import export_run  # noqa: E402
from pairhunt.train.config import ModelConfig  # noqa: E402
from pairhunt.train.trainer import Trainer, TrainConfig  # noqa: E402

TOPOLOGY = load_topology("ttbar_semilep")
SMALL = ModelConfig(dim=32, heads=2, encoder_layers=1, branch_layers=1, tensor_dim=16)


@pytest.fixture(scope="module")
def sample(generated):
    return generated["ttbar-semileptonic"]


@pytest.fixture(scope="module")
def model(sample, tmp_path_factory):
    directory = tmp_path_factory.mktemp("semilep")
    Trainer(TOPOLOGY, from_nanoaod([sample], TOPOLOGY), directory, SMALL, TrainConfig(epochs=2, batch_size=64, seed=2)).fit(progress=False)
    export_run(directory, directory / "semilep.onnx")
    return directory / "semilep.onnx"


def test_the_topology_round_trips_and_merges_jets_before_leptons(sample):
    assert topology_from_dict(TOPOLOGY.to_dict()) == TOPOLOGY
    assert TOPOLOGY.jets.source_collections == ("Jet", "Electron", "Muon")
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    nano = NanoEventsFactory.from_root({str(sample): "Events"}, schemaclass=NanoAODSchema, mode="eager").events()
    objects = merged_objects(nano, TOPOLOGY.jets, "semilep")
    n_jet, n_electron = ak.num(nano.Jet), ak.num(nano.Electron)
    assert ak.all(ak.num(objects) == n_jet + n_electron + ak.num(nano.Muon))
    # jets first, in file order, then electrons, then muons; the type features say which is which
    assert ak.all(objects.pt[objects.source == 0] == ak.values_astype(nano.Jet.pt, np.float64))
    assert ak.all(objects.source[:, 1:] >= objects.source[:, :-1])
    electrons = objects[objects.source == 1]
    assert ak.all(electrons.is_electron == 1) and ak.all(electrons.btag == 0) and ak.all(ak.num(electrons) == n_electron)
    assert ak.all(objects[objects.source == 0].is_muon == 0)


def test_training_targets_put_the_lepton_slot_on_a_lepton(sample):
    data = from_nanoaod([sample], TOPOLOGY)
    names = [f.name for f in TOPOLOGY.jets.features]
    is_lepton = data.features[..., names.index("is_electron")] + data.features[..., names.index("is_muon")]
    rows = np.arange(len(data))
    lepton_target = data.targets[:, 1, 1]  # parent t2, product l
    labelled = lepton_target >= 0
    assert labelled.mean() > 0.6
    assert np.all(is_lepton[rows[labelled], lepton_target[labelled]] == 1)
    quark_targets = data.targets[:, 0, :][data.targets[:, 0, :] >= 0]
    assert len(quark_targets) > 0
    assert np.all(data.targets[:, 1, 2] == -1)  # t2 has two products: no third slot
    assert np.all(np.sum(is_lepton, axis=1) == 1)  # exactly one lepton per selected event


def test_train_export_run_and_evaluate_from_electron_muon_and_met(sample, model, tmp_path):
    method = make_method(f"spanet={model}")
    assert method.contract.global_features == ["log_met", "met_sin_phi", "met_cos_phi"]
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({"semilep": [str(sample)]}))
    run = tmp_path / "run"
    assert main(["run", str(fileset), "-o", str(run), "--topology", "ttbar_semilep", "--method", f"spanet={model}", "--no-progress"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    cutflow = summary["cutflow"]["semilep"]["events"]
    assert list(cutflow) == ["all events", "finite jet kinematics", ">= 4 jets", ">= 1 leptons", "<= 1 leptons", ">= 5 objects"]
    assert 0 < cutflow[">= 5 objects"] < cutflow["all events"]

    table = ak.concatenate([ak.from_parquet(p) for p in sorted((run / "events" / "semilep").glob("*.parquet"))])
    counts = uproot.open(sample)["Events"].arrays(["nJet", "nElectron", "nMuon"])
    assert ak.all(ak.num(table.spanet_jet_parent) == counts.nJet + counts.nElectron + counts.nMuon)
    selected = table[table.selected]
    assert ak.all(ak.sum(selected.spanet_jet_parent == 0, axis=1) == 3) and ak.all(ak.sum(selected.spanet_jet_parent == 1, axis=1) == 2)
    assert np.all(np.isfinite(ak.to_numpy(selected.spanet_mass)))

    assert main(["evaluate", str(run), str(fileset)]) == 0
    report = json.loads((run / "evaluation.json").read_text())["datasets"]["semilep"]
    assert report["evaluated_events"] == cutflow[">= 5 objects"]
    assert 0 <= report["methods"]["spanet"]["inclusive"]["all"]["parent_efficiency"] <= 1


def test_a_file_without_the_models_inputs_is_one_line_naming_them(generated, model):
    """The all-hadronic sample has no Electron or Muon branches; a processor topology without
    leptons does not fit the model."""
    processor = PairProcessor(TOPOLOGY, [make_method(f"spanet={model}")])
    with pytest.raises(PairhuntError, match=r"ttbar\.root: missing branch\(es\) Electron_pt, Electron_eta, Electron_phi, Electron_mass"):
        run_fileset({"allhad": normalise_files([str(generated["ttbar"])])}, processor, progress=False)
    jets_only = TOPOLOGY.to_dict()
    jets_only["inputs"]["Objects"]["sources"] = {"jets": {"collections": ["Jet"], "pt_min": 25.0}}
    with pytest.raises(PairhuntError, match=r"reads its objects from \['Jet', 'Electron', 'Muon'\] but topology 'ttbar_semilep' from \['Jet'\]"):
        make_method(f"spanet={model}").required_features(topology_from_dict(jets_only))



def test_partial_events_for_training_lower_each_source_minimum(sample):
    """``--min-jets 3``: events with three jets and the lepton teach the model their complete parents."""
    full, partial = from_nanoaod([sample], TOPOLOGY), from_nanoaod([sample], TOPOLOGY, min_jets=3)
    assert len(partial) > len(full)
    assert partial.multiplicity.min() == 4  # three jets and the lepton
    assert TOPOLOGY.with_selection(min_count=3).jets.sources[1].selection.min_count == 1  # exactly one lepton still


def test_the_wrapper_takes_the_events_for_a_merged_model(sample, model):
    """coffea users call ``OnnxWrapper(model)(events)``: the processor's outputs on the events it
    selects, eager and lazy alike."""
    import dask
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    from pairhunt.inputs import event_level_features

    events = NanoEventsFactory.from_root({str(sample): "Events"}, schemaclass=NanoAODSchema, mode="eager").events()
    wrapper = OnnxWrapper(model)
    outputs = wrapper(events)  # objects from Jet, Electron and Muon, MET from the events
    method = make_method(f"spanet={model}")
    jets, selected = select_jets(events, TOPOLOGY.jets, Cutflow(np.ones(len(events))), method.contract.features)
    jets.globals = event_level_features(events, TOPOLOGY.inputs, selected, "semilep")
    for name, expected in method.outputs(jets).items():
        np.testing.assert_allclose(ak.to_numpy(outputs[name])[selected], expected, atol=1e-5, err_msg=name)
    lazy = NanoEventsFactory.from_root({str(sample): {"object_path": "Events", "steps": [[0, 150], [150, len(events)]]}}, schemaclass=NanoAODSchema, mode="dask").events()
    (computed,) = dask.compute(wrapper(lazy))
    for name in outputs:
        np.testing.assert_array_equal(ak.to_numpy(computed[name]), ak.to_numpy(outputs[name]), err_msg=name)


def test_selection_counts_each_source(sample):
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    nano = NanoEventsFactory.from_root({str(sample): "Events"}, schemaclass=NanoAODSchema, mode="eager").events()
    cutflow = Cutflow(np.ones(len(nano)))
    jets, selected = select_jets(nano, TOPOLOGY.jets, cutflow, [])
    good_jets = ak.sum((nano.Jet.pt > 25) & (abs(nano.Jet.eta) < 2.5), axis=1)
    leptons = sum(ak.sum((c.pt > 25) & (abs(c.eta) < 2.4), axis=1) for c in (nano.Electron, nano.Muon))
    np.testing.assert_array_equal(selected, ak.to_numpy((good_jets >= 4) & (leptons == 1)))
    assert np.all(jets.counts == ak.to_numpy(good_jets + leptons)[selected].clip(max=10))

"""k-fold SPA-NET models routed by event number, and the per-parent detection outputs: a small
two-fold model trained and exported through the command line, then run by the processor."""

from __future__ import annotations

import dataclasses

import glob
import json
import shutil

import awkward as ak
import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch", reason="needs the 'train' extra")

from coffea.nanoevents import NanoAODSchema, NanoEventsFactory  # noqa: E402
from coffea.util import load  # noqa: E402

from pairhunt.cli import main  # noqa: E402
from pairhunt.contract import (  # noqa: E402
    JETS_INPUT,
    MASK_INPUT,
    METADATA_KEY,
    FoldRule,
    ModelContract,
    detection_output,
)
from pairhunt.cutflow import Cutflow  # noqa: E402
from pairhunt.errors import PairhuntError  # noqa: E402
from pairhunt.generate.nanoaod import NanoAODWriter  # noqa: E402
from pairhunt.inputs import select_jets  # noqa: E402
from pairhunt.assign.registry import make_method  # noqa: E402
from pairhunt.model_set import load_model_set  # noqa: E402
from pairhunt.assign.onnx import CPU, create_session  # noqa: E402
from pairhunt.topology import load_topology  # noqa: E402
from pairhunt.train.data import from_nanoaod, from_spanet_h5  # noqa: E402
from pairhunt.train.export import export_run  # noqa: E402
from pairhunt.train.trainer import Trainer, TrainConfig, load_run  # noqa: E402

PARENTS = ("t1", "t2")
TINY = ["--dim", "32", "--encoder-layers", "1", "--tensor-dim", "16", "--batch-size", "64"]


@pytest.fixture(scope="module")
def folds(generated, tmp_path_factory):
    """`pairhunt train spanet --folds 2` (two epochs) and `pairhunt export` of the generated ttbar."""
    directory = tmp_path_factory.mktemp("folds")
    run_dir, model_set = directory / "run", directory / "set"
    train = ["train", "spanet", "--topology", "ttbar_allhad", "--data", str(generated["ttbar"]), "-o", str(run_dir)]
    assert main(train + ["--folds", "2", "--epochs", "2", "--detection-weight", "1.0", "--no-progress"] + TINY) == 0
    assert main(["export", str(run_dir), "-o", str(model_set)]) == 0
    return run_dir, model_set


def run_cli(tmp_path, files: dict, *options: str) -> tuple[dict, ak.Array]:
    """A `pairhunt run`: its accumulator and its per-event table in event order."""
    tmp_path.mkdir()
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps(files))
    out = tmp_path / "out"
    assert main(["run", str(fileset), "-o", str(out), "--no-progress", *options]) == 0
    table = ak.concatenate([ak.from_parquet(p) for p in sorted(glob.glob(str(out / "events/*/*.parquet")))])
    return load(out / "hists" / "hists.coffea"), table[np.argsort(ak.to_numpy(table.event))]


@pytest.fixture(scope="module")
def detection_cut_run(folds, generated, tmp_path_factory):
    """The fold models and chi2 on the generated ttbar, with a detection cut at the median of all probabilities."""
    _, model_set = folds
    directory = tmp_path_factory.mktemp("detection_run")
    files = {"ttbar": [str(generated["ttbar"])]}
    _, table = run_cli(directory / "probe", files, "--method", f"spanet={model_set}")
    cut = float(np.median([ak.to_numpy(table[f"spanet_{detection_output(p)}"][table.selected]) for p in PARENTS]))
    output, table = run_cli(directory / "cut", files, "--method", f"spanet={model_set}", "--method", "chi2", "--detection-cut", f"{cut}")
    return cut, output, table


def selected_jets(path):
    """The processor's selection and features of a file, with the event numbers."""
    events = NanoEventsFactory.from_root({str(path): "Events"}, schemaclass=NanoAODSchema, mode="eager").events()
    topology = load_topology("ttbar_allhad")
    features = [f.name for f in topology.jets.features]
    jets, _ = select_jets(events, topology.jets, Cutflow(np.ones(len(events))), features)
    return jets, jets.feature_matrix(features)


def test_each_fold_trains_only_on_the_events_it_does_not_score(folds, generated):
    run_dir, model_set = folds
    event = from_nanoaod([generated["ttbar"]], load_topology("ttbar_allhad")).event
    members = load_model_set(model_set).members
    for fold in (0, 1):
        meta = json.loads((run_dir / f"fold_{fold}" / "config.json").read_text())
        assert sum(meta["events"].values()) == np.count_nonzero(event % 2 != fold)
        contract = ModelContract.from_json(ort.InferenceSession(str(members[fold])).get_modelmeta().custom_metadata_map[METADATA_KEY])
        assert contract.fold_rule == FoldRule(folds=2, fold=fold)


def test_each_event_is_scored_by_the_model_that_did_not_train_on_it_bitwise(folds, detection_cut_run, generated):
    _, model_set = folds
    _, _, table = detection_cut_run
    jets, features = selected_jets(generated["ttbar"])
    selected = table[table.selected]
    np.testing.assert_array_equal(ak.to_numpy(selected.event), jets.event)
    sessions = [create_session(path, threads=1, device="cpu") for path in load_model_set(model_set).members]
    names = [detection_output(p) for p in PARENTS]
    written = np.stack([ak.to_numpy(selected[f"spanet_{n}"]) for n in names], axis=1)

    def direct(session, rows):
        return np.stack(session.run(names, {JETS_INPUT: features[rows], MASK_INPUT: jets.mask[rows]}), axis=1)

    for fold in (0, 1):
        rows = np.flatnonzero(jets.event % 2 == fold)  # one chunk: the processor's batch of this fold
        assert len(rows) > 20
        np.testing.assert_array_equal(written[rows], direct(sessions[fold], rows))  # bitwise
        assert not (written[rows] == direct(sessions[1 - fold], rows)).all(axis=1).any()
        for row in rows[:10]:  # event by event (a batch of one differs from a larger batch in the last bit)
            np.testing.assert_allclose(written[row], direct(sessions[fold], [row])[0], rtol=1e-6)
            assert np.abs(written[row] - direct(sessions[1 - fold], [row])[0]).max() > 1e-5


def test_detection_probabilities_are_written_per_event(detection_cut_run):
    _, _, table = detection_cut_run
    for parent in PARENTS:
        column = ak.to_numpy(table[f"spanet_{detection_output(parent)}"])
        selected = ak.to_numpy(table.selected)
        assert np.all((column[selected] >= 0) & (column[selected] <= 1))
        assert np.all(np.isnan(column[~selected]))
        assert len(np.unique(column[selected])) > 10
    assert f"chi2_{detection_output('t1')}" not in table.fields


def test_detection_cut_fills_only_candidates_above_it_and_counts_them(detection_cut_run):
    cut, output, table = detection_cut_run
    flow = output["cutflow"]["ttbar"]
    assert flow["sumw"] == {step: float(n) for step, n in flow["events"].items()}  # unit weights: counts = sums
    selected = table[table.selected]
    passing = np.stack([ak.to_numpy(selected[f"spanet_{detection_output(p)}"]) > cut for p in PARENTS], axis=1)
    mass = {m: ak.to_numpy(selected[f"{m}_mass"]) for m in ("spanet", "chi2")}
    hists = output["hists"]
    for p, parent in enumerate(PARENTS):
        assert flow["events"][f"spanet: {detection_output(parent)} > {cut:g}"] == passing[:, p].sum()
        filled = hists["mass"][{"dataset": "ttbar", "method": "spanet", "parent": p}].sum(flow=True).value
        assert filled == np.count_nonzero(np.isfinite(mass["spanet"][:, p]) & passing[:, p])
        chi2 = hists["mass"][{"dataset": "ttbar", "method": "chi2", "parent": p}].sum(flow=True).value
        assert chi2 == np.count_nonzero(np.isfinite(mass["chi2"][:, p]))  # other methods keep theirs
    assert passing.sum() < passing.size  # the cut removed candidates
    every = passing.all(axis=1)
    assert flow["events"][f"spanet: every detection > {cut:g}"] == every.sum()
    average = hists["mass_average"][{"dataset": "ttbar", "method": "spanet"}].sum(flow=True).value
    assert average == np.count_nonzero(np.isfinite(mass["spanet"]).all(axis=1) & every)
    assert flow["events"][">= 6 jets"] == len(selected)  # the selection is untouched


def _without_outputs(dropped: set[str], path) -> None:
    """The shipped ttbar model with ``dropped`` outputs removed from its graph and its contract, at ``path``."""
    import onnx

    from pairhunt.contract import METADATA_KEY, ModelContract
    from pairhunt.assign.onnx import resolve_model_path

    model = onnx.load(str(resolve_model_path("ttbar_allhad")))
    kept = [o for o in model.graph.output if o.name not in dropped]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    entry = next(p for p in model.metadata_props if p.key == METADATA_KEY)
    contract = ModelContract.from_json(entry.value)
    entry.value = dataclasses.replace(contract, outputs=[o for o in contract.outputs if o not in dropped]).to_json()
    onnx.save(model, str(path))


def test_detection_cut_needs_a_model_with_detection_outputs(generated, tmp_path, capsys):
    from pairhunt.contract import DETECTION_LOGITS, detection_output
    from pairhunt.assign.onnx import resolve_model_path

    topology = load_topology("ttbar_allhad")
    per_parent = {detection_output(p) for p in topology.parents}
    jets = from_nanoaod([generated["ttbar"]], topology)
    feeds = {"jets": jets.features[:50].astype(np.float32), "mask": jets.mask[:50]}
    # the shipped model has per-parent probabilities: the sigmoid of the logits its loss trained
    shipped = make_method("spanet=ttbar_allhad", detection_cut=0.5)
    names = shipped.contract.outputs
    session = ort.InferenceSession(str(resolve_model_path("ttbar_allhad")), providers=[CPU])
    raw = dict(zip(names, session.run(names, feeds)))
    probabilities = shipped.detection(raw, topology)
    sigmoid = 1 / (1 + np.exp(-raw[DETECTION_LOGITS].astype(np.float64)))
    np.testing.assert_allclose(probabilities, sigmoid, rtol=1e-5)  # the graph's float32 sigmoid against float64
    assert ((probabilities > 0) & (probabilities < 1)).all()
    # a model exported before the per-parent outputs: the sigmoid of its logits
    _without_outputs(per_parent, tmp_path / "logits_only.onnx")
    logits_only = make_method(f"spanet={tmp_path / 'logits_only.onnx'}", detection_cut=0.5)
    assert logits_only.contract.has_detection and not per_parent & set(logits_only.contract.outputs)
    names = logits_only.contract.outputs
    session = ort.InferenceSession(str(tmp_path / "logits_only.onnx"), providers=[CPU])
    raw = dict(zip(names, session.run(names, feeds)))
    np.testing.assert_allclose(logits_only.detection(raw, topology), sigmoid, rtol=1e-6)
    # no detection output at all: the cut is refused in one line
    _without_outputs(per_parent | {DETECTION_LOGITS}, tmp_path / "no_detection.onnx")
    with pytest.raises(PairhuntError, match="no detection outputs"):
        make_method(f"spanet={tmp_path / 'no_detection.onnx'}", detection_cut=0.5)
    with pytest.raises(PairhuntError, match=r"in \[0, 1\)"):
        make_method("spanet=ttbar_allhad", detection_cut=1.5)
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({"ttbar": [str(generated["ttbar"])]}))
    with pytest.raises(SystemExit) as stopped:
        main(["run", str(fileset), "-o", str(tmp_path / "out"), "--method", "chi2", "--detection-cut", "0.5"])
    assert stopped.value.code == 2
    assert "needs a SPA-NET model method" in capsys.readouterr().err


def test_export_parity_of_every_output(folds, generated):
    run_dir, model_set = folds
    data = from_nanoaod([generated["ttbar"]], load_topology("ttbar_allhad"))
    jets, mask = data.features[:64].astype(np.float32), data.mask[:64]
    for fold, path in enumerate(load_model_set(model_set).members):
        model, _, _ = load_run(run_dir / f"fold_{fold}")
        session = ort.InferenceSession(str(path), providers=[CPU])
        names = [o.name for o in session.get_outputs()]
        assert {detection_output(p) for p in PARENTS} <= set(names)
        with torch.no_grad():
            expected = model(torch.as_tensor(jets), torch.as_tensor(mask))
        for name, value in zip(names, session.run(names, {JETS_INPUT: jets, MASK_INPUT: mask})):
            np.testing.assert_allclose(value, expected[name].numpy(), rtol=1e-5, atol=1e-5, err_msg=f"fold {fold} {name}")


def rewrite_contract(path, **changes):
    import onnx

    proto = onnx.load(str(path))
    contract = json.loads(proto.metadata_props[0].value)
    contract.update(changes)
    onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(contract)})
    onnx.save(proto, str(path))


def test_model_sets_that_are_not_every_fold_of_one_model_are_refused(folds, tmp_path):
    run_dir, model_set = folds
    with pytest.raises(PairhuntError, match="is fold 0 of a 2-fold model set"):
        load_model_set(model_set / "fold_0.onnx")
    missing = tmp_path / "missing"
    missing.mkdir()
    shutil.copy(model_set / "fold_0.onnx", missing)
    with pytest.raises(PairhuntError, match="fold 1 of 2 is missing"):
        make_method(f"spanet={missing}")
    twice = shutil.copytree(model_set, tmp_path / "twice")
    shutil.copy(model_set / "fold_0.onnx", twice / "again.onnx")
    with pytest.raises(PairhuntError, match="fold 0 appears in again.onnx, fold_0.onnx"):
        load_model_set(twice)
    other = shutil.copytree(model_set, tmp_path / "other")
    rewrite_contract(other / "fold_1.onnx", features=["log_pt", "eta", "sin_phi", "cos_phi", "log_mass"])
    with pytest.raises(PairhuntError, match="differ in features"):
        load_model_set(other)
    with pytest.raises(PairhuntError, match="exports to a model set directory"):
        export_run(run_dir, tmp_path / "one.onnx")


def test_folded_model_on_a_file_without_event_numbers_is_one_line(folds, tmp_path, capsys):
    _, model_set = folds
    jets = ak.Array([[{"pt": 90.0 - 5 * i, "eta": 0.1 * i, "phi": 0.5 * i, "mass": 10.0, "btag": float(i < 2)} for i in range(7)]] * 3)
    path = tmp_path / "no_event.root"
    with NanoAODWriter(path) as writer:
        writer.write(ak.zip({"run": np.ones(3, dtype=np.uint32), "luminosityBlock": np.ones(3, dtype=np.uint32), "Jet": jets}, depth_limit=1))
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({"no_event": [str(path)]}))
    assert main(["run", str(fileset), "-o", str(tmp_path / "chi2"), "--method", "chi2", "--no-progress"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        main(["run", str(fileset), "-o", str(tmp_path / "out"), "--method", f"spanet={model_set}", "--no-progress"])
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "2-fold model set" in lines[0] and "no 'event' branch" in lines[0], lines


def test_fold_training_needs_event_numbers(shared_nanoaod, tmp_path):
    from pathlib import Path

    examples = Path(__file__).resolve().parents[1] / "examples" / "spanet"
    topology = load_topology(examples / "full_hadronic_ttbar.yaml")
    data = from_spanet_h5(shared_nanoaod.parent / "spanet_examples" / "full_hadronic_ttbar_example.h5", topology).subset(slice(0, 50))
    from pairhunt.train.config import ModelConfig

    with pytest.raises(PairhuntError, match="no event numbers"):
        Trainer(topology, data, tmp_path, ModelConfig(dim=16, heads=2, encoder_layers=1), TrainConfig(epochs=1), FoldRule(2, 0))

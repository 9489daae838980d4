"""The SPA-NET-style model, its loss, the decoder, ONNX export and the contract, and the model
inside the processor."""

from __future__ import annotations

import dataclasses
import json
import logging

import awkward as ak
import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch", reason="needs the 'train' extra")

from pairhunt.assign.decoding import decode_greedy  # noqa: E402
from pairhunt.cli import main  # noqa: E402
from pairhunt.cutflow import Cutflow  # noqa: E402
from pairhunt.errors import PairhuntError  # noqa: E402
from pairhunt.precision import convert_to_float16  # noqa: E402
from pairhunt.inputs import JetInputs, event_level_features, select_jets  # noqa: E402
from pairhunt.assign.registry import make_method  # noqa: E402
from pairhunt.assign.onnx import CPU, CUDA, OnnxAssignment, create_session, select_providers  # noqa: E402
from pairhunt.processors import PairProcessor  # noqa: E402
from pairhunt.runner import normalise_files, run_fileset  # noqa: E402
from pairhunt.topology import Feature, Input, load_topology  # noqa: E402
from pairhunt.train.data import from_nanoaod, from_spanet_h5  # noqa: E402
from pairhunt.train.export import export_run  # noqa: E402
from pairhunt.train.loss import AssignmentLoss  # noqa: E402
from pairhunt.train.config import ModelConfig  # noqa: E402
from pairhunt.train.model import AssignmentModel, SymmetricTensorAttention  # noqa: E402
from pairhunt.train.trainer import Trainer, TrainConfig, load_run  # noqa: E402

SMALL = ModelConfig(dim=32, heads=4, encoder_layers=1, branch_layers=1, tensor_dim=16)


@pytest.fixture(scope="module")
def ttbar_data(generated):
    return from_nanoaod([generated["ttbar"]], load_topology("ttbar_allhad"))


@pytest.fixture(scope="module")
def exported(ttbar_data, tmp_path_factory):
    """A small model trained for two epochs on the generated ttbar fixture, exported to ONNX."""
    run_dir = tmp_path_factory.mktemp("run")
    trainer = Trainer(load_topology("ttbar_allhad"), ttbar_data, run_dir, SMALL, TrainConfig(epochs=2, batch_size=64, seed=3))
    trainer.fit(progress=False)
    path = run_dir / "model.onnx"
    export_run(run_dir, path)
    return run_dir, path


def random_model(topology_name="ttbar_allhad", n_features=6) -> AssignmentModel:
    torch.manual_seed(0)
    return AssignmentModel(load_topology(topology_name), SMALL, torch.randn(n_features), torch.rand(n_features) + 0.5).eval()


def test_head_is_exactly_symmetric_under_q1_q2():
    head = SymmetricTensorAttention(dim=8, tensor_dim=4, k=3, groups=[(0, 1)])
    x = torch.randn(5, 7, 8)
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[0, 5:] = False
    scores = head(x, mask)
    assert torch.equal(scores, scores.transpose(1, 2))  # bitwise
    assert not torch.allclose(scores, scores.transpose(1, 3))  # b is not interchangeable
    assert torch.all(scores[0, 5:] < -1e8) and torch.all(scores[:, 2, 2] < -1e8)  # padding, repeats


def test_model_is_equivariant_under_jet_permutations():
    model = random_model()
    jets = torch.randn(4, 8, 6)
    mask = torch.ones(4, 8, dtype=torch.bool)
    perm = torch.randperm(8)
    with torch.no_grad():
        out = model(jets, mask)["assignment_t1"]
        shuffled = model(jets[:, perm], mask[:, perm])["assignment_t1"]
    torch.testing.assert_close(shuffled, out[:, perm][:, :, perm][:, :, :, perm], atol=1e-5, rtol=1e-5)


def test_loss_is_invariant_under_parent_swap():
    model = random_model()
    loss = AssignmentLoss(load_topology("ttbar_allhad"))
    jets, mask = torch.randn(6, 8, 6), torch.ones(6, 8, dtype=torch.bool)
    targets = torch.tensor([[[0, 1, 2], [3, 4, 5]]] * 6)
    targets[1, 1, 2] = -1  # partial event: t2 not reconstructable
    weights = torch.ones(6)
    with torch.no_grad():
        outputs = model(jets, mask)
        a, _ = loss(outputs, targets, weights)
        b, _ = loss(outputs, targets.flip(1), weights)
        c, _ = loss(outputs, targets[:, :, [1, 0, 2]], weights)  # q1 <-> q2
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def test_decoder_never_reuses_a_jet_and_leaves_impossible_parents_empty():
    rng = np.random.default_rng(0)
    n_events, n_jets = 500, 7
    mask = np.arange(n_jets)[None, :] < rng.integers(0, n_jets + 1, n_events)[:, None]
    scores = [rng.normal(size=(n_events, n_jets, n_jets, n_jets)), rng.normal(size=(n_events, n_jets, n_jets))]
    slots = decode_greedy(scores, mask)
    used = np.where(slots >= 0, slots, -np.arange(1, slots[0].size + 1)[None, :].reshape(1, *slots.shape[1:]))
    flat = used.reshape(n_events, -1)
    assert all(len(set(row)) == len(row) for row in flat)  # no jet twice in an event
    n_real = mask.sum(axis=1)
    assert np.all(slots[:, 1, 2] == -1)  # the two-body parent has no third slot
    assert np.all((slots >= 0).sum(axis=(1, 2)) <= n_real)
    assert np.all(((slots[:, 0, :3] >= 0).all(axis=1)) | (n_real < 5) | ((slots[:, 1, :2] >= 0).all(axis=1)))
    assert np.all(slots[n_real < 2] == -1)
    full = n_real >= 5
    assert np.all((slots[full] >= 0).sum(axis=(1, 2)) == 5)
    assert np.all(np.take_along_axis(mask, np.maximum(slots.reshape(n_events, -1), 0), axis=1)[slots.reshape(n_events, -1) >= 0])


def test_a_few_training_steps_reduce_the_loss(ttbar_data, tmp_path):
    trainer = Trainer(load_topology("ttbar_allhad"), ttbar_data, tmp_path, SMALL, TrainConfig(epochs=4, batch_size=64, seed=1))
    history = trainer.fit(progress=False)
    assert history[-1]["assignment"] < history[0]["assignment"]
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "history.json").is_file()


def test_resume_continues_from_the_last_epoch(ttbar_data, tmp_path):
    topology = load_topology("ttbar_allhad")
    Trainer(topology, ttbar_data, tmp_path, SMALL, TrainConfig(epochs=1, batch_size=64)).fit(progress=False)
    resumed = Trainer(topology, ttbar_data, tmp_path, SMALL, TrainConfig(epochs=2, batch_size=64))
    resumed.resume()
    history = resumed.fit(progress=False)
    assert [h["epoch"] for h in history] == [1, 2]


def test_training_is_reproducible(ttbar_data, tmp_path):
    topology = load_topology("ttbar_allhad")
    runs = [Trainer(topology, ttbar_data, tmp_path / str(i), SMALL, TrainConfig(epochs=1, batch_size=64, seed=7)).fit(progress=False) for i in range(2)]
    assert runs[0][0]["loss"] == runs[1][0]["loss"]


@pytest.mark.parametrize("n_jets", [6, 8, 11])
def test_export_parity_for_several_jet_counts(exported, ttbar_data, n_jets):
    run_dir, path = exported
    model, _, _ = load_run(run_dir)
    rows = slice(0, 37)
    jets = np.zeros((37, n_jets, ttbar_data.features.shape[2]), dtype=np.float32)
    mask = np.zeros((37, n_jets), dtype=bool)
    width = min(n_jets, ttbar_data.features.shape[1])
    jets[:, :width], mask[:, :width] = ttbar_data.features[rows, :width], ttbar_data.mask[rows, :width]
    session = ort.InferenceSession(str(path), providers=[CPU])
    onnx_out = session.run(None, {"jets": jets, "mask": mask})
    with torch.no_grad():
        torch_out = model(torch.as_tensor(jets), torch.as_tensor(mask))
    for name, value in zip([o.name for o in session.get_outputs()], onnx_out):
        np.testing.assert_allclose(value, torch_out[name].numpy(), atol=1e-4, rtol=1e-4, err_msg=name)
        assert value.shape[0] == 37


PAIR_BIAS = dataclasses.replace(SMALL, pair_bias=8)
TUPLE_MASS = dataclasses.replace(SMALL, tuple_mass=8)
KINEMATIC = {"pair_bias": PAIR_BIAS, "tuple_mass": TUPLE_MASS, "both": dataclasses.replace(PAIR_BIAS, tuple_mass=8)}


def kinematic_jets(n_events: int, n_jets: int, seed: int = 0) -> torch.Tensor:
    """Random jets with physical features (log1p pT, eta, sin/cos of one phi, log1p mass, b-tag)."""
    generator = torch.Generator().manual_seed(seed)
    phi = torch.rand(n_events, n_jets, generator=generator) * 6.28
    return torch.stack([
        torch.log1p(30 + 300 * torch.rand(n_events, n_jets, generator=generator)),
        torch.randn(n_events, n_jets, generator=generator),
        torch.sin(phi), torch.cos(phi),
        torch.log1p(20 * torch.rand(n_events, n_jets, generator=generator)),
        (torch.rand(n_events, n_jets, generator=generator) < 0.3).float(),
    ], dim=-1)


@pytest.mark.parametrize("config", KINEMATIC.values(), ids=KINEMATIC.keys())
def test_kinematic_model_is_equivariant_batch_and_padding_independent(config):
    """With a pairwise bias, a tuple-mass score or both: jets in any order, events alone or in a
    batch, padded or not, give the same scores; q1 <-> q2 stays exactly symmetric."""
    torch.manual_seed(0)
    model = AssignmentModel(load_topology("ttbar_allhad"), config, torch.randn(6), torch.rand(6) + 0.5,
                            pair_scale=[[0.0, 0.0, 0.0, 2.0, 5.0], [2.0, 0.7, 0.7, 1.0, 1.0]]).eval()
    jets, mask = kinematic_jets(5, 8), torch.ones(5, 8, dtype=torch.bool)
    mask[2, 6:] = False
    perm = torch.randperm(8)
    padded_jets = torch.cat([jets, torch.full((5, 3, 6), 3.0)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(5, 3, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        out = model(jets, mask)["assignment_t1"]
        shuffled = model(jets[:, perm], mask[:, perm])["assignment_t1"]
        alone = model(jets[2:3], mask[2:3])["assignment_t1"]
        padded = model(padded_jets, padded_mask)["assignment_t1"][:, :8, :8, :8]
        unbiased = model.__class__(load_topology("ttbar_allhad"), SMALL, torch.randn(6), torch.rand(6) + 0.5)
    torch.testing.assert_close(shuffled, out[:, perm][:, :, perm][:, :, :, perm], atol=1e-5, rtol=1e-5)
    real = out > -1e8
    torch.testing.assert_close(alone[0], out[2], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(padded[real], out[real], atol=1e-5, rtol=1e-5)
    assert torch.equal(padded > -1e8, real)
    assert torch.equal(out, out.transpose(1, 2))
    assert sum(p.numel() for p in model.parameters()) > sum(p.numel() for p in unbiased.parameters())


def test_tuple_masses_are_the_invariant_masses_of_each_tuple_and_its_pairs():
    from pairhunt.train.pairwise import four_momenta, kinematic_index, tuple_mass_count, tuple_masses

    jets = kinematic_jets(3, 6)
    p4 = four_momenta(jets, kinematic_index(["log_pt", "eta", "sin_phi", "cos_phi", "log_mass", "btag"]))

    def log_mass(*jets_of_event):
        total = sum(jets_of_event)
        return torch.log1p(torch.sqrt(total[3] ** 2 - (total[:3] ** 2).sum()))

    triplets, pairs = tuple_masses(p4, 3), tuple_masses(p4, 2)
    assert triplets.shape == (3, 6, 6, 6, tuple_mass_count(3)) == (3, 6, 6, 6, 4) and pairs.shape == (3, 6, 6, 1)
    event, (i, j, k) = 1, (4, 0, 2)
    expected = [log_mass(p4[event, i], p4[event, j]), log_mass(p4[event, i], p4[event, k]),
                log_mass(p4[event, j], p4[event, k]), log_mass(p4[event, i], p4[event, j], p4[event, k])]
    torch.testing.assert_close(triplets[event, i, j, k], torch.stack(expected), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pairs[event, i, k, 0], expected[1], atol=1e-5, rtol=1e-5)


def test_pair_bias_leaves_the_global_token_unbiased_and_events_independent():
    """ttbar_semilep: jets and leptons in one sequence plus a MET token that gets no pairwise bias;
    the leptonic top's (b, l) pairs get a tuple-mass score too."""
    torch.manual_seed(0)
    model = AssignmentModel(load_topology("ttbar_semilep"), KINEMATIC["both"], torch.zeros(8), torch.ones(8), torch.zeros(3), torch.ones(3),
                            pair_scale=[[0.0, 0.0, 0.0, 2.0, 5.0], [2.0, 0.7, 0.7, 1.0, 1.0]]).eval()
    objects = torch.cat([kinematic_jets(4, 7), torch.zeros(4, 7, 2)], dim=-1)
    mask = torch.ones(4, 7, dtype=torch.bool)
    mask[1, 5:] = False
    met = torch.randn(4, 3)
    perm = torch.randperm(7)
    with torch.no_grad():
        bias = model.attention_bias(objects, torch.cat([mask, torch.ones(4, 1, dtype=torch.bool)], dim=1))
        out = model(objects, mask, met)
        alone = model(objects[1:2], mask[1:2], met[1:2])
        shuffled = model(objects[:, perm], mask[:, perm], met)
    assert bias.shape == (4, PAIR_BIAS.heads, 8, 8)
    real = torch.cat([mask, torch.ones(4, 1, dtype=torch.bool)], dim=1)[:, None, :].expand(4, PAIR_BIAS.heads, 8)
    assert torch.all(bias[:, :, -1, :][real] == 0) and torch.all(bias[:, :, :-1, -1] == 0)  # the MET token: no bias
    assert torch.all(bias[1, :, :, 5:7] < -1e8)  # padded objects masked as keys
    for name, value in out.items():
        torch.testing.assert_close(alone[name][0], value[1], atol=1e-5, rtol=1e-5)
    first = out["assignment_t1"]
    torch.testing.assert_close(shuffled["assignment_t1"], first[:, perm][:, :, perm][:, :, :, perm], atol=1e-5, rtol=1e-5)


def test_pair_bias_needs_the_kinematic_features():
    topology = load_topology("ttbar_allhad")
    jets = dataclasses.replace(topology.jets, features=tuple(f for f in topology.jets.features if f.name != "log_mass"))
    no_mass = dataclasses.replace(topology, inputs=tuple(jets if i is topology.jets else i for i in topology.inputs))
    with pytest.raises(PairhuntError, match="log_mass"):
        AssignmentModel(no_mass, PAIR_BIAS, torch.zeros(5), torch.ones(5), pair_scale=[[0.0] * 5, [1.0] * 5])
    with pytest.raises(PairhuntError, match="pair_scale"):
        AssignmentModel(topology, PAIR_BIAS, torch.zeros(6), torch.ones(6))
    with pytest.raises(PairhuntError, match="log_mass"):
        AssignmentModel(no_mass, TUPLE_MASS, torch.zeros(5), torch.ones(5), pair_scale=[[0.0] * 5, [1.0] * 5])


def test_pair_bias_tuple_mass_augmented_model_trains_exports_matches_onnx_and_runs_in_the_processor(generated, ttbar_data, tmp_path):
    """`pairhunt train spanet --pair-bias --tuple-mass --augment`, `pairhunt export`, parity with torch, and the Runner on it."""
    run_dir, path = tmp_path / "run", tmp_path / "model.onnx"
    tiny = ["--dim", "32", "--encoder-layers", "1", "--tensor-dim", "16", "--batch-size", "64", "--epochs", "1", "--no-progress"]
    assert main(["train", "spanet", "--topology", "ttbar_allhad", "--data", str(generated["ttbar"]), "-o", str(run_dir),
                 "--pair-bias", "8", "--tuple-mass", "8", "--augment", *tiny]) == 0
    assert main(["export", str(run_dir), "-o", str(path)]) == 0
    model, _, meta = load_run(run_dir)
    assert meta["model"]["pair_bias"] == meta["model"]["tuple_mass"] == 8 and np.shape(meta["pair_scale"]) == (2, 5) and meta["augment"]
    session = ort.InferenceSession(str(path), providers=[CPU])
    for n_jets in (6, 11):
        jets = np.zeros((37, n_jets, ttbar_data.features.shape[2]), dtype=np.float32)
        mask = np.zeros((37, n_jets), dtype=bool)
        width = min(n_jets, ttbar_data.features.shape[1])
        jets[:, :width], mask[:, :width] = ttbar_data.features[:37, :width], ttbar_data.mask[:37, :width]
        with torch.no_grad():
            torch_out = model(torch.as_tensor(jets), torch.as_tensor(mask))
        for name, value in zip([o.name for o in session.get_outputs()], session.run(None, {"jets": jets, "mask": mask})):
            np.testing.assert_allclose(value, torch_out[name].numpy(), atol=1e-4, rtol=1e-4, err_msg=name)
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({"ttbar": [str(generated["ttbar"])]}))
    out = tmp_path / "out"
    assert main(["run", str(fileset), "-o", str(out), "--method", f"pb={path}", "--no-progress"]) == 0
    table = ak.concatenate([ak.from_parquet(f) for f in sorted((out / "events" / "ttbar").glob("*.parquet"))])
    selected = table[table.selected]
    assert len(selected) > 0 and np.isfinite(ak.to_numpy(selected["pb_mavg"])).all()


def test_float16_export_keeps_float32_inputs_outputs_and_the_assignments(exported, ttbar_data, tmp_path):
    run_dir, path = exported
    half = tmp_path / "half.onnx"
    assert export_run(run_dir, half, precision="float16").precision == "float16"
    assert OnnxAssignment(str(half)).contract.precision == "float16"
    assert OnnxAssignment(str(path)).contract.precision == "float32"
    jets, mask = ttbar_data.features[:300], ttbar_data.mask[:300]
    sessions = [ort.InferenceSession(str(p), providers=[CPU]) for p in (path, half)]
    assert {i.type for s in sessions for i in s.get_inputs() + s.get_outputs() if i.name != "mask"} == {"tensor(float)"}
    full, halved = (s.run(None, {"jets": jets, "mask": mask}) for s in sessions)
    for name, a, b in zip([o.name for o in sessions[0].get_outputs()], full, halved):
        likely = a > np.log(1e-3) if name.startswith("assignment") else np.isfinite(a)  # the tuples that matter
        np.testing.assert_allclose(b[likely], a[likely], atol=0.02, err_msg=name)
    # where float16 picks another assignment it is a near-tie in float32 (this barely trained
    # model has many): its float32 log-probability is within float16's error of the best
    decoded = [decode_greedy(outputs[:2], mask) for outputs in (full, halved)]
    events = np.arange(len(mask))
    value = [sum(full[p][(events, *slots[:, p].T)] for p in range(2)) for slots in decoded]
    differ = ~(decoded[0] == decoded[1]).all(axis=(1, 2))
    assert differ.mean() < 0.5
    np.testing.assert_allclose(value[1][differ], value[0][differ], atol=0.05)
    # the exported float32 file converts to the same float16 model (pairhunt export MODEL.onnx --fp16)
    converted = tmp_path / "converted.onnx"
    convert_to_float16(path, converted)
    again = ort.InferenceSession(str(converted), providers=[CPU]).run(None, {"jets": jets, "mask": mask})
    assert all(np.array_equal(x, y) for x, y in zip(again, halved))
    with pytest.raises(PairhuntError, match="already a float16 model"):
        convert_to_float16(half, tmp_path / "twice.onnx")


def test_contract_travels_in_the_metadata(exported):
    _, path = exported
    method = OnnxAssignment(str(path))
    assert method.contract.kind == "spanet"
    assert method.contract.features == ["log_pt", "eta", "sin_phi", "cos_phi", "log_mass", "btag"]
    assert method.required_features(load_topology("ttbar_allhad")) == tuple(method.contract.features)


def test_contract_mismatches_are_clear_errors(exported, tmp_path):
    _, path = exported
    method = OnnxAssignment(str(path))
    with pytest.raises(PairhuntError, match="reconstructs"):
        method.required_features(load_topology("pair_3body"))
    altered = load_topology("ttbar_allhad").to_dict()
    altered["inputs"]["Jet"]["features"]["log_pt"]["transform"] = "none"
    from pairhunt.topology import topology_from_dict

    with pytest.raises(PairhuntError, match="trained with feature"):
        method.required_features(topology_from_dict(altered))
    import onnx

    bare = onnx.load(str(path))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(PairhuntError, match="no 'pairhunt' metadata"):
        OnnxAssignment(str(tmp_path / "bare.onnx")).contract
    with pytest.raises(PairhuntError, match="no ONNX model"):
        make_method("spanet=does_not_exist").contract


def test_provider_selection():
    assert select_providers([CUDA, CPU]) == [(CUDA, {"use_tf32": "1"}), CPU]
    assert select_providers([CUDA, CPU], tf32=False) == [(CUDA, {"use_tf32": "0"}), CPU]
    assert select_providers([CUDA, CPU], device="cpu") == [CPU]
    assert select_providers(["AzureExecutionProvider", CPU]) == [CPU]
    assert select_providers([CUDA, CPU], device="cuda")[0][0] == CUDA
    with pytest.raises(PairhuntError, match="no CUDA provider"):
        select_providers([CPU], device="cuda")
    with pytest.raises(PairhuntError, match="unknown device"):
        select_providers([CPU], device="gpu")


def test_listed_but_unusable_cuda_falls_back_to_cpu_with_a_log_line(exported, monkeypatch, caplog):
    _, path = exported
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])
    with caplog.at_level(logging.WARNING, logger="pairhunt.assign.onnx"), pytest.warns(UserWarning):
        session = create_session(path, threads=1, device="auto")
    assert session.get_providers() == [CPU]
    assert "could not use it" in caplog.text
    with pytest.raises(PairhuntError, match="could not run"), pytest.warns(UserWarning):
        create_session(path, threads=1, device="cuda")


def test_model_in_the_processor_through_the_runner(exported, generated, shared_nanoaod):
    _, path = exported
    files = {
        "ttbar": normalise_files([str(generated["ttbar"])]),
        "cms_v15": normalise_files([str(shared_nanoaod / "nano_tt_v15.root")]),
        "cms_2015": normalise_files([str(shared_nanoaod / "nanoAOD_2015_CMS_Open_Data_ttbar.root")]),
        "empty": normalise_files([str(shared_nanoaod / "nano_dy_empty.root")]),
    }
    processor = PairProcessor("ttbar_allhad", [make_method(f"spanet={path}"), make_method("chi2")])
    result = run_fileset(files, processor, executor="futures", workers=2, chunksize=150, progress=False)
    hists = result.output["hists"]["mass_average"]
    for dataset in ("ttbar", "cms_v15", "cms_2015"):
        selected = result.output["cutflow"][dataset]["events"][">= 6 jets"]
        assert hists[{"dataset": dataset, "method": "spanet"}].sum(flow=True).value == pytest.approx(
            hists[{"dataset": dataset, "method": "chi2"}].sum(flow=True).value
        )
        assert selected > 0
    assert result.output["cutflow"]["empty"]["events"]["all events"] == 0
    # futures workers are fresh processes: each warms up once, outside the chunks' timing
    timing = result.output["timing"]
    assert {"warm-up", "features:spanet", "model:spanet", "decode:spanet", "candidates:spanet", "assign:chi2"} <= set(timing)


@pytest.mark.parametrize(
    ("config", "data", "outputs"),
    [
        ("full_hadronic_ttbar", "full_hadronic_ttbar_example", {"assignment_t1", "assignment_t2", "detection"}),
        (
            "semi_leptonic_ttH",
            "semi_leptonic_ttH_example",
            {"assignment_h", "assignment_ht", "assignment_lt", "regression_neutrino_pz", "classification_signal"},
        ),
    ],
)
def test_spanet_example_files_train_and_export(config, data, outputs, tmp_path, shared_nanoaod):
    from pathlib import Path

    examples = Path(__file__).resolve().parents[1] / "examples" / "spanet"
    h5 = shared_nanoaod.parent / "spanet_examples" / f"{data}.h5"
    topology = load_topology(examples / f"{config}.yaml")
    dataset = from_spanet_h5(h5, topology).subset(slice(0, 400))
    trainer = Trainer(topology, dataset, tmp_path, SMALL, TrainConfig(epochs=2, batch_size=64))
    history = trainer.fit(progress=False)
    assert history[-1]["loss"] < 0.93 * history[0]["loss"]  # measured: 14 % (ttbar) and 16 % (ttH) lower
    contract = export_run(tmp_path, tmp_path / "model.onnx")
    assert outputs <= set(contract.outputs)
    method = make_method(f"spanet={tmp_path / 'model.onnx'}")
    assert set(method.required_features(topology)) == set(contract.features)  # MET included: the processor feeds it
    if topology.regressions or topology.classifications:
        assert_heads_reach_the_table_and_histograms(method, topology, dataset)


def assert_heads_reach_the_table_and_histograms(method, topology, dataset):
    """Regression values and class probabilities of the event-level heads, per event, in the
    per-event table; the most probable class in the ``classification`` histogram."""
    from pairhunt.event_table import EventTable
    from pairhunt.processors.histograms import book

    mask = dataset.mask
    zeros, counts = np.zeros(mask.shape), mask.sum(axis=1)
    index = np.where(mask, np.arange(mask.shape[1])[None, :], -1)
    jets = JetInputs(zeros, zeros, zeros, zeros, mask, index, counts, counts)  # the heads need features, not kinematics
    names = [f.name for f in topology.jets.features]
    jets.features = {name: dataset.features[..., k] for k, name in enumerate(names)}
    global_names = [f.name for i in topology.inputs if i.kind == "global" for f in i.features]
    jets.globals = {name: dataset.global_features[:, k] for k, name in enumerate(global_names)}
    assignment = method.assign(jets, topology)
    regression, classification = "regression_neutrino_pz", "classification_signal"
    assert assignment.heads[regression].shape == (len(dataset),) and np.isfinite(assignment.heads[regression]).all()
    np.testing.assert_allclose(assignment.heads[classification].sum(axis=1), 1.0, rtol=1e-9)
    selected = np.ones(len(dataset), dtype=bool)
    table = EventTable(ak.Array({"event": np.arange(len(dataset))}), selected, jets, jets.counts, np.ones(len(dataset)))
    from pairhunt.candidates import build_candidates

    table.add_method("spanet", assignment, build_candidates(jets, assignment, topology.n_parents, topology.products_per_parent), topology.parents)
    np.testing.assert_array_equal(table.columns[f"spanet_{regression}"], assignment.heads[regression])
    histograms = book(topology)
    PairProcessor._fill_classifications(histograms["classification"], "tth", "spanet", assignment.heads, np.ones(len(dataset)))
    assert histograms["classification"][{"target": classification}].sum().value == len(dataset)
    PairProcessor._fill_regressions(histograms, "tth", "spanet", assignment, np.ones(len(dataset)))
    assert histograms[regression].sum(flow=True).value == len(dataset)
    start, stop = assignment.head_ranges[regression]
    mean, std = method.contract.regression_stats["neutrino_pz"]
    assert (start, stop) == pytest.approx((mean - 5 * std, mean + 5 * std)) and std > 1.0  # GeV, not the unit default


def with_met(topology):
    """``topology`` with NanoAOD's MET as an event-level (global) input."""
    met = Input(
        "MET", "MET", "global",
        (Feature("met_log_pt", ("pt",), "log1p"), Feature("met_sin_phi", ("phi",), "sin"), Feature("met_cos_phi", ("phi",), "cos")),
    )
    return dataclasses.replace(topology, inputs=(*topology.inputs, met))


def test_augmentation_turns_jets_and_met_by_one_angle_and_keeps_everything_else():
    """One rotation and one eta sign per event for its jets and its MET: every angle between them,
    the pT, masses and b-tags, and the padding stay; the draw is reproducible by seed."""
    from pairhunt.train.augment import random_symmetry
    from pairhunt.train.trainer import symmetries

    topology = with_met(load_topology("ttbar_allhad"))
    on_jets, on_met = symmetries(topology)
    g = torch.Generator().manual_seed(0)
    jet_phi, met_phi = torch.rand(50, 10, generator=g) * 6.28, torch.rand(50, generator=g) * 6.28
    mask = torch.arange(10) < torch.randint(6, 11, (50, 1), generator=g)
    jets = torch.stack([torch.rand(50, 10, generator=g) + 3, torch.randn(50, 10, generator=g), jet_phi.sin(), jet_phi.cos(),
                        torch.rand(50, 10, generator=g) + 2, (torch.rand(50, 10, generator=g) < 0.3).float()], dim=-1) * mask[..., None]
    met = torch.stack([torch.rand(50, generator=g) + 4, met_phi.sin(), met_phi.cos()], dim=-1)
    angle, mirror = random_symmetry(50, torch.Generator().manual_seed(7))
    again = random_symmetry(50, torch.Generator().manual_seed(7))
    assert torch.equal(angle, again[0]) and torch.equal(mirror, again[1])
    new_jets, new_met = on_jets(jets, angle, mirror), on_met(met, angle, mirror)

    for kept in (0, 4, 5):  # log pT, log mass, b-tag
        assert torch.equal(new_jets[..., kept], jets[..., kept])
    assert torch.equal(new_met[:, 0], met[:, 0])
    assert torch.equal(new_jets[..., 1], jets[..., 1] * mirror[:, None]) and (mirror == -1).any() and (mirror == 1).any()
    assert (new_jets[~mask] == 0).all()
    turned_jets = torch.atan2(new_jets[..., 2], new_jets[..., 3]) - jet_phi
    turned_met = torch.atan2(new_met[:, 1], new_met[:, 2]) - met_phi
    offset = torch.remainder(turned_jets - angle[:, None] + torch.pi, 2 * torch.pi) - torch.pi
    assert offset[mask].abs().max() < 1e-4
    assert (torch.remainder(turned_met - angle + torch.pi, 2 * torch.pi) - torch.pi).abs().max() < 1e-4


def test_augmented_training_sees_the_turned_events(ttbar_data, tmp_path):
    from pairhunt.train.augment import random_symmetry
    from pairhunt.train.trainer import symmetries

    topology, config = load_topology("ttbar_allhad"), TrainConfig(epochs=1, batch_size=64, seed=3)
    plain = Trainer(topology, ttbar_data, tmp_path / "plain", SMALL, config)
    turned = Trainer(topology, ttbar_data, tmp_path / "turned", SMALL, config, augment=True)
    turned.model.load_state_dict(plain.model.state_dict())
    plain.model.eval(), turned.model.eval()
    batch = {name: values[:64] for name, values in plain.train_tensors().items()}
    on_jets, _ = symmetries(topology)
    by_hand = dict(batch, jets=on_jets(batch["jets"], *random_symmetry(64, torch.Generator().manual_seed(5))))
    with torch.no_grad():
        loss, _ = turned.batch_loss(batch, torch.Generator().manual_seed(5))
        assert torch.allclose(loss, plain.batch_loss(by_hand, torch.Generator())[0])
        assert not torch.allclose(loss, plain.batch_loss(batch, torch.Generator())[0])
    assert turned.meta["augment"] and not plain.meta["augment"]


def test_augmentation_refuses_inputs_it_cannot_turn():
    from pairhunt.train.augment import Symmetry
    from pairhunt.train.trainer import symmetries

    with pytest.raises(PairhuntError, match="'phi' \\(none of phi\\)"):
        Symmetry([Feature("phi", ("phi",)), Feature("eta", ("eta",))])
    with pytest.raises(PairhuntError, match="needs both sin and cos"):
        Symmetry([Feature("sin_phi", ("phi",), "sin")])
    with pytest.raises(PairhuntError, match="regresses neutrino_eta"):
        symmetries(dataclasses.replace(load_topology("ttbar_allhad"), regressions=("neutrino_eta",)))


def test_event_level_inputs_travel_from_nanoaod_to_the_graph(generated, shared_nanoaod, tmp_path):
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    topology = with_met(load_topology("ttbar_allhad"))
    data = from_nanoaod([generated["ttbar"]], topology)
    trainer = Trainer(topology, data, tmp_path, SMALL, TrainConfig(epochs=1, batch_size=64, seed=3))
    trainer.fit(progress=False)
    contract = export_run(tmp_path, tmp_path / "met.onnx")
    assert contract.global_features == ["met_log_pt", "met_sin_phi", "met_cos_phi"] and "globals" in contract.inputs

    # the processor's builder gives training's values, from coffea's NanoEvents
    events = NanoEventsFactory.from_root({str(generated["ttbar"]): "Events"}, schemaclass=NanoAODSchema, mode="eager").events()
    jets, selected = select_jets(events, topology.jets, Cutflow(np.ones(len(events))), contract.features)
    jets.globals = event_level_features(events, topology.inputs, selected, "ttbar")
    np.testing.assert_array_equal(jets.global_matrix(contract.global_features), data.global_features)

    # the ONNX session gets them: its outputs are the torch model's with the same MET, and MET matters
    method = make_method(f"spanet={tmp_path / 'met.onnx'}")
    model, _, _ = load_run(tmp_path)
    with torch.no_grad():
        expected = model(torch.as_tensor(data.features), torch.as_tensor(data.mask), torch.as_tensor(data.global_features))
    outputs = method.outputs(jets)
    np.testing.assert_allclose(outputs["assignment_t1"], expected["assignment_t1"].numpy(), atol=1e-4, rtol=1e-4)
    jets.globals = {name: values[::-1].copy() for name, values in jets.globals.items()}
    assert not np.allclose(method.outputs(jets)["assignment_t1"], outputs["assignment_t1"], atol=1e-4)

    # through the Runner on generated and real CMS NanoAOD; NanoAOD v15 renamed MET to PFMET: one clear line
    files = {"ttbar": normalise_files([str(generated["ttbar"])]), "cms_2015": normalise_files([str(shared_nanoaod / "nanoAOD_2015_CMS_Open_Data_ttbar.root")])}
    processor = PairProcessor(topology, [method, make_method("chi2")])
    result = run_fileset(files, processor, executor="iterative", chunksize=150, progress=False)
    hists = result.output["hists"]["mass_average"]
    for dataset in files:
        assert hists[{"dataset": dataset, "method": "spanet"}].sum(flow=True).value > 0
    with pytest.raises(PairhuntError, match=r"nano_tt_v15.root: event-level input 'MET' \(feature 'met_log_pt'\) needs one of the branches MET_pt"):
        from_nanoaod([shared_nanoaod / "nano_tt_v15.root"], topology)
    # a topology without the model's event-level inputs, or defining one differently: one clear line
    with pytest.raises(PairhuntError, match="reads the event-level feature 'met_log_pt'"):
        method.required_features(load_topology("ttbar_allhad"))
    linear = dataclasses.replace(topology.inputs[-1], features=(Feature("met_log_pt", ("pt",), "none"), *topology.inputs[-1].features[1:]))
    with pytest.raises(PairhuntError, match="trained with event-level feature"):
        method.required_features(dataclasses.replace(topology, inputs=(*topology.inputs[:-1], linear)))

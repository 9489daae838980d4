"""The ABC model: symmetries, training, export parity, and the shipped model in the processor."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch", reason="needs the 'train' extra")

from pairhunt.assign.abc import AbcAssignment, hard_assignment  # noqa: E402
from pairhunt.errors import PairhuntError  # noqa: E402
from pairhunt.assign.registry import make_method  # noqa: E402
from pairhunt.assign.onnx import OnnxAssignment  # noqa: E402
from pairhunt.processors import PairProcessor  # noqa: E402
from pairhunt.runner import normalise_files, run_fileset  # noqa: E402
from pairhunt.topology import load_topology  # noqa: E402
from pairhunt.train.abc_model import (  # noqa: E402
    AbcConfig,
    AbcModel,
    MassCalibration,
    average_mass,
    four_momenta,
    random_categories,
)
from pairhunt.train.abc_ensemble import best_validation  # noqa: E402
from pairhunt.train.abc_trainer import (  # noqa: E402
    AbcTrainer, calibration_bins, calibration_smoothing, calibration_table, high_mass_power, smoothed_quantiles,
)
from pairhunt.train.data import from_nanoaod  # noqa: E402
from pairhunt.train.export import export_run  # noqa: E402
from pairhunt.train.loop import TrainConfig  # noqa: E402
from pairhunt.train.trainer import load_run  # noqa: E402

FEATURES = ["log_pt", "eta", "sin_phi", "cos_phi", "log_mass"]
SMALL = AbcConfig(dim=16, heads=2, layers=2, pair_hidden=8)
PAIR_SCALE = [[0.0, 0.0, 0.0, 2.5, 5.5], [1.5, 0.7, 0.7, 1.2, 0.8]]
# the generated QCD fixture is small: loosen the selection so a few hundred events train
LOOSE = {"ht_min": 0.0, "min_count": 4}


def random_jets(batch: int, n_jets: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Plausible unnormalised jet features and a mask with some padding."""
    g = torch.Generator().manual_seed(seed)
    phi = torch.rand(batch, n_jets, generator=g) * 6.28
    jets = torch.stack(
        [
            torch.log1p(30 + 400 * torch.rand(batch, n_jets, generator=g)),
            torch.randn(batch, n_jets, generator=g),
            torch.sin(phi),
            torch.cos(phi),
            torch.log1p(5 + 30 * torch.rand(batch, n_jets, generator=g)),
        ],
        dim=-1,
    )
    mask = torch.ones(batch, n_jets, dtype=torch.bool)
    mask[0, -2:] = False
    return jets * mask.unsqueeze(-1), mask


def small_model(seed: int = 0) -> AbcModel:
    torch.manual_seed(seed)
    mean = torch.tensor([5.0, 0.0, 0.0, 0.0, 2.5])
    std = torch.tensor([0.7, 1.2, 0.7, 0.7, 0.6])
    return AbcModel(FEATURES, SMALL, mean, std, [[5.5, 3.0], [0.8, 1.5]], PAIR_SCALE).eval()


def test_layers_are_equivariant_under_jet_permutations():
    model = small_model()
    jets, mask = random_jets(4, 9)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(jets, mask)
        shuffled = model(jets[:, perm], mask[:, perm])
    torch.testing.assert_close(shuffled["category_probabilities"], out["category_probabilities"][:, perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(shuffled["anomaly_score"], out["anomaly_score"], atol=1e-5, rtol=1e-5)


def test_an_event_does_not_depend_on_the_other_events_of_its_batch():
    """The reference implementation fails this: its pairwise bias is repeated head-major."""
    model = small_model()
    jets, mask = random_jets(6, 10, seed=3)
    with torch.no_grad():
        together = model(jets, mask)
        alone = [model(jets[i : i + 1], mask[i : i + 1]) for i in range(6)]
        reversed_batch = model(jets.flip(0), mask.flip(0))
    for name, value in together.items():
        single = torch.cat([out[name] for out in alone])
        torch.testing.assert_close(single, value, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(reversed_batch[name].flip(0), value, atol=1e-6, rtol=1e-6)


def test_padded_jets_change_nothing_whatever_their_features():
    model = small_model()
    jets, mask = random_jets(3, 8, seed=5)
    garbage = jets.clone()
    garbage[~mask] = 7.0
    padded = torch.cat([jets, torch.full((3, 2, 5), 3.0)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(3, 2, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        out, dirty, longer = model(jets, mask), model(garbage, mask), model(padded, padded_mask)
    torch.testing.assert_close(dirty["anomaly_score"], out["anomaly_score"])
    torch.testing.assert_close(longer["anomaly_score"], out["anomaly_score"], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(longer["category_probabilities"][:, :8], out["category_probabilities"], atol=1e-6, rtol=1e-6)


def test_mass_calibration_gives_the_background_percentile_at_each_mass():
    calibration = MassCalibration()
    levels = (torch.arange(100) + 0.5) / 100
    # two mass bins centred at 500 and 1500 GeV whose background scores are uniform on [0, 1] and [0, 2]
    calibration.set(torch.tensor([500.0, 1500.0]), torch.stack([levels, 2 * levels]))
    score = torch.tensor([0.25, 0.25, 1.5, 3.0, 0.5, 0.25])
    mass = torch.tensor([100.0, 1500.0, 1500.0, 9000.0, 1000.0, 1250.0])
    # beyond the outer centres the nearest bin's table; between them a linear mix (0.5 -> 0.5 and 0.25)
    expected = torch.tensor([0.25, 0.12, 0.75, 1.0, 0.375, 0.25 * 0.25 + 0.75 * 0.12])
    torch.testing.assert_close(calibration(score, mass), expected)


def test_mass_calibration_scales_the_last_table_by_a_power_of_the_mass_above_the_last_centre():
    calibration = MassCalibration()
    levels = (torch.arange(100) + 0.5) / 100
    # every quantile grows as mass**2 above 1500 GeV except the upper half, which grows as mass**1
    power = torch.cat([torch.full((50,), 2.0), torch.full((50,), 1.0)])
    calibration.set(torch.tensor([500.0, 1500.0]), torch.stack([levels, 2 * levels]), power)
    score = torch.tensor([0.25, 0.5 * 4, 1.5 * 2, 1.5])
    mass = torch.tensor([1500.0, 3000.0, 3000.0, 1000.0])
    # at 3 TeV the lower half of the table is 4x (8 x level), the upper half 2x (4 x level) that at 1.5 TeV:
    # 2.0 passes 25 lower levels and no upper one, 3.0 passes 37 lower and 25 upper ones;
    # below the last centre nothing changes (1 TeV: half the 500 GeV table, half the 1.5 TeV one)
    expected = torch.tensor([0.12, 0.25, 0.62, 0.5 * 1.0 + 0.5 * 0.75])
    torch.testing.assert_close(calibration(score, mass), expected)


def test_calibration_keeps_the_same_background_fraction_up_to_high_masses():
    # a steeply falling mass spectrum whose score scale grows as mass**2: the regime of QCD above 1 TeV;
    # with 25 bins the last one spans the top 4 % and a 10 % cut keeps 7.6 % of the events at 90-98 %
    rng = np.random.default_rng(7)
    mass = 200.0 * (1 + rng.pareto(3.0, 60_000))
    score = rng.exponential(size=mass.size) * (mass / 500.0) ** 2
    weights = rng.uniform(0.5, 1.5, size=mass.size)
    table = calibration_table(score, mass, weights)
    assert len(table["centres"]) == calibration_bins(60_000) == 120
    assert table["smoothing"] == calibration_smoothing(120) == 20
    calibration = MassCalibration()
    calibration.set(torch.tensor(table["centres"]), torch.tensor(table["quantiles"]), torch.tensor(table["high_mass_power"]))
    percentile = calibration(torch.tensor(score, dtype=torch.float32), torch.tensor(mass, dtype=torch.float32)).numpy()
    for low, high in [(0.0, 0.5), (0.5, 0.9), (0.9, 0.98)]:  # ranges of mass quantiles
        rows = (mass >= np.quantile(mass, low)) & (mass <= np.quantile(mass, high))
        for cut in (0.5, 0.9):
            kept = weights[rows][percentile[rows] > cut].sum() / weights[rows].sum()
            assert kept == pytest.approx(1 - cut, abs=0.015), (low, high, cut, kept)


def test_smoothed_quantiles_keep_a_power_law_and_remove_per_bin_noise():
    # quantiles that follow a power of the mass exactly are kept (a local linear fit in log-log space);
    # 3 % noise per bin, the statistics of a few hundred events, is reduced several times; levels stay ordered
    centres = np.geomspace(300.0, 3000.0, 120)
    truth = np.stack([(centres / 500.0) ** p * level for p, level in [(1.0, 0.5), (1.5, 1.0), (2.0, 2.0)]], axis=1)
    np.testing.assert_allclose(smoothed_quantiles(centres, truth, 10), truth, rtol=1e-9)
    rng = np.random.default_rng(3)
    noisy = truth * np.exp(rng.normal(0.0, 0.03, size=truth.shape))
    smoothed = smoothed_quantiles(centres, noisy, 10)
    assert np.std(np.log(smoothed / truth)) < np.std(np.log(noisy / truth)) / 2.5
    crossing = np.stack([truth[:, 0], truth[:, 0] * np.exp(rng.normal(0.0, 0.05, size=len(centres)))], axis=1)
    assert (np.diff(smoothed_quantiles(centres, crossing, 3), axis=1) >= 0).all()


def test_small_calibration_samples_get_the_minimum_number_of_bins():
    assert calibration_bins(300) == 25 and calibration_bins(30_000) == 60 and calibration_bins(10**7) == 480


def test_high_mass_power_is_fitted_per_quantile_level_and_never_negative():
    centres = np.array([600.0, 800.0, 1000.0, 1200.0])
    quantiles = np.stack([centres**1.5, 3 * centres**0.5, 1 / centres], axis=1)
    np.testing.assert_allclose(high_mass_power(centres, quantiles), [1.5, 0.5, 0.0], atol=1e-9)


def test_losses_are_symmetric_under_parent_swap():
    model = small_model()
    jets, mask = random_jets(4, 8)
    with torch.no_grad():
        probabilities, normalised = model.encode_jets(jets, mask)
        random = random_categories(mask, torch.Generator().manual_seed(2))
        terms = model.loss_terms(probabilities, normalised, jets, random)
        swapped = model.loss_terms(probabilities[..., [1, 0, 2]], normalised, jets, random[..., [1, 0, 2]])
    for name in terms:
        torch.testing.assert_close(swapped[name], terms[name], atol=1e-6, rtol=1e-5)


def test_the_model_needs_the_kinematic_features():
    with pytest.raises(PairhuntError, match="log_mass"):
        AbcModel(FEATURES[:4], SMALL, torch.zeros(4), torch.ones(4), [[0.0] * 2, [1.0] * 2], PAIR_SCALE)


def test_hard_assignment_is_the_argmax_with_isr_and_padding_unassigned():
    probabilities = np.array([[[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.6, 0.3, 0.1], [0.9, 0.05, 0.05]]])
    mask = np.array([[True, True, True, True, False]])
    assignment = hard_assignment(probabilities, mask)
    assert assignment.parent.tolist() == [[0, 1, -1, 0, -1]]
    assert assignment.product.tolist() == [[0, 0, -1, 1, -1]]
    assert not assignment.fixed_multiplicity


def test_score_takes_every_jet_by_its_likelier_parent_and_the_mass_leaves_isr_out():
    model = small_model()
    jets, mask = random_jets(6, 8)
    with torch.no_grad():
        _, normalised = model.encode_jets(jets, mask)
        # even jets to A, odd jets to B, and jet 0 to ISR, its likelier parent being B
        probabilities = torch.tensor([[0.6, 0.3, 0.1], [0.3, 0.6, 0.1]]).repeat(6, 4, 1)
        probabilities[:, 0] = torch.tensor([0.1, 0.3, 0.6])
        model.encode_jets = lambda *_: (probabilities, normalised)
        _, score, mass = model.hard_assignment_score(jets, mask)
        p4 = four_momenta(jets, model.index)
        real = mask.unsqueeze(-1).float()
        hard = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).repeat(6, 4, 1) * real
        hard[:, 0] = torch.tensor([0.0, 0.0, 1.0])
        every_jet = hard.clone()
        every_jet[:, 0] = torch.tensor([0.0, 1.0, 0.0])
        _, expected, _ = model.autoencode(model.parent_candidates(normalised, every_jet, p4))
        _, isr_left_out, _ = model.autoencode(model.parent_candidates(normalised, hard, p4))
    torch.testing.assert_close(score, expected.mean(dim=-1))
    assert not torch.allclose(score, isr_left_out.mean(dim=-1))
    torch.testing.assert_close(mass, average_mass(hard, p4))


@pytest.fixture(scope="module")
def qcd_data(generated):
    return from_nanoaod([generated["qcd"]], load_topology("pair_abc").with_selection(**LOOSE), require_truth=False)


@pytest.fixture(scope="module")
def trained(qcd_data, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("abc_run")
    topology = load_topology("pair_abc").with_selection(**LOOSE)
    trainer = AbcTrainer(topology, qcd_data, run_dir, SMALL, TrainConfig(epochs=8, batch_size=32, learning_rate=3e-3, seed=4))
    history = trainer.fit(progress=False)
    trainer.calibrate()
    return run_dir, history


def test_background_files_carry_their_event_weights(qcd_data):
    assert qcd_data.weights is not None and len(qcd_data.weights) == len(qcd_data) > 50
    assert np.all(qcd_data.weights > 0) and qcd_data.weights.std() > 0


def test_a_short_training_lowers_every_loss_term(trained):
    _, history = trained
    first, last = history[0], history[-1]
    for term in ("loss", "reconstruction", "crossed", "margin"):
        assert last[term] < first[term], (term, first[term], last[term])


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    run_dir, _ = trained
    path = tmp_path_factory.mktemp("abc_onnx") / "abc.onnx"
    contract = export_run(run_dir, path)
    assert contract.kind == "abc"
    assert contract.outputs == ["category_probabilities", "anomaly_score", "anomaly_score_decorrelated"]
    return path


def test_abc_models_refuse_float16_export(trained, tmp_path):
    run_dir, _ = trained
    with pytest.raises(PairhuntError, match="only SPA-NET models export in float16"):
        export_run(run_dir, tmp_path / "abc16.onnx", precision="float16")


@pytest.mark.parametrize("n_jets", [6, 8, 10, 13])
def test_export_parity_for_several_jet_counts(trained, exported, n_jets):
    run_dir, _ = trained
    path = exported
    model, _, _ = load_run(run_dir)
    jets, mask = random_jets(5, n_jets, seed=n_jets)
    with torch.no_grad():
        expected = model(jets, mask)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probabilities, score, decorrelated = session.run(None, {"jets": jets.numpy(), "mask": mask.numpy()})
    np.testing.assert_allclose(probabilities, expected["category_probabilities"].numpy(), atol=1e-4)
    np.testing.assert_allclose(score, expected["anomaly_score"].numpy(), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(decorrelated, expected["anomaly_score_decorrelated"].numpy(), atol=1e-2)


OUTPUTS = ["category_probabilities", "anomaly_score", "anomaly_score_decorrelated"]


def test_the_calibration_stage_rebuilt_from_the_run_s_table_reproduces_the_exported_model(trained, exported, qcd_data):
    """The graph cut after the anomaly score and joined to a stage built from the same table gives
    the exported file's outputs back: the cut is where the calibration starts, and the stage
    computes the mass the model calibrates in."""
    import onnx

    from pairhunt.train.abc_trainer import load_calibration
    from pairhunt.train.recalibrate import model_outputs, with_calibration

    run_dir, _ = trained
    rebuilt = with_calibration(onnx.load(str(exported)), FEATURES, load_calibration(run_dir))
    before, after = model_outputs(exported, qcd_data, OUTPUTS), model_outputs(rebuilt, qcd_data, OUTPUTS)
    for name in OUTPUTS[:2]:
        np.testing.assert_array_equal(after[name], before[name])
    np.testing.assert_allclose(after[OUTPUTS[2]], before[OUTPUTS[2]], atol=1e-4)
    assert {p.key: p.value for p in rebuilt.metadata_props} == {p.key: p.value for p in onnx.load(str(exported)).metadata_props}


def test_recalibrate_remakes_only_the_decorrelated_score_on_new_background(generated, exported, qcd_data, tmp_path, capsys):
    from pairhunt.assign.onnx import read_contract
    from pairhunt.cli import main
    from pairhunt.train.abc_trainer import normalised_weights
    from pairhunt.train.recalibrate import model_outputs

    out = tmp_path / "recalibrated.onnx"
    assert main(["recalibrate", str(exported), "--data", str(generated["qcd"]), "-o", str(out), "--bins", "4", "--smooth", "0"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.split("\nwrote ")[0])
    assert summary["events"] == len(qcd_data) and summary["bins"] == 4 and summary["smoothing"] == 0
    assert "torchvision" not in captured.err  # the exporter's own chatter stays out of the user's terminal
    assert read_contract(out) == read_contract(exported)
    before, after = model_outputs(exported, qcd_data, OUTPUTS), model_outputs(out, qcd_data, OUTPUTS)
    for name in OUTPUTS[:2]:
        np.testing.assert_array_equal(after[name], before[name])
    assert not np.allclose(after[OUTPUTS[2]], before[OUTPUTS[2]])  # four bins, not the run's own table
    # calibrated on these very events: a cut keeps its fraction of their weight
    weights = normalised_weights(qcd_data)
    for cut, kept in ((0.5, 0.5), (0.8, 0.2)):
        assert weights[after[OUTPUTS[2]] > cut].sum() / weights.sum() == pytest.approx(kept, abs=0.06)


def test_recalibrate_refuses_a_stage_that_was_not_joined_as_built(generated, exported, tmp_path, capsys, monkeypatch):
    """The self-check compares the written graph with pairhunt's stage on the calibration events: a
    graph joined with any other table (here each quantile 5 % higher) is refused, nothing written."""
    import pairhunt.train.recalibrate as recalibration
    from pairhunt.cli import main

    joined = recalibration.with_calibration

    def shifted(model, features, table):
        return joined(model, features, dict(table, quantiles=(np.array(table["quantiles"]) * 1.05).tolist()))

    monkeypatch.setattr(recalibration, "with_calibration", shifted)
    out = tmp_path / "recalibrated.onnx"
    with pytest.raises(SystemExit) as stop:
        main(["recalibrate", str(exported), "--data", str(generated["qcd"]), "-o", str(out), "--bins", "4", "--smooth", "0"])
    assert stop.value.code == 2
    assert "the joined calibration stage differs from pairhunt's" in capsys.readouterr().err
    assert not out.exists()


def test_recalibrate_refuses_a_model_that_is_not_abc_and_an_output_it_cannot_write(generated, tmp_path, capsys):
    from pairhunt.assign.onnx import resolve_model_path
    from pairhunt.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["recalibrate", str(resolve_model_path("ttbar_allhad")), "--data", str(generated["qcd"]), "-o", str(tmp_path / "x.onnx")])
    assert stop.value.code == 2
    assert "only ABC models are recalibrated" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as stop:  # an output that cannot be written: one line, before the work
        main(["recalibrate", str(resolve_model_path("pair_abc")), "--data", str(generated["qcd"]), "-o", str(tmp_path / "file" / "x.onnx")])
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith(f"pairhunt recalibrate: error: cannot write {tmp_path / 'file' / 'x.onnx'}")


def test_an_ensemble_assigns_with_its_first_member_and_scores_with_all(trained, qcd_data, tmp_path):
    """Members of one recipe and several seeds: the first member's categories and mass, the
    geometric mean of every member's score, calibrated like one model; the ONNX graph agrees."""
    import shutil

    from pairhunt.train.abc_ensemble import AbcEnsemble, member_dirs, write_members
    from pairhunt.train.abc_trainer import calibrate_ensemble

    first, _ = trained
    shutil.copytree(first, tmp_path / "seed_4")
    topology = load_topology("pair_abc").with_selection(**LOOSE)
    second = AbcTrainer(topology, qcd_data, tmp_path / "seed_5", SMALL, TrainConfig(epochs=2, batch_size=32, learning_rate=3e-3, seed=5))
    second.fit(progress=False)
    write_members(tmp_path, [tmp_path / "seed_4", tmp_path / "seed_5"])
    calibrate_ensemble(tmp_path, qcd_data)

    ensemble, _, meta = load_run(tmp_path)
    assert isinstance(ensemble, AbcEnsemble) and meta["ensemble"] == ["seed_4", "seed_5"]
    members = [load_run(tmp_path / name)[0] for name in meta["ensemble"]]
    jets, mask = random_jets(7, 10, seed=3)
    with torch.no_grad():
        out = ensemble(jets, mask)
        singles = [member.hard_assignment_score(jets, mask) for member in members]
    torch.testing.assert_close(out["category_probabilities"], singles[0][0])
    torch.testing.assert_close(out["anomaly_score"], torch.sqrt(singles[0][1] * singles[1][1]))
    decorrelated = out["anomaly_score_decorrelated"]
    assert torch.all((decorrelated >= 0) & (decorrelated <= 1))

    path = tmp_path / "ensemble.onnx"
    export_run(tmp_path, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probabilities, score, _ = session.run(None, {"jets": jets.numpy(), "mask": mask.numpy()})
    np.testing.assert_allclose(probabilities, out["category_probabilities"].numpy(), atol=1e-4)
    np.testing.assert_allclose(score, out["anomaly_score"].numpy(), atol=1e-4, rtol=1e-4)

    shutil.rmtree(tmp_path / "seed_5")
    with pytest.raises(PairhuntError, match="member runs that are missing"):
        member_dirs(tmp_path)


def test_a_run_whose_best_epoch_keeps_much_pt_in_isr_is_named_stuck():
    from pairhunt.train.abc_trainer import isr_start_warning

    def epochs(*pairs):
        return [{"val_objective": -loss, "val_isr": isr} for loss, isr in pairs]

    assert isr_start_warning([]) is None
    assert isr_start_warning(epochs((3.0, 0.5), (1.0, 0.1), (0.7, 0.02))) is None
    warning = isr_start_warning(epochs((3.0, 0.6), (2.4, 0.38)))
    assert warning.startswith("its best epoch sends 38% of the background pT to ISR") and "--epochs" in warning
    # the best epoch counts, not the last, unless the run stopped early there
    assert isr_start_warning(epochs((0.7, 0.03), (0.9, 0.3))) is None
    stopped = epochs((0.7, 0.03), (0.9, 0.3))
    stopped[-1]["stopped"] = "a rule"
    assert isr_start_warning(stopped).startswith("its best epoch sends 30%")


def test_stop_isr_share_ends_a_run_at_the_first_validation_below_it(qcd_data, tmp_path):
    """Validated every two steps, a run with the rule is the run without it up to the first
    validation whose background ISR share is below the threshold (bitwise), ends there with that
    state in best.pt, and a resume trains nothing more."""
    topology = load_topology("pair_abc").with_selection(**LOOSE)
    config = TrainConfig(epochs=6, batch_size=16, learning_rate=1e-3, seed=6, validate_every=2)
    falling = dataclasses.replace(SMALL, isr_weight=8.0)  # the ISR share of this small model falls (noisily)
    free = AbcTrainer(topology, qcd_data, tmp_path / "free", falling, config)
    history = free.fit(progress=False)
    per_epoch = -(-len(free.train) // 16)
    epoch_ends = {e * per_epoch for e in range(1, 7)}
    assert [record["step"] for record in history] == sorted(set(range(2, 6 * per_epoch + 1, 2)) | epoch_ends)
    assert [record["epoch"] for record in history if record["step"] in epoch_ends] == [1, 2, 3, 4, 5, 6]

    shares = [record["val_isr"] for record in history]
    last_low = [i for i in range(1, len(shares)) if shares[i] < min(shares[:i])][-1]  # the latest new low
    threshold = (shares[last_low] + min(shares[:last_low])) / 2
    stopped = AbcTrainer(topology, qcd_data, tmp_path / "stopped", falling, config, stop_isr_share=threshold)
    short = stopped.fit(progress=False)
    assert [record["val_isr"] for record in short] == shares[: last_low + 1]
    assert short[-1]["stopped"].startswith("validation ISR pT share") and not any("stopped" in r for r in short[:-1])
    best = torch.load(tmp_path / "stopped" / "best.pt", weights_only=False)
    last = torch.load(tmp_path / "stopped" / "last.pt", weights_only=False)
    assert best["best"] == short[-1]["val_objective"]
    for name, value in best["model"].items():
        assert torch.equal(value, last["model"][name])

    resumed = AbcTrainer(topology, qcd_data, tmp_path / "stopped", falling, config, stop_isr_share=threshold)
    resumed.resume()
    assert resumed.fit(progress=False) == short


def test_a_stop_isr_share_outside_zero_to_one_is_a_clear_error(qcd_data, tmp_path):
    topology = load_topology("pair_abc").with_selection(**LOOSE)
    with pytest.raises(PairhuntError, match="must lie between 0 and 1"):
        AbcTrainer(topology, qcd_data, tmp_path, SMALL, TrainConfig(epochs=1), stop_isr_share=3.0)


def test_a_model_of_the_other_kind_is_a_clear_error():
    topology = load_topology("pair_abc")
    with pytest.raises(PairhuntError, match="'abc' model"):
        OnnxAssignment(model="pair_abc").required_features(topology)
    with pytest.raises(PairhuntError, match="'spanet' model"):
        AbcAssignment(model="ttbar_allhad").required_features(load_topology("ttbar_allhad"))


def test_shipped_model_through_the_runner(generated):
    """ABC and mass asymmetry on signal and QCD: masses, scores and the (mass, score) histogram."""
    topology = load_topology("pair_abc").with_selection(ht_min=500.0)
    methods = [make_method("abc=pair_abc"), make_method("mass_asymmetry")]
    assert isinstance(methods[0], AbcAssignment)
    fileset = {"gluino": normalise_files([str(generated["gluino"])]), "qcd": normalise_files([str(generated["qcd"])])}
    result = run_fileset(fileset, PairProcessor(topology, methods), executor="futures", workers=2, progress=False)
    hists = result.output["hists"]
    for dataset in fileset:
        selected = result.output["cutflow"][dataset]["events"]["HT > 500 GeV"]
        assert selected > 0
        abc_events = hists["mass_average"][{"dataset": dataset, "method": "abc"}].sum().value
        scores = hists["mass_score"][{"dataset": dataset, "method": "abc"}].sum(flow=True).value
        assert scores == pytest.approx(abc_events) and abc_events > 0
    assert "mass_asymmetry" not in hists["score"].axes["method"]  # no score, no entries
    # signal reconstructs far above the QCD average mass
    masses = {d: hists["mass_average"][{"dataset": d, "method": "abc"}] for d in fileset}
    mean = {d: np.average(h.axes[0].centers, weights=h.values()) for d, h in masses.items()}
    assert mean["gluino"] > 600.0 > mean["qcd"]


def test_shipped_model_leaves_radiation_to_isr_and_keeps_decay_products(generated):
    """On gluinos (truth-labelled), jets matched to no decay quark go to ISR far more often."""
    topology = load_topology("pair_abc").with_selection(ht_min=0.0)
    data = from_nanoaod([generated["gluino"]], topology)
    matched = np.zeros(data.mask.shape, dtype=bool)
    event, _, _ = np.nonzero(data.targets >= 0)
    matched[event, data.targets[data.targets >= 0]] = True
    assignment = AbcAssignment(model="pair_abc").assign(data.kinematics, topology)
    isr = (assignment.parent < 0) & data.mask
    unmatched = data.mask & ~matched
    assert unmatched.sum() > 100 and matched.sum() > 500
    assert isr[unmatched].mean() > 0.2
    assert isr[unmatched].mean() > 3 * isr[matched].mean()


def test_shipped_model_sends_planted_soft_jets_to_isr(generated):
    """Toy: one extra 40 GeV jet planted at random (eta, phi) in every gluino event goes to ISR
    far more often than the event's own truth-matched jets."""
    topology = load_topology("pair_abc").with_selection(ht_min=0.0, keep=9)
    data = from_nanoaod([generated["gluino"]], topology)
    rng = np.random.default_rng(3)
    n = len(data)
    phi = rng.uniform(-np.pi, np.pi, n)
    planted = np.stack([np.full(n, np.log1p(40.0)), rng.uniform(-2.4, 2.4, n), np.sin(phi), np.cos(phi), np.full(n, np.log1p(6.0))], axis=-1)
    jets = np.concatenate([data.features, planted[:, None, :]], axis=1).astype(np.float32)
    mask = np.concatenate([data.mask, np.ones((n, 1), dtype=bool)], axis=1)
    session = ort.InferenceSession(str(AbcAssignment(model="pair_abc").path), providers=["CPUExecutionProvider"])
    probabilities = session.run(["category_probabilities"], {"jets": jets, "mask": mask})[0]
    isr = probabilities.argmax(axis=-1) == 2
    matched = np.zeros(data.mask.shape, dtype=bool)
    event, _, _ = np.nonzero(data.targets >= 0)
    matched[event, data.targets[data.targets >= 0]] = True
    assert isr[:, -1].mean() > 0.4
    assert isr[:, -1].mean() > 3 * isr[:, :-1][matched].mean()


def test_symmetry_augmentation_rotates_phi_and_mirrors_eta_only():
    from pairhunt.train.augment import Symmetry, random_symmetry

    jets, mask = random_jets(64, 8)
    jets = jets * mask[..., None]
    features = load_topology("pair_abc").jets.features
    assert [f.name for f in features] == FEATURES
    symmetry = Symmetry(list(features))
    out = symmetry(jets, *random_symmetry(len(jets), torch.Generator().manual_seed(1)))
    again = symmetry(jets, *random_symmetry(len(jets), torch.Generator().manual_seed(1)))
    torch.testing.assert_close(out, again)  # reproducible from the seed
    index = {name: FEATURES.index(name) for name in FEATURES}
    for name in ("log_pt", "log_mass"):
        torch.testing.assert_close(out[..., index[name]], jets[..., index[name]])
    # |eta| kept, the sign flipped for a whole event or not at all
    eta_ratio = (out[..., index["eta"]] / jets[..., index["eta"]].where(mask, torch.ones(()))).where(mask, torch.ones(()))
    assert torch.allclose(eta_ratio.abs(), torch.ones(()))
    assert ((eta_ratio == eta_ratio[:, :1]) | ~mask).all()
    assert (eta_ratio[:, 0] < 0).any() and (eta_ratio[:, 0] > 0).any()
    # one rotation angle per event: azimuthal differences between its jets are unchanged
    phi = torch.atan2(jets[..., index["sin_phi"]], jets[..., index["cos_phi"]])
    rotated = torch.atan2(out[..., index["sin_phi"]], out[..., index["cos_phi"]])
    shift = torch.remainder(rotated - phi, 2 * torch.pi)
    spread = torch.remainder(shift - shift[:, :1] + torch.pi, 2 * torch.pi) - torch.pi
    assert spread[mask].abs().max() < 1e-4
    assert (out[~mask] == 0).all()


def test_calibration_of_a_model_that_sends_every_jet_to_isr_is_a_clear_error():
    from pairhunt.train.abc_trainer import mass_calibration
    from pairhunt.train.data import TrainingData

    class EverythingToIsr:
        def eval(self):
            return self

        def hard_assignment_score(self, jets, mask):  # empty candidates: one average mass for all
            return None, torch.rand(len(jets)), torch.zeros(len(jets))

    jets, mask = random_jets(300, 8)
    data = TrainingData(
        features=jets.numpy(), mask=mask.numpy(), targets=np.zeros((300, 2, 3), dtype=np.int64),
        multiplicity=mask.sum(dim=1).numpy(), weights=None,
    )
    with pytest.raises(PairhuntError, match="1 distinct average masses for 300 events"):
        mass_calibration(EverythingToIsr(), data)


def test_train_abc_seeds_makes_an_ensemble_calibrated_on_the_given_background(generated, tmp_path):
    """The command line: one member per seed, ensemble.json, and the calibration made on
    ``--calibration-data`` instead of the training events."""
    import json

    import yaml

    from pairhunt.cli import main

    topology = tmp_path / "loose.yaml"
    topology.write_text(yaml.safe_dump(load_topology("pair_abc").with_selection(**LOOSE).to_dict()))
    out = tmp_path / "run"
    common = ["--topology", str(topology), "--epochs", "8", "--batch-size", "32", "--learning-rate", "3e-3", "--dim", "16",
              "--heads", "2", "--layers", "2", "--threads", "1", "--no-progress"]
    argv = ["train", "abc", "--data", str(generated["qcd"]), "-o", str(out), "--seeds", "4", "5", *common]
    calibration = [str(generated["qcd"]), str(generated["gluino"])]
    assert main(argv + ["--calibration-data", *calibration]) == 0
    # the member with the best validation objective comes first: it assigns the jets
    members = json.loads((out / "ensemble.json").read_text())["members"]
    assert sorted(members) == ["seed_4", "seed_5"]
    assert best_validation(out / members[0]) >= best_validation(out / members[1])
    calibrated = json.loads((out / "calibration.json").read_text())["events"]
    other = from_nanoaod(calibration, load_topology(topology), require_truth=False)
    training = from_nanoaod([generated["qcd"]], load_topology(topology), require_truth=False)
    assert calibrated == len(other) > len(training)
    assert json.loads((out / "seed_5" / "config.json").read_text())["training"]["seed"] == 5
    assert export_run(out, tmp_path / "ensemble.onnx").kind == "abc"


def test_train_abc_stop_isr_share_on_the_command_line(generated, tmp_path, capsys):
    """--stop-isr-share with --validate-every ends the run at the first validation below it and is
    recorded in the run's config; a share outside (0, 1) is one clear line and a non-zero exit."""
    import json

    import yaml

    from pairhunt.cli import main

    topology = tmp_path / "loose.yaml"
    topology.write_text(yaml.safe_dump(load_topology("pair_abc").with_selection(**LOOSE).to_dict()))
    out = tmp_path / "run"
    common = ["train", "abc", "--data", str(generated["qcd"]), "--topology", str(topology), "--epochs", "2", "--batch-size", "32",
              "--dim", "16", "--heads", "2", "--layers", "2", "--threads", "1", "--no-progress", "--validate-every", "1"]
    assert main([*common, "-o", str(out), "--stop-isr-share", "0.999"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1 and history[0]["step"] == 1 and history[0]["stopped"].endswith("below 0.999")
    config = json.loads((out / "config.json").read_text())
    assert config["stop_isr_share"] == 0.999 and config["training"]["validate_every"] == 1

    # the default recipe stops by the ISR share; 0 turns the rule off
    from pairhunt.cli import build_parser

    defaults = build_parser().parse_args(["train", "abc", "--data", "bkg.root", "-o", "run"])
    assert (defaults.epochs, defaults.validate_every, defaults.stop_isr_share) == (8, 20, 0.03)
    assert main([*common, "-o", str(tmp_path / "free"), "--stop-isr-share", "0", "--epochs", "1"]) == 0
    free = json.loads((tmp_path / "free" / "history.json").read_text())
    assert len(free) == free[-1]["step"] > 1 and not any("stopped" in record for record in free)  # every step, to the end
    assert json.loads((tmp_path / "free" / "config.json").read_text())["stop_isr_share"] is None
    # a run the rule never stops says so
    capsys.readouterr()
    assert main([*common, "-o", str(tmp_path / "never"), "--stop-isr-share", "1e-6", "--epochs", "1"]) == 0
    assert "never fell below 1e-06 in 1 epochs" in capsys.readouterr().err

    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main([*common, "-o", str(tmp_path / "bad"), "--stop-isr-share", "3"])
    assert stop.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "must lie between 0 and 1" in err[0]

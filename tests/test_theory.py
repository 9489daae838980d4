"""The theory map: permutation invariance, the contrastive loss on toy clusters, export parity,
reproducibility by seed, the novelty test's unlike flag, disjoint sets, the window's background
subtraction, and `pairhunt train embed` / `export` / `characterize` on a real run."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the 'train' extra")

from pairhunt.cli import main  # noqa: E402
from pairhunt.errors import PairhuntError  # noqa: E402
from pairhunt.theory import SetNovelty, TheoryDensity, TheoryEvents, TheoryMap, disjoint_sets, draw_sets, window_set  # noqa: E402
from pairhunt.train.config import EmbedConfig  # noqa: E402
from pairhunt.train.embed_model import SetEmbedding, contrastive_loss  # noqa: E402
from pairhunt.train.embed_trainer import EmbedTrainer, export_embedding, load_embedding_run  # noqa: E402

SOURCE = {"topology": "toy", "topology_inputs": [], "method": "toy"}
TINY = EmbedConfig(hidden=16, latent=2, set_size=8, steps=300, validate_every=50, library_sets=60, seed=3)


def toy_theory(centre: float, n: int, seed: int, weighted: bool = False, shift_d: float = 0.0) -> TheoryEvents:
    """Four features around ``centre`` (the first one a 'mass' far apart, the rest overlapping;
    ``shift_d`` moves the last one, which no library theory differs in)."""
    rng = np.random.default_rng(seed)
    features = rng.normal(0.0, 1.0, (n, 4)).astype(np.float32)
    features[:, 0] += centre
    features[:, 1] += 0.3 * centre
    features[:, 3] += shift_d
    weight = rng.uniform(0.5, 2.0, n) if weighted else np.ones(n)
    return TheoryEvents(features, weight, np.exp(6 + 0.1 * features[:, 0]).astype(np.float64), ("a", "b", "c", "d"), np.full(n, "toy"))


def toy_library() -> dict[str, TheoryEvents]:
    return {"low": toy_theory(0.0, 600, 1), "middle": toy_theory(2.0, 600, 2, weighted=True), "high": toy_theory(4.0, 600, 3)}


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("embed") / "run"
    history = EmbedTrainer(toy_library(), run_dir, TINY, SOURCE).fit(progress=False)
    return run_dir, history


def test_contrastive_loss_pulls_together_and_pushes_apart_up_to_the_margin():
    same = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    assert contrastive_loss(same, torch.tensor([0, 0]), 1.0) == pytest.approx(0.0)  # one theory, one point
    assert float(contrastive_loss(same, torch.tensor([0, 1]), 1.0)) == pytest.approx(1.0, abs=1e-5)  # two theories on one point: margin²
    apart = torch.tensor([[0.0, 0.0], [1.5, 0.0]])
    assert contrastive_loss(apart, torch.tensor([0, 1]), 1.0) == pytest.approx(0.0)  # beyond the margin: no push
    assert contrastive_loss(apart, torch.tensor([0, 0]), 1.0) == pytest.approx(2.25)  # one theory apart: d²


def test_embedding_ignores_event_order_and_set_size():
    torch.manual_seed(0)
    model = SetEmbedding(np.zeros(4), np.ones(4), hidden=16, latent=3).eval()
    events = torch.randn(5, 12, 4)
    weights = torch.ones(5, 12)
    with torch.no_grad():
        reference = model(events, weights)
        shuffled = model(events[:, torch.randperm(12)], weights)
        doubled = model(torch.cat([events, events], dim=1), torch.ones(5, 24))
    torch.testing.assert_close(shuffled, reference, atol=1e-6, rtol=0)
    torch.testing.assert_close(doubled, reference, atol=1e-6, rtol=0)


def test_toy_theories_form_separate_clusters(toy_run):
    run_dir, history = toy_run
    assert history[-1]["validation_loss"] < 0.5 * history[0]["validation_loss"]
    library = json.loads((run_dir / "library.json").read_text())
    points = {name: np.array(p) for name, p in library["library"].items()}
    centres = {name: p.mean(axis=0) for name, p in points.items()}
    spread = max(np.linalg.norm(p - centres[name], axis=1).mean() for name, p in points.items())
    gaps = [np.linalg.norm(centres[a] - centres[b]) for a in centres for b in centres if a < b]
    assert min(gaps) > 3 * spread
    # disjoint held-out sets of each theory are recognised
    model, meta, _ = load_embedding_run(run_dir)
    density, novelty = TheoryDensity(points, library["thresholds"]), SetNovelty.from_dict(library["novelty"])
    rng = np.random.default_rng(9)

    def placed(events: TheoryEvents) -> tuple[np.ndarray, np.ndarray]:
        sets = disjoint_sets(events.weight, TINY.set_size, rng)
        with torch.no_grad():
            pooled = model.pool(torch.from_numpy(events.features[sets]), torch.ones(sets.shape))
            embedded = model.rho(pooled).numpy()
        nearest = np.array(density.classes)[density.probabilities(embedded).argmax(axis=1)]
        return nearest, density.unlike(embedded, TINY.set_size), novelty.unlike(pooled.numpy(), TINY.set_size)

    for k, (name, centre) in enumerate([("low", 0.0), ("middle", 2.0), ("high", 4.0)]):
        nearest, on_map, in_pooled = placed(toy_theory(centre, 400, 100 + k))
        assert np.mean(nearest == name) > 0.9 and np.mean(on_map) < 0.2 and np.mean(in_pooled) < 0.2
    # a theory that differs from "middle" only where no library theory differs lands on it on
    # the map, which has no reason to keep that direction; the novelty test, on the pooled
    # representation before the map, flags it
    nearest, on_map, in_pooled = placed(toy_theory(2.0, 400, 200, shift_d=2.0))
    assert np.mean(nearest == "middle") > 0.8 and np.mean(in_pooled) > 0.7 and np.mean(in_pooled) > np.mean(on_map) + 0.3


def test_same_seed_same_map_other_seed_other_map(toy_run, tmp_path):
    run_dir, _ = toy_run
    again = tmp_path / "again"
    EmbedTrainer(toy_library(), again, TINY, SOURCE).fit(progress=False)
    assert (again / "library.json").read_text() == (run_dir / "library.json").read_text()
    other = tmp_path / "other"
    EmbedTrainer(toy_library(), other, EmbedConfig(**{**TINY.__dict__, "seed": 4}), SOURCE).fit(progress=False)
    assert (other / "library.json").read_text() != (run_dir / "library.json").read_text()


def test_export_parity_and_contract(toy_run, tmp_path):
    run_dir, _ = toy_run
    path = tmp_path / "map.onnx"
    contract = export_embedding(run_dir, path)
    assert contract.classes == ["low", "middle", "high"] and contract.set_size == TINY.set_size
    theory_map = TheoryMap(path)
    model, _, _ = load_embedding_run(run_dir)
    rng = np.random.default_rng(2)
    for n_sets, size in ((1, 8), (7, 8), (3, 50)):  # any number of sets, any set size
        features = rng.normal(0, 2, (n_sets, size, 4)).astype(np.float32)
        weights = rng.uniform(0.5, 1.5, (n_sets, size)).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(features), torch.from_numpy(weights)).numpy()
        np.testing.assert_allclose(theory_map.embed(features, weights), expected, atol=1e-5)
        # the second output, the pooled representation, through the novelty test's distances
        placement = theory_map.place(features, weights, size)
        with torch.no_grad():
            pooled = model.pool(torch.from_numpy(features), torch.from_numpy(weights)).numpy()
        np.testing.assert_allclose(placement.distances, theory_map.novelty.distances(pooled), rtol=1e-3)
        np.testing.assert_array_equal(placement.unlike, placement.unlike_on_map | placement.unlike_pooled)
        order = rng.permutation(size)
        np.testing.assert_allclose(theory_map.embed(features[:, order], weights[:, order]), expected, atol=1e-5)
    with pytest.raises(PairhuntError, match=r"\[sets, events, 4\]"):
        theory_map.embed(np.zeros((1, 8, 3)), np.ones((1, 8)))
    # an assignment model is not a theory map, and a theory map is not an assignment model
    from pairhunt.assign.onnx import read_contract

    with pytest.raises(PairhuntError, match="theory map"):
        read_contract(path)
    with pytest.raises(PairhuntError, match="not a theory map"):
        TheoryMap("pair_abc")
    from pairhunt.theory import EmbeddingContract

    older = json.loads(contract.to_json())
    del older["novelty"]  # a map exported before the pooled-representation test
    with pytest.raises(PairhuntError, match="train it again"):
        EmbeddingContract.from_json(json.dumps(older))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(PairhuntError, match="is not an ONNX model onnxruntime can load"):
        TheoryMap(broken)
    with pytest.raises(PairhuntError, match="is not an ONNX model onnxruntime can load"):
        read_contract(broken)


def test_density_flags_points_far_from_every_theory():
    rng = np.random.default_rng(1)
    library = {"a": rng.normal(0, 0.1, (200, 2)), "b": rng.normal(0, 0.1, (200, 2)) + [2.0, 0.0]}
    density = TheoryDensity(library)
    density.calibrate({"a": rng.normal(0, 0.1, (500, 2)), "b": rng.normal(0, 0.1, (500, 2)) + [2.0, 0.0]}, 0.05, set_size=32)
    # sets of 8 scatter twice as far: their thresholds are lower, so as many of them pass
    density.calibrate({"a": rng.normal(0, 0.2, (500, 2)), "b": rng.normal(0, 0.2, (500, 2)) + [2.0, 0.0]}, 0.05, set_size=8)
    probabilities = density.probabilities(np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0]]))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert probabilities[0, 0] > 0.99 and probabilities[1, 1] > 0.99
    assert density.unlike(np.array([[1.0, 0.0], [0.0, 3.0]]), 32).all()  # between and beside the clusters
    own = density.unlike(rng.normal(0, 0.1, (2000, 2)), 32)
    assert 0.02 < own.mean() < 0.09  # about the calibrated 5 %
    wide = rng.normal(0, 0.2, (2000, 2))
    assert density.unlike(wide, 32).mean() > 0.3 and 0.02 < density.unlike(wide, 8).mean() < 0.09
    assert density.unlike(wide, 12).mean() == density.unlike(wide, 8).mean()  # the largest calibrated size not above
    with pytest.raises(PairhuntError, match="calibrate"):
        TheoryDensity(library).unlike(wide, 32)


def test_novelty_flags_sets_unlike_every_theory():
    rng = np.random.default_rng(1)
    covariance = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]])

    def sets(centre: list[float], size: int, n: int) -> np.ndarray:
        return rng.multivariate_normal(centre, covariance, (n, size)).mean(axis=1)

    novelty = SetNovelty.fit({"a": sets([0, 0, 0], 32, 300), "b": sets([3, 0, 0], 32, 300)}, shrinkage=0.1)
    novelty.calibrate({"a": sets([0, 0, 0], 32, 2000), "b": sets([3, 0, 0], 32, 2000)}, 0.05, set_size=32)
    # sets of 8 scatter twice as far: their thresholds are larger, so as many of them pass
    novelty.calibrate({"a": sets([0, 0, 0], 8, 2000), "b": sets([3, 0, 0], 8, 2000)}, 0.05, set_size=8)
    assert 0.02 < novelty.unlike(sets([0, 0, 0], 32, 4000), 32).mean() < 0.08  # about the calibrated 5 %
    assert 0.02 < novelty.unlike(sets([0, 0, 0], 8, 4000), 8).mean() < 0.08
    assert novelty.unlike(sets([0, 0, 0], 8, 4000), 32).mean() > 0.5  # a small set judged as a large one
    thresholds_12, thresholds_8 = novelty.thresholds_for(12), novelty.thresholds_for(8)
    np.testing.assert_array_equal(thresholds_12, thresholds_8)  # the largest calibrated size not above
    # a shift against the correlation of the first two features, and one in a feature no theory
    # differs in: each far in Mahalanobis distance though close in each feature alone
    assert novelty.unlike(sets([0.4, -0.4, 0], 32, 500), 32).mean() > 0.9
    assert novelty.unlike(sets([1.5, 0, 1.0], 32, 500), 32).mean() > 0.9
    again = SetNovelty.from_dict(json.loads(json.dumps(novelty.to_dict())))
    probe = sets([0.2, 0.1, 0.3], 8, 50)
    np.testing.assert_allclose(again.distances(probe), novelty.distances(probe))
    with pytest.raises(PairhuntError, match="calibrate"):
        SetNovelty.fit({"a": sets([0, 0, 0], 32, 50)}, 0.1).unlike(probe, 32)
    with pytest.raises(PairhuntError, match="shrinkage"):
        SetNovelty.fit({"a": sets([0, 0, 0], 32, 50)}, 1.0)
    with pytest.raises(PairhuntError, match="covariance"):
        SetNovelty.fit({"a": sets([0, 0, 0], 32, 3)}, 0.1)


def test_sets_are_drawn_by_weight_and_test_sets_are_disjoint():
    rng = np.random.default_rng(4)
    weight = np.array([0.0, 1.0, 3.0] * 200)
    drawn = draw_sets(weight, 16, 500, rng)
    assert not np.isin(drawn, np.flatnonzero(weight == 0)).any()
    assert np.mean(weight[drawn] == 3.0) == pytest.approx(0.75, abs=0.02)
    sets = disjoint_sets(weight, 16, rng)
    assert len(np.unique(sets)) == sets.size and not np.isin(sets, np.flatnonzero(weight == 0)).any()
    with pytest.raises(PairhuntError, match="positive weight"):
        draw_sets(np.zeros(5), 4, 2, rng)


def falling_spectrum_with_bump(n_background: int, n_signal: int, seed: int) -> TheoryEvents:
    rng = np.random.default_rng(seed)
    mass = np.concatenate([400 + rng.exponential(300, n_background), rng.normal(1000, 40, n_signal)])
    features = np.stack([mass / 1000, np.r_[np.zeros(n_background), np.ones(n_signal)]], axis=1).astype(np.float32)
    return TheoryEvents(features, np.ones(len(mass)), mass, ("x", "is_signal"), np.full(len(mass), "data"))


def test_window_set_subtracts_the_sideband_background():
    events = falling_spectrum_with_bump(20000, 800, seed=5)
    window = window_set(events, 900.0, 1100.0)
    in_window = (events.mass >= 900) & (events.mass < 1100)
    true_background = np.sum(in_window[:20000])
    assert window.description["background_estimate"] == pytest.approx(true_background, rel=0.1)
    assert np.all(window.weights[in_window] == 1) and np.all(window.weights[~in_window] <= 0)
    # the set's weighted mean of the signal label is close to 1: the background is subtracted
    pooled = np.sum(window.weights * events.features[:, 1]) / np.sum(window.weights)
    assert pooled == pytest.approx(1.0, abs=0.2)
    raw = window_set(events, 900.0, 1100.0, raw=True)
    assert np.all(raw.weights == in_window)
    with pytest.raises(PairhuntError, match="no excess"):
        window_set(falling_spectrum_with_bump(20000, 0, seed=6), 900.0, 1100.0)


def test_a_window_whose_resamples_keep_no_excess_is_refused_in_one_line(toy_run, tmp_path):
    from pairhunt.theory.characterize import WindowSet, characterize

    run_dir, _ = toy_run
    export_embedding(run_dir, tmp_path / "map.onnx")
    rng = np.random.default_rng(3)
    # one signal-region event against a subtraction of almost its weight: about half of the
    # resamples stay positive, fewer than the 5,000 asked within the 1,600 drawn at most
    weak = WindowSet(rng.normal(0, 1, (2, 4)).astype(np.float32), np.array([1.0, -0.999]), {})
    with pytest.raises(PairhuntError, match="too weak"):
        characterize(TheoryMap(tmp_path / "map.onnx"), weak, bootstrap=5000)


@pytest.fixture(scope="module")
def library_run(generated, tmp_path_factory):
    """`pairhunt run` over four generated theories with the six-jet pair topology."""
    from pairhunt.cli import main

    directory = tmp_path_factory.mktemp("theory")
    names = ("gluino", "gluino-cascade", "stop", "ttbar")
    (directory / "fileset.json").write_text(json.dumps({n: [str(generated[n])] for n in names}))
    out = directory / "run"
    assert main(["run", str(directory / "fileset.json"), "-o", str(out), "--topology", "pair_3body",
                 "--method", "mass_asymmetry_6", "--no-progress"]) == 0
    return out


def test_train_export_and_characterize_on_a_real_run(library_run, tmp_path, capsys):
    run = tmp_path / "embed"
    assert main(["train", "embed", str(library_run), "--method", "mass_asymmetry_6", "--theories", "gluino", "gluino-cascade", "ttbar",
                 "-o", str(run), "--set-size", "4", "--steps", "40", "--validate-every", "20", "--library-sets", "30",
                 "--max-events", "150", "--no-progress"]) == 0
    used = json.loads((run / "config.json").read_text())["events"]
    assert used["gluino"]["train"] + used["gluino"]["validation"] == 150  # the first 150 of ~190
    model = tmp_path / "map.onnx"
    assert main(["export", str(run), "-o", str(model)]) == 0
    out = tmp_path / "characterized"
    assert main(["characterize", str(library_run), "--model", str(model), "--data", "stop", "--window", "300", "1500", "--raw",
                 "--bootstrap", "20", "-o", str(out)]) == 0
    result = json.loads((out / "characterize.json").read_text())
    assert {row["theory"] for row in result["ranking"]} == {"gluino", "gluino-cascade", "ttbar"}
    assert sum(row["probability"] for row in result["ranking"]) == pytest.approx(1.0)
    assert len(result["resampled_points"]) == 20 and (out / "map.png").stat().st_size > 0
    counts = result["inputs"]["events"]["stop"]
    assert result["signal_region_events"] <= counts["used"] <= counts["selected"] <= counts["read"]
    capsys.readouterr()
    # a map trained on one topology refuses a run of another, in one line
    with pytest.raises(SystemExit) as stopped:
        main(["characterize", str(library_run), "--model", "theory_map", "--data", "stop", "--window", "300", "1500", "-o", str(tmp_path / "x")])
    assert stopped.value.code == 2
    assert "trained on topology 'pair_abc'" in capsys.readouterr().err


def test_shipped_theory_map_holds_the_library():
    theory_map = TheoryMap("theory_map")
    contract = theory_map.contract
    assert (contract.topology, contract.method) == ("pair_abc", "mass_asymmetry_6")
    gluinos = [c for c in contract.classes if c.startswith("gluino_")]
    cascades = [c for c in contract.classes if c.startswith("cascade_")]
    assert len(gluinos) >= 5 and len(cascades) >= 2 and {"qcd", "ttbar"} <= set(contract.classes)
    assert 2 <= contract.latent <= 4
    points = theory_map.embed(np.zeros((2, contract.set_size, len(contract.features))), np.ones((2, contract.set_size)))
    assert points.shape == (2, contract.latent) and np.isfinite(points).all()
    placement = theory_map.place(np.zeros((2, contract.set_size, len(contract.features))), np.ones((2, contract.set_size)), contract.set_size)
    assert placement.distances.shape == (2, len(contract.classes)) and np.isfinite(placement.distances).all()
    # the novelty test carries every theory, and each theory's own centre is inside its region
    assert theory_map.novelty.classes == contract.classes
    assert not theory_map.novelty.unlike(theory_map.novelty.means, contract.set_size).any()

"""Resonant anomaly detection: regions, k-fold isolation, the flow, CWoLa and CATHODE on toys,
and `pairhunt anomaly` on a real run's per-event table."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest

pytest.importorskip("torch", reason="needs the 'anomaly' extra")
pytest.importorskip("zuko", reason="needs the 'anomaly' extra")

from pairhunt.anomaly import (  # noqa: E402
    AnomalySample, ClassifierConfig, FlowConfig, SearchConfig, Window, cathode, cwola, idealised, kfold_scores, sliding_windows,
)
from pairhunt.anomaly import classifier as classifier_module  # noqa: E402
from pairhunt.anomaly.flow import BackgroundFlow, GaussianiseFeatures  # noqa: E402
from pairhunt.anomaly.regions import OUTSIDE, SIDEBAND, SIGNAL_REGION  # noqa: E402
from pairhunt.anomaly.significance import sic_curve  # noqa: E402
from pairhunt.cli import main  # noqa: E402
from pairhunt.errors import PairhuntError  # noqa: E402

TINY = SearchConfig(
    folds=3, seed=3,
    classifier=ClassifierConfig(hidden=(16,), epochs=15, patience=3),
    flow=FlowConfig(transforms=2, hidden=(16, 16), epochs=15, patience=3),
)


def toy(n_background: int, n_signal: int, seed: int, window: Window = Window(900.0, 1100.0)) -> tuple[AnomalySample, np.ndarray]:
    """A falling mass spectrum with three features that ignore the mass (one of them an integer);
    signal sits in the signal region, shifted in the first two features."""
    rng = np.random.default_rng(seed)
    mass = 500.0 + rng.exponential(400.0, n_background)
    x = np.column_stack([rng.normal(size=n_background), rng.normal(size=n_background), rng.poisson(3.0, n_background)])
    sig_mass = rng.uniform(window.low, window.high, n_signal)
    sig_x = np.column_stack([rng.normal(2.0, 0.5, n_signal), rng.normal(2.0, 0.5, n_signal), rng.poisson(3.0, n_signal)])
    n = n_background + n_signal
    sample = AnomalySample(
        np.concatenate([mass, sig_mass]), np.concatenate([x, sig_x]).astype(np.float64), np.ones(n), ("a", "b", "n"),
        np.array(["toy"] * n), np.zeros((n, 3), dtype=np.int64),
    )
    return sample, np.arange(n) >= n_background


def test_every_event_has_one_role_and_the_edges_fall_on_the_signal_region():
    window = Window(900.0, 1100.0, sideband=0.5)
    mass = np.array([799.0, 800.0, 899.9, 900.0, 1099.9, 1100.0, 1199.9, 1200.0, np.nan])
    roles = window.roles(mass)
    assert roles.tolist() == [OUTSIDE, SIDEBAND, SIDEBAND, SIGNAL_REGION, SIGNAL_REGION, SIDEBAND, SIDEBAND, OUTSIDE, OUTSIDE]
    edges = window.edges(4)
    assert edges[0] == 800.0 and edges[-1] == pytest.approx(1200.0)
    assert 900.0 in edges and any(np.isclose(edges, 1100.0))
    with pytest.raises(PairhuntError, match="below 0 GeV"):
        Window(100.0, 300.0, sideband=1.0)


def test_sliding_windows_step_by_a_factor_and_stay_below_the_upper_edge():
    windows = sliding_windows(500.0, 1500.0, width=0.3, step=0.15)
    assert windows[0].low == 500.0 and windows[0].high == pytest.approx(650.0)
    assert all(w.high <= 1500.0 for w in windows)
    assert [w.low for w in windows][1] == pytest.approx(575.0)


def test_kfold_never_scores_an_event_with_a_model_that_trained_on_it(monkeypatch):
    """Each feature row is unique; the fake model remembers its training rows and refuses to score them."""

    class Remembering:
        def __init__(self, x):
            self.seen = {tuple(row) for row in x}

    scored = []

    def fake_predict(model, x):
        assert not ({tuple(row) for row in x} & model.seen), "an event scored by a model that trained on it"
        scored.append(len(x))
        return np.zeros(len(x))

    monkeypatch.setattr(classifier_module, "train_classifier", lambda x, *args, **kwargs: Remembering(x))
    monkeypatch.setattr(classifier_module, "predict", fake_predict)
    x = np.arange(300, dtype=float).reshape(100, 3)
    extra = -np.arange(60, dtype=float).reshape(20, 3)
    scores, extra_scores = kfold_scores(x, np.arange(100) % 2, np.ones(100), k=4, seed=5, extra=extra)
    assert np.isfinite(scores).all() and np.isfinite(extra_scores).all()
    assert sum(scored) == 120  # every row scored once: training rows out of fold, extra rows by one model each


def test_a_classifier_cannot_memorise_what_it_scores():
    """Random labels on unique events: out-of-fold scores know nothing of the labels."""
    rng = np.random.default_rng(2)
    x, labels = rng.normal(size=(2000, 4)), (rng.random(2000) < 0.5).astype(float)
    scores, _ = kfold_scores(x, labels, np.ones(2000), k=3, seed=1, config=ClassifierConfig(hidden=(64, 64), epochs=10, validation_fraction=0.0))
    eps_s, eps_b, _ = sic_curve(scores, labels == 1, np.ones(2000))
    auc = -np.trapezoid(eps_s, eps_b)
    assert abs(auc - 0.5) < 0.05


def test_flow_samples_are_reproducible_by_seed_and_keep_integer_features_integer():
    sample, _ = toy(1500, 0, seed=4)
    config = FlowConfig(transforms=2, hidden=(16, 16), epochs=3)
    first = BackgroundFlow(sample.features, sample.mass, seed=7, config=config)
    again = BackgroundFlow(sample.features, sample.mass, seed=7, config=config)
    masses = np.full(200, 1000.0)
    np.testing.assert_array_equal(first.sample(200, seed=1, mass=masses), again.sample(200, seed=1, mass=masses))
    assert not np.array_equal(first.sample(200, seed=1, mass=masses), first.sample(200, seed=2, mass=masses))
    with pytest.raises(ValueError, match="given masses"):
        first.sample(200, seed=1)
    unconditional = BackgroundFlow(sample.features, None, seed=7, config=config)
    np.testing.assert_array_equal(unconditional.sample(200, seed=1), BackgroundFlow(sample.features, None, seed=7, config=config).sample(200, seed=1))
    drawn = first.sample(200, seed=1, mass=masses)
    assert np.array_equal(drawn[:, 2], np.round(drawn[:, 2]))
    assert drawn[:, 2].min() >= sample.features[:, 2].min() and drawn[:, 2].max() <= sample.features[:, 2].max()


def test_gaussianised_features_map_back_onto_themselves():
    x = np.column_stack([np.random.default_rng(1).exponential(size=5000), np.random.default_rng(2).integers(0, 5, 5000)]).astype(float)
    rng = np.random.default_rng(3)
    transform = GaussianiseFeatures(x, rng)
    z = transform.forward(x, rng)
    assert abs(z[:, 0].mean()) < 0.05 and abs(z[:, 0].std() - 1) < 0.05
    back = transform.inverse(z)
    np.testing.assert_allclose(back[:, 0], x[:, 0], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(back[:, 1], x[:, 1])


@pytest.mark.parametrize("method", ["cwola", "cathode", "idealised"])
def test_each_method_ranks_planted_signal_above_background(method):
    window = Window(900.0, 1100.0)
    data, truth = toy(6000, 150, seed=1, window=window)
    if method == "cwola":
        scores = cwola(data, window, TINY)
    elif method == "cathode":
        scores, _ = cathode(data, window, TINY)
    else:
        reference, _ = toy(6000, 0, seed=2, window=window)
        scores = idealised(data, reference, window, TINY)
    roles = window.roles(data.mass)
    assert np.isnan(scores.data[roles == OUTSIDE]).all() and np.isfinite(scores.data[roles != OUTSIDE]).all()
    region = roles == SIGNAL_REGION
    eps_s, eps_b, sic = sic_curve(scores.data[region], truth[region], data.weight[region])
    assert np.nanmax(sic[eps_b >= 0.02]) > 2.0, method


def test_cathode_refuses_weighted_data():
    window = Window(900.0, 1100.0)
    data, _ = toy(500, 0, seed=1)
    weighted = data.with_weight(np.random.default_rng(1).random(len(data)))
    with pytest.raises(PairhuntError, match="unweight"):
        cathode(weighted, window, TINY)


@pytest.fixture(scope="module")
def pair_run(generated, tmp_path_factory):
    """A `pairhunt run` of generated QCD, ttbar and gluinos with the six-jet pair topology."""
    directory = tmp_path_factory.mktemp("anomaly")
    fileset = directory / "fileset.json"
    fileset.write_text(json.dumps({"qcd": [str(generated["qcd"])], "ttbar": [str(generated["ttbar"])], "gluino": [str(generated["gluino"])]}))
    out = directory / "run"
    assert main(["run", str(fileset), "-o", str(out), "--topology", "pair_3body", "--no-progress"]) == 0
    return out


def test_dalitz_variables_and_event_shape_match_a_plain_loop():
    """Columnar pair masses within candidates and the momentum-tensor eigenvalues, against a per-event loop."""
    from pairhunt.assign.base import JetAssignment
    from pairhunt.candidates import build_candidates, pair_mass_fractions
    from pairhunt.inputs import JetInputs, event_shape

    rng = np.random.default_rng(5)
    n_events, width = 40, 8
    counts = rng.integers(5, width + 1, n_events)
    mask = np.arange(width)[None, :] < counts[:, None]
    jets = JetInputs(
        pt=np.where(mask, rng.uniform(30, 400, (n_events, width)), 0.0), eta=rng.uniform(-2.5, 2.5, (n_events, width)),
        phi=rng.uniform(-np.pi, np.pi, (n_events, width)), mass=rng.uniform(2, 30, (n_events, width)), mask=mask,
        index=np.where(mask, np.arange(width), -1), counts=counts, multiplicity=counts,
    )
    parent = np.where(mask, rng.integers(-1, 2, (n_events, width)), -1)
    assignment = JetAssignment(parent=parent, product=np.where(parent >= 0, 0, -1), fixed_multiplicity=False)
    candidates = build_candidates(jets, assignment, 2)
    low, high = pair_mass_fractions(jets, assignment, candidates)
    sphericity, aplanarity = event_shape(jets)
    px, py, pz, energy = jets.four_momenta()
    for e in range(n_events):
        for p in range(2):
            members = np.flatnonzero(parent[e] == p)
            fractions = [
                ((energy[e, i] + energy[e, j]) ** 2 - (px[e, i] + px[e, j]) ** 2 - (py[e, i] + py[e, j]) ** 2 - (pz[e, i] + pz[e, j]) ** 2)
                / candidates.mass[e, p] ** 2
                for a, i in enumerate(members) for j in members[a + 1:]
            ]
            if fractions:
                assert low[e, p] == pytest.approx(min(fractions)) and high[e, p] == pytest.approx(max(fractions))
            else:
                assert np.isnan(low[e, p]) and np.isnan(high[e, p])
        momenta = np.column_stack([px[e], py[e], pz[e]])[mask[e]]
        eigen = np.linalg.eigvalsh(momenta.T @ momenta / (momenta**2).sum())
        assert sphericity[e] == pytest.approx(1.5 * (eigen[0] + eigen[1])) and aplanarity[e] == pytest.approx(1.5 * eigen[0])


def test_event_table_describes_events_for_table_only_analyses(pair_run, generated):
    import uproot

    table = ak.concatenate([ak.from_parquet(p) for p in sorted((pair_run / "events" / "qcd").glob("*.parquet"))])
    weights = uproot.open(generated["qcd"])["Events"]["genWeight"].array(library="np")
    np.testing.assert_allclose(ak.to_numpy(table.weight), weights)
    chosen = table[table.selected]
    method = "mass_asymmetry"
    assert ak.all(chosen.n_jets >= 6) and ak.all(chosen.ht > 6 * 30.0)
    sphericity, aplanarity = ak.to_numpy(chosen.sphericity), ak.to_numpy(chosen.aplanarity)
    assert np.all((sphericity >= 0) & (sphericity <= 1)) and np.all((aplanarity >= 0) & (aplanarity <= 0.5))
    low, high = ak.to_numpy(chosen[f"{method}_dalitz_min"]), ak.to_numpy(chosen[f"{method}_dalitz_max"])
    complete = np.isfinite(low).all(axis=1)
    assert complete.mean() > 0.9 and np.all(low[complete] <= high[complete]) and np.all((low[complete] > 0) & (high[complete] < 1))
    pt = ak.to_numpy(chosen[f"{method}_pt"])
    assert np.all(pt[complete] > 0)


@pytest.mark.parametrize("method", ["cwola", "cathode"])
def test_pairhunt_anomaly_end_to_end(pair_run, tmp_path, method):
    from coffea.util import load

    from pairhunt.anomaly import load_sample

    sample = load_sample(pair_run, "mass_asymmetry", ["qcd", "ttbar"]).unweighted(4)
    low, high = np.quantile(sample.mass, [0.4, 0.6])
    out = tmp_path / method
    argv = [
        "anomaly", str(pair_run), "--method", method, "--window", f"{low}", f"{high}", "--sideband", "1.0",
        "--assignment", "mass_asymmetry", "--data", "qcd", "ttbar", "--unweight", "4", "--background", "qcd", "--signal", "ttbar",
        "--keep", "0.5",
        "--folds", "2", "--pseudo-experiments", "5", "--toys", "30", "-o", str(out),
    ]
    assert main(argv) == 0
    result = json.loads((out / "anomaly.json").read_text())
    fit = result["cuts"][0]["sideband_fit"]  # the signal region's p-value from pseudo-data beside the asymptotic one
    assert fit["toys"] + fit["toys_failed"] == 30 and 1 / 31 <= fit["p_value_toys"] <= 1
    assert result["events"]["total"] == len(sample)
    counts = result["inputs"]["events"]  # every event of the data accounted for
    for dataset in ("qcd", "ttbar"):
        table = ak.concatenate([ak.from_parquet(p) for p in sorted((pair_run / "events" / dataset).glob("*.parquet"))])
        assert counts[dataset]["read"] == len(table) and counts[dataset]["selected"] == int(ak.sum(table.selected))
        assert 0 < counts[dataset]["used"] <= counts[dataset]["selected"]
    assert counts["unweighted"] == {"kept": len(sample), "of": counts["qcd"]["used"] + counts["ttbar"]["used"]}
    assert result["events"]["signal_region"] >= 20 and result["events"]["sidebands"] >= 20
    assert set(result["mass_correlations"]) == set(sample.names)
    assert [c["keep"] for c in result["cuts"]] == [0.5] and result["cuts"][0]["sculpting"] is not None
    scores = ak.from_parquet(out / "scores.parquet")
    assert len(scores) == len(sample)
    in_range = Window(low, high).roles(ak.to_numpy(scores.mass)) != OUTSIDE
    assert np.isfinite(ak.to_numpy(scores.score)[in_range]).all() and np.isnan(ak.to_numpy(scores.score)[~in_range]).all()
    hists = load(out / "hists.coffea")["hists"]
    assert list(hists["mass"].axes["selection"]) == ["all", "keep_0.5"]
    assert hists["mass"][{"selection": "all"}].sum().value == pytest.approx(ak.to_numpy(scores.weight)[in_range].sum())
    assert (out / "mass_cuts.png").is_file() and (out / "sculpting.png").is_file() and (out / "sic.png").is_file()
    sic = result["sic"]
    assert sic["events"]["signal"] > 0 and len(sic["eps_s"]) == len(sic["sic"])
    assert np.all(np.diff(sic["eps_b"]) <= 0)  # thresholds rise along the curve


def test_pairhunt_anomaly_needs_a_reference_for_the_idealised_detector(pair_run, tmp_path):
    with pytest.raises(SystemExit) as stop:
        main(["anomaly", str(pair_run), "--method", "idealised", "--window", "300", "400", "--assignment", "mass_asymmetry",
              "--data", "qcd", "-o", str(tmp_path / "x")])
    assert stop.value.code == 2


def test_toy_p_values_are_reproducible_and_floor_at_one_over_toys_plus_one():
    """A falling spectrum with a large excess in the signal region: no toy reaches it, so the toy
    p-value is 1 / (toys + 1); without the excess it is a proper fraction; same seed, same answer."""
    from pairhunt.anomaly import sideband_significance

    rng = np.random.default_rng(5)
    mass = 500.0 + rng.exponential(250.0, 20_000)
    window = Window(900.0, 1100.0)
    excess = np.concatenate([mass, rng.uniform(950.0, 1050.0, 600)])
    strong = sideband_significance(excess, np.ones(len(excess)), window, toys=40, seed=3)
    assert strong["local_significance"] > 5 and strong["p_value_toys"] == pytest.approx(1 / 41)
    plain = sideband_significance(mass, np.ones(len(mass)), window, toys=40, seed=3)
    assert plain["p_value_toys"] > 1 / 41 and plain == sideband_significance(mass, np.ones(len(mass)), window, toys=40, seed=3)


def test_decorrelated_features_forget_the_mass_in_sidebands_and_signal_region():
    from pairhunt.anomaly.decorrelate import MassDecorrelation
    from pairhunt.anomaly.features import weighted_correlation

    rng = np.random.default_rng(8)
    mass = np.exp(rng.uniform(np.log(600.0), np.log(1600.0), 40_000))
    x = np.column_stack([8.0 * np.log(mass) + rng.normal(size=len(mass)), rng.poisson(3 * np.log(mass))]).astype(float)
    window = Window(850.0, 1100.0, sideband=1.5)
    roles = window.roles(mass)
    sideband = roles == SIDEBAND
    transform = MassDecorrelation(x[sideband], mass[sideband], np.ones(sideband.sum()), rng)
    decorrelated = transform.transform(x, mass, rng)
    region = roles == SIGNAL_REGION
    for chosen in (sideband, region):
        assert abs(weighted_correlation(np.log(mass[chosen]), x[chosen, 0], np.ones(chosen.sum()))) > 0.3
        for k in range(2):
            assert abs(weighted_correlation(np.log(mass[chosen]), decorrelated[chosen, k], np.ones(chosen.sum()))) < 0.03
            assert abs(decorrelated[chosen, k].mean()) < 0.03
    # the same distribution in the signal region as in the sidebands (quantiles measured in mass
    # bins of finite width come out slightly narrower than the conditional ones: std 0.9-1)
    np.testing.assert_allclose(decorrelated[region].std(axis=0), decorrelated[sideband].std(axis=0), atol=0.03)


def test_cathode_scores_each_event_with_the_flow_that_did_not_learn_it(monkeypatch):
    """Two pipelines, each flow learning one half of the sidebands: an event's score must come from the other."""
    from pairhunt.anomaly import methods

    learnt, conditioned = [], []

    class RecordingFlow:
        def __init__(self, x, mass, seed, config):
            learnt.append({tuple(row) for row in x})
            conditioned.append(mass is not None)

        def sample(self, n, seed, mass=None):
            return np.random.default_rng(seed).normal(size=(n, 3))

    def pipeline_id(data, window, x, samples, weight, config, also, x_also):
        return methods.Scores(np.full(len(data), float(len(learnt) - 1)), None)

    monkeypatch.setattr(methods, "BackgroundFlow", RecordingFlow)
    monkeypatch.setattr(methods, "_against_reference", pipeline_id)
    window = Window(900.0, 1100.0)
    data, _ = toy(3000, 0, seed=6)
    config = SearchConfig(decorrelate=False)
    scores, _ = cathode(data, window, config)
    sideband = window.roles(data.mass) == SIDEBAND
    assert learnt[0] and learnt[1] and not (learnt[0] & learnt[1])
    for row, score in zip(data.features[sideband], scores.data[sideband]):
        assert tuple(row) not in learnt[int(score)]
    assert set(np.unique(scores.data[window.roles(data.mass) == SIGNAL_REGION])) == {0.0, 1.0}
    # raw features need p(x | m); decorrelated ones carry the mass already and the flow is p(x)
    cathode(data, window, SearchConfig())
    assert conditioned == [True, True, False, False]


def test_copies_of_an_event_share_a_fold_and_distinct_events_keep_their_folds():
    from pairhunt.anomaly.folds import assign_folds

    np.testing.assert_array_equal(assign_folds(50, 5, 3, groups=np.arange(50)), assign_folds(50, 5, 3))
    groups = np.random.default_rng(1).integers(0, 40, 200)  # 200 rows, at most 40 events, many drawn twice
    folds = assign_folds(200, 4, 3, groups=groups)
    for event in np.unique(groups):
        assert len(set(folds[groups == event])) == 1
    assert len(set(folds)) == 4


def test_cwola_never_scores_a_copy_of_an_event_it_trained_on(monkeypatch):
    """Pseudo-data drawn with replacement hold events twice; a model that trained on one copy must
    not score another (the fake model refuses to score any feature row it saw)."""

    class Remembering:
        def __init__(self, x):
            self.seen = {tuple(row) for row in x}

    def fake_predict(model, x):
        assert not ({tuple(row) for row in x} & model.seen), "a copy of a training event scored by its model"
        return np.zeros(len(x))

    monkeypatch.setattr(classifier_module, "train_classifier", lambda x, *args, **kwargs: Remembering(x))
    monkeypatch.setattr(classifier_module, "predict", fake_predict)
    sample, _ = toy(400, 0, seed=5)
    drawn = np.random.default_rng(2).integers(0, len(sample), 600)  # with replacement
    copies = AnomalySample(
        sample.mass[drawn], sample.features[drawn], np.ones(600), sample.names, sample.origin[drawn], sample.keys[drawn], event_id=drawn,
    )
    scores = cwola(copies, Window(900.0, 1100.0), SearchConfig(folds=3, decorrelate=False))
    assert np.isfinite(scores.data[Window(900.0, 1100.0).roles(copies.mass) != OUTSIDE]).all()


def test_joined_samples_keep_their_events_apart():
    a, _ = toy(30, 0, seed=1)
    b, _ = toy(20, 0, seed=2)
    twice = AnomalySample(a.mass, a.features, a.weight, a.names, a.origin, a.keys, event_id=np.arange(30) // 2)
    joined = AnomalySample.concatenate([twice, b])
    ids = joined.event_ids()
    assert len(np.unique(ids[:30])) == 15 and len(np.unique(ids[30:])) == 20
    assert not set(ids[:30]) & set(ids[30:])
    assert AnomalySample.concatenate([a, b]).event_id is None


def test_a_cwola_scan_finds_the_window_of_a_planted_resonance(tmp_path):
    from pairhunt.anomaly.report import write_scan
    from pairhunt.anomaly.scan import look_elsewhere, scan_windows

    data, _ = toy(8000, 300, seed=7, window=Window(1000.0, 1300.0))
    windows = sliding_windows(1000.0 / 1.3, 2200.0, width=0.3, step=0.3)  # one of them is [1000, 1300)
    results = scan_windows("cwola", data, windows, TINY, keep=0.1)
    assert [r.window for r in results] == windows
    summary = look_elsewhere(results)
    best = summary["best"]
    assert best["signal_region_gev"] == pytest.approx([1000.0, 1300.0])
    assert best["cut"]["local_significance"] > best["no_cut"]["local_significance"] + 1.0
    local_p = best["cut"]["p_value"]
    assert summary["global_p_value_bound"] == pytest.approx(min(1.0, len(windows) * local_p))
    result, paths = write_scan(tmp_path / "scan", "cwola", results)
    assert json.loads(paths["json"].read_text()) == json.loads(json.dumps(result, default=float))
    assert paths["plot"].is_file() and len(result["windows"]) == len(windows)


def test_pairhunt_anomaly_scan_end_to_end(pair_run, tmp_path, capsys):
    from pairhunt.anomaly import load_sample

    mass = load_sample(pair_run, "mass_asymmetry", ["qcd", "ttbar"]).mass
    low, high = np.quantile(mass, [0.2, 0.9])
    out = tmp_path / "scan"
    argv = [
        "anomaly", str(pair_run), "--method", "cwola", "--scan", f"{low}", f"{high}", "--width", "0.3", "--step", "0.3",
        "--assignment", "mass_asymmetry", "--data", "qcd", "ttbar", "--folds", "2", "--toys", "20", "-o", str(out),
    ]
    assert main(argv) == 0
    result = json.loads((out / "scan.json").read_text())
    assert any(row["no_cut"].get("toys") for row in result["windows"])
    assert len(result["windows"]) == len(sliding_windows(low, high, 0.3, 0.3)) and result["inputs"]["keep"] == 0.2
    assert (out / "scan.png").is_file() and "most significant" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main(argv + ["--keep", "0.2", "0.1"])
    assert stop.value.code == 2 and "one --keep" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(argv + ["--background", "qcd"])
    assert stop.value.code == 2 and "no sculpting check" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(argv + ["--toys", "-1"])
    assert stop.value.code == 2 and "--toys counts pseudo-datasets" in capsys.readouterr().err

"""The bump hunt: dijet fit, F-test, scan, look-elsewhere correction, bad input, the command."""

from __future__ import annotations

import json

import hist
import numpy as np
import pytest

from pairhunt.bumphunt import Spectrum, bump_hunt, choose_fit, fit_dijet, inject, injection_test, scan
from pairhunt.bumphunt.dijet import bin_integrals
from pairhunt.bumphunt.from_run import method_spectrum
from pairhunt.bumphunt.scan import excess_p_value
from pairhunt.cli import main
from pairhunt.errors import PairhuntError

EDGES = np.linspace(600.0, 3000.0, 49)  # 50 GeV bins
SHAPE = np.array([0.0, 10.0, -5.0])  # log p0 (set below), p1, p2


def smooth(total: float, shape: np.ndarray = SHAPE) -> np.ndarray:
    """Expected bin contents of the dijet function normalised to ``total``."""
    params = shape.copy()
    params[0] = np.log(total / bin_integrals(EDGES, shape).sum())
    return bin_integrals(EDGES, params)


def bump(events: float, mass: float = 1500.0, width: float = 100.0) -> np.ndarray:
    centres = 0.5 * (EDGES[1:] + EDGES[:-1])
    shape = np.exp(-0.5 * ((centres - mass) / width) ** 2)
    return events * shape / shape.sum()


def unweighted(counts: np.ndarray) -> Spectrum:
    return Spectrum(EDGES, counts.astype(float), counts.astype(float))


def test_fit_recovers_the_generating_parameters():
    expected = smooth(50_000)
    counts = np.random.default_rng(7).poisson(expected)
    choice = choose_fit(unweighted(counts))
    assert choice.chosen.n_params == 3, choice.to_dict()
    fit = choice.chosen
    truth = SHAPE.copy()
    truth[0] = np.log(50_000 / bin_integrals(EDGES, SHAPE).sum())
    pulls = (fit.params - truth) / np.sqrt(np.diag(fit.covariance))
    assert np.all(np.abs(pulls) < 3), pulls
    populated = expected > 1000
    np.testing.assert_allclose(fit.expected()[populated], expected[populated], rtol=0.02)
    assert fit.deviance / fit.ndf < 1.5


def test_weighted_bins_fit_like_their_effective_entries():
    """Scaling every weight by w changes the normalisation, not the shape or its uncertainty."""
    counts = np.random.default_rng(8).poisson(smooth(20_000)).astype(float)
    plain = fit_dijet(unweighted(counts), 3)
    weighted = fit_dijet(Spectrum(EDGES, 250.0 * counts, 250.0**2 * counts), 3)
    np.testing.assert_allclose(weighted.params[1:], plain.params[1:], rtol=1e-3)
    assert weighted.params[0] == pytest.approx(plain.params[0] + np.log(250.0), abs=1e-3)
    np.testing.assert_allclose(np.diag(weighted.covariance)[1:], np.diag(plain.covariance)[1:], rtol=0.05)


def test_scan_finds_an_injected_bump_at_its_mass():
    rng = np.random.default_rng(9)
    counts = rng.poisson(smooth(30_000) + bump(400))
    hunt = bump_hunt(unweighted(counts), resolution=0.07, pseudo_experiments=50)
    best = hunt.scan.best_window()
    assert best["low_gev"] < 1500 < best["high_gev"]
    assert best["local_significance"] > 5
    assert hunt.global_.p_value == 0.0 and hunt.global_.significance > 2.0


def test_pure_background_gives_nothing_globally_significant():
    counts = np.random.default_rng(10).poisson(smooth(30_000))
    hunt = bump_hunt(unweighted(counts), resolution=0.07, pseudo_experiments=100, seed=3)
    assert hunt.global_.failed_fits == 0
    assert hunt.global_.p_value > 0.01, hunt.to_dict()


def test_local_p_value_is_poisson_without_uncertainty_and_one_for_deficits():
    p = excess_p_value(np.array([10.0, 3.0]), np.array([4.0, 5.0]), np.array([0.0, 0.0]))
    assert p[0] == pytest.approx(0.00813224, rel=1e-5)  # P(N >= 10 | 4)
    assert p[1] == 1.0
    uncertain = excess_p_value(np.array([10.0]), np.array([4.0]), np.array([1.0]))
    assert uncertain[0] > p[0]


def test_injection_test_recovers_position_and_grows_with_strength():
    background = Spectrum(EDGES, smooth(30_000), smooth(30_000))
    signal = Spectrum(EDGES, bump(1.0), bump(1.0) / 100)
    rows = injection_test(background, signal, [0.0, 150.0, 400.0], resolution=0.07)
    assert rows[0]["local_significance"] < 1.0
    assert rows[1]["local_significance"] < rows[2]["local_significance"]
    assert rows[2]["low_gev"] < 1500 < rows[2]["high_gev"]
    with pytest.raises(PairhuntError, match="binning"):
        inject(background, Spectrum(EDGES[:-1], bump(1.0)[:-1], bump(1.0)[:-1]), 1.0)


@pytest.mark.parametrize(
    "values, message",
    [(np.zeros(48), "empty"), (np.r_[np.zeros(44), [5.0, 4.0, 3.0, 2.0]], "bins in the fit range")],
)
def test_empty_or_short_spectra_are_clear_errors(values, message):
    with pytest.raises(PairhuntError, match=message):
        bump_hunt(unweighted(values), pseudo_experiments=0)


def test_bad_spectra_are_rejected():
    with pytest.raises(PairhuntError, match="finite"):
        Spectrum(EDGES, np.full(48, np.nan), np.ones(48))
    with pytest.raises(PairhuntError, match="one entry more"):
        Spectrum(EDGES, np.ones(3), np.ones(3))


def test_scan_windows_follow_the_resolution():
    counts = np.random.default_rng(11).poisson(smooth(30_000))
    fit = fit_dijet(unweighted(counts).fit_range(), 3)
    narrow, wide = scan(fit, 0.03), scan(fit, 0.2)
    width = lambda s: np.mean(s.windows[:, 1] - s.windows[:, 0])  # noqa: E731
    assert width(wide) > width(narrow)


def _hists(score_filled: bool = True) -> dict:
    """A minimal run: mass_average and mass_score of one method and two datasets."""
    mass = hist.axis.Regular(48, 600.0, 3000.0, name="mass")
    cats = [hist.axis.StrCategory(["qcd", "sig"], name="dataset"), hist.axis.StrCategory(["abc"], name="method")]
    average = hist.Hist(*cats, mass, storage=hist.storage.Weight())
    mass_score = hist.Hist(*cats, mass, hist.axis.Regular(10, 0, 1, name="score"), storage=hist.storage.Weight())
    rng = np.random.default_rng(12)
    centres = 0.5 * (EDGES[1:] + EDGES[:-1])
    qcd = rng.poisson(smooth(20_000))
    values = np.repeat(centres, qcd)
    average.fill(dataset="qcd", method="abc", mass=values, weight=2.0)
    if score_filled:
        mass_score.fill(dataset="qcd", method="abc", mass=values, score=rng.uniform(0, 1, len(values)), weight=2.0)
    return {"mass_average": average, "mass_score": mass_score}


def test_spectra_from_a_run_scale_and_cut_on_the_score():
    hists = _hists()
    full = method_spectrum(hists, "abc", {"qcd": 0.5})
    assert full.values.sum() == pytest.approx(hists["mass_average"].sum().value * 0.5)
    np.testing.assert_allclose(full.variances, full.values)  # weight 2 scaled by 0.5: unit weights
    cut = method_spectrum(hists, "abc", {"qcd": 0.5}, score_min=0.5)
    assert 0.4 < cut.values.sum() / full.values.sum() < 0.6
    with pytest.raises(PairhuntError, match="no dataset 'data'"):
        method_spectrum(hists, "abc", {"data": 1.0})
    with pytest.raises(PairhuntError, match="no anomaly scores"):
        method_spectrum(_hists(score_filled=False), "abc", {"qcd": 1.0}, score_min=0.5)


def test_bumphunt_command_on_a_run_directory(tmp_path):
    from coffea.util import save

    hists = _hists()
    for name in ("m1_m2", "score"):
        hists[name] = hist.Hist(hist.axis.StrCategory(["qcd"], name="dataset"), hist.axis.StrCategory(["abc"], name="method"), hist.axis.Regular(4, 0, 1, name="x"), hist.axis.Regular(4, 0, 1, name="y"))
    (tmp_path / "hists").mkdir()
    save({"hists": hists}, tmp_path / "hists" / "hists.coffea")
    code = main(["bumphunt", str(tmp_path), "--method", "abc", "--dataset", "qcd:0.5", "--pseudo-experiments", "5", "--no-progress"])
    assert code == 0
    result = json.loads((tmp_path / "bumphunt" / "abc" / "bumphunt.json").read_text())
    assert result["global"]["pseudo_experiments"] == 5
    assert {"fit.png", "scan.png", "bumphunt.md"} <= {p.name for p in (tmp_path / "bumphunt" / "abc").iterdir()}
    with pytest.raises(SystemExit) as exit_info:
        main(["bumphunt", str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2


def test_injected_event_counts_stay_counts_and_weighted_templates_scale_their_weights():
    background = unweighted(np.round(smooth(30_000)))
    signal = Spectrum(EDGES, bump(300.0), bump(300.0))
    as_counts = inject(background, signal, 2.0, counts=True)
    np.testing.assert_allclose(as_counts.variances, as_counts.values)
    np.testing.assert_allclose(as_counts.effective_counts().sum(), background.values.sum() + 600.0)
    as_weights = inject(background, signal, 2.0)
    np.testing.assert_allclose(as_weights.variances, background.variances + 4.0 * signal.variances)
    rows = injection_test(background, signal, [1.0, 2.0, 4.0], resolution=0.07, counts=True)
    assert rows[0]["local_significance"] < rows[1]["local_significance"] < rows[2]["local_significance"]


def test_a_blinded_fit_ignores_the_signal_region_and_predicts_it():
    """A bump inside the blinded range leaves the sideband fit as it is without the bump."""
    counts = np.random.default_rng(9).poisson(smooth(50_000)).astype(float)
    blind = (1300.0, 1700.0)
    plain = fit_dijet(unweighted(counts), 3, blind=blind)
    bumped = fit_dijet(unweighted(counts + bump(2_000, width=40.0)), 3, blind=blind)  # contained: ±5 widths
    np.testing.assert_allclose(bumped.params, plain.params, rtol=1e-3)  # the minimiser's tolerance
    inside = (0.5 * (EDGES[1:] + EDGES[:-1]) > blind[0]) & (0.5 * (EDGES[1:] + EDGES[:-1]) < blind[1])
    assert bumped.ndf == int((~inside).sum()) - 3
    assert bumped.expected()[inside].sum() == pytest.approx(smooth(50_000)[inside].sum(), rel=0.05)
    unblinded = fit_dijet(unweighted(counts + bump(2_000, width=40.0)), 3)
    assert unblinded.deviance > bumped.deviance  # the bump cannot hide from an unblinded fit

"""The README's main command, end to end on a reduced size: generate, run, bump hunt, report."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pythia8mc", reason="needs the 'generate' extra")

from pairhunt.demo import DemoConfig, run_demo  # noqa: E402


def test_demo_runs_end_to_end(tmp_path):
    config = DemoConfig(
        output=str(tmp_path / "demo"), qcd_events=16000, signal_events=300, background_events=800,
        injected_events=50, pseudo_experiments=10, cwola_toys=20, progress=False,
    )
    summary = run_demo(config)
    out = tmp_path / "demo"
    assert (out / "run" / "hists" / "hists.coffea").is_file() and (out / "run" / "hists" / "hists.root").is_file()
    assert list((out / "run" / "events" / "qcd").glob("*.parquet"))
    # the run directory is any `pairhunt run`'s: complete, every event accounted for, nothing staged
    assert summary["run"]["status"] == "complete" and not (out / "run" / ".incomplete").exists()
    assert summary["run"]["events"] == 16000 + 300 and summary["run"]["events_failed"] == 0
    flow = summary["run"]["cutflow"]["qcd"]["events"]
    assert flow["all events"] == 16000 and 0 < flow["HT > 1000 GeV"] < flow[">= 6 jets"]
    for method in ("abc", "mass_asymmetry_6"):
        hunt = summary["bumphunts"][method]["result"]
        assert hunt["global"]["pseudo_experiments"] == 10
        assert [row["strength"] for row in hunt["injection"]] == list(config.strengths)
        assert {"fit.png", "scan.png", "m1_m2.png", "bumphunt.md"} <= {p.name for p in (out / "bumphunt" / method).iterdir()}
    assert (out / "bumphunt" / "abc" / "mass_score.png").is_file()  # ABC fills anomaly scores
    report = (out / "report.md").read_text()
    assert "| abc |" in report and "| mass_asymmetry_6 |" in report
    assert json.loads((out / "report.json").read_text())["config"]["qcd_events"] == 16000
    # the excess of the baseline's best window placed on the shipped theory map
    placed = summary["characterize"]
    assert "error" not in placed, placed
    assert sum(row["probability"] for row in placed["ranking"]) == pytest.approx(1.0)
    assert (out / "characterize" / "map.png").is_file() and (out / "characterize" / "characterize.json").is_file()
    assert "## Which theory does the excess look like?" in report
    # CWoLa hunting over sliding windows of the baseline's mass of the same pseudo-data
    from pairhunt.anomaly import sliding_windows

    scan = summary["cwola"]
    assert "error" not in scan, scan
    assert len(scan["windows"]) == len(sliding_windows(*config.cwola_scan, config.cwola_width, config.cwola_step))
    drawn = summary["bumphunts"]["mass_asymmetry_6"]["result"]
    assert 0.9 * (drawn["qcd_events"] + drawn["signal_events"]) < scan["inputs"]["events"] <= drawn["qcd_events"] + drawn["signal_events"]
    assert (out / "cwola" / "scan.json").is_file() and (out / "cwola" / "scan.png").is_file()
    assert "## Weakly supervised: CWoLa hunting" in report
    # a second demo with the same settings reuses the generated samples
    before = (out / "samples" / "qcd.root").stat().st_mtime_ns
    run_demo(config)
    assert (out / "samples" / "qcd.root").stat().st_mtime_ns == before


def test_pseudo_data_hold_every_event_at_most_once_and_follow_the_weights():
    from pairhunt.demo import Reconstructed, pseudo_data_events
    from pairhunt.errors import PairhuntError

    weight = np.repeat([1.0, 3.0], 500)  # the heavier half should be drawn three times as often
    background = Reconstructed(weight, {}, {})
    signal = Reconstructed(np.ones(200), {}, {})
    config = DemoConfig(background_events=300.0, injected_events=50.0)
    counts = np.zeros(1000)
    for seed in range(200):
        qcd, gluino = pseudo_data_events(background, signal, config, np.random.default_rng(seed))
        assert len(np.unique(qcd)) == len(qcd) and len(np.unique(gluino)) == len(gluino)
        counts[qcd] += 1
    assert counts.sum() / 200 == pytest.approx(300, rel=0.02)
    assert counts[500:].mean() / counts[:500].mean() == pytest.approx(3.0, rel=0.05)
    with pytest.raises(PairhuntError, match="QCD: the weighted template gives at most 667 distinct events"):
        pseudo_data_events(background, signal, DemoConfig(background_events=1000.0), np.random.default_rng(0))

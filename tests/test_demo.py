"""The README's main command, end to end on a reduced size: generate, run, bump hunt, report."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pythia8mc", reason="needs the 'generate' extra")

from pairhunt.demo import DemoConfig, run_demo  # noqa: E402


def test_demo_runs_end_to_end(tmp_path):
    config = DemoConfig(
        output=str(tmp_path / "demo"), qcd_events=4000, signal_events=300, background_events=2000,
        injected_events=150, pseudo_experiments=10, progress=False,
    )
    summary = run_demo(config)
    out = tmp_path / "demo"
    assert (out / "run" / "hists" / "hists.coffea").is_file() and (out / "run" / "hists" / "hists.root").is_file()
    assert list((out / "run" / "events" / "qcd").glob("*.parquet"))
    # the run directory is any `pairhunt run`'s: complete, every event accounted for, nothing staged
    assert summary["run"]["status"] == "complete" and not (out / "run" / ".incomplete").exists()
    assert summary["run"]["events"] == 4000 + 300 and summary["run"]["events_failed"] == 0
    flow = summary["run"]["cutflow"]["qcd"]["events"]
    assert flow["all events"] == 4000 and 0 < flow["HT > 1000 GeV"] < flow[">= 6 jets"]
    for method in ("abc", "mass_asymmetry_6"):
        hunt = summary["bumphunts"][method]["result"]
        assert hunt["global"]["pseudo_experiments"] == 10
        assert [row["strength"] for row in hunt["injection"]] == list(config.strengths)
        assert {"fit.png", "scan.png", "m1_m2.png", "bumphunt.md"} <= {p.name for p in (out / "bumphunt" / method).iterdir()}
    assert (out / "bumphunt" / "abc" / "mass_score.png").is_file()  # ABC fills anomaly scores
    report = (out / "report.md").read_text()
    assert "| abc |" in report and "| mass_asymmetry_6 |" in report
    assert json.loads((out / "report.json").read_text())["config"]["qcd_events"] == 4000
    # the excess of the baseline's best window placed on the shipped theory map
    placed = summary["characterize"]
    assert "error" not in placed, placed
    assert sum(row["probability"] for row in placed["ranking"]) == pytest.approx(1.0)
    assert (out / "characterize" / "map.png").is_file() and (out / "characterize" / "characterize.json").is_file()
    assert "## Which theory does the excess look like?" in report
    # a second demo with the same settings reuses the generated samples
    before = (out / "samples" / "qcd.root").stat().st_mtime_ns
    run_demo(config)
    assert (out / "samples" / "qcd.root").stat().st_mtime_ns == before

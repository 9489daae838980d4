"""The scripts in examples/ run as written, on real CMS NanoAOD."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import uproot
from coffea.util import load

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ttbar_allhad_example_on_cms_nanoaod(shared_nanoaod, tmp_path):
    files = [shared_nanoaod / "nano_tt_v12.root", shared_nanoaod / "nano_tt_v15.root"]
    entries = sum(uproot.open(f)["Events"].num_entries for f in files)
    summary = _load("ttbar_allhad_coffea").main([*map(str, files), "--output", str(tmp_path), "--workers", "1"])
    assert summary["failed_chunks"] == [] and summary["cutflow"]["all events"] == entries
    assert summary["methods"] == ["chi2", "chi2_btag", "spanet"]
    saved = load(tmp_path / "ttbar.coffea")
    selected = summary["cutflow"][">= 6 jets"]
    assert 0 < selected < entries
    # every selected event is reconstructed by every method: one average mass each (overflow included)
    filled = saved["hists"]["mass_average"][{"dataset": "ttbar"}].project("method").values(flow=True)
    assert filled == pytest.approx([saved["cutflow"]["ttbar"]["sumw"][">= 6 jets"]] * 3, rel=1e-6)
    assert (tmp_path / "top_mass.png").stat().st_size > 0


def test_own_processor_example_on_cms_nanoaod(shared_nanoaod, tmp_path):
    files = [shared_nanoaod / "nano_tt_v12.root", shared_nanoaod / "nano_tt_v15.root"]
    result = _load("own_processor_with_onnxwrapper").main([*map(str, files), "--output", str(tmp_path)])
    assert result["events"] == sum(uproot.open(f)["Events"].num_entries for f in files)
    detection = result["detection"][{"dataset": "ttbar"}]
    # one probability per top and six-jet event, all inside [0, 1]
    assert 0 < result["six_jets"] < result["events"]
    for top in ("t1", "t2"):
        per_bin = detection[{"top": top}].values(flow=True)
        assert per_bin.sum() == result["six_jets"] and per_bin[0] == 0  # none below 0 (exactly 1: the overflow)
    assert (tmp_path / "detection.png").stat().st_size > 0

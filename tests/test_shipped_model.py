"""The shipped ttbar models: their contracts, and a Runner run on generated and real CMS NanoAOD."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pairhunt.cli import main
from pairhunt.assign.registry import make_method
from pairhunt.assign.onnx import resolve_model_path
from pairhunt.topology import load_topology


@pytest.mark.parametrize("name", ["ttbar_allhad", "ttbar_allhad_fast"])
def test_shipped_model_contract_matches_the_shipped_topology(name):
    method = make_method(f"spanet={name}")
    contract = method.contract
    assert contract.kind == "spanet" and contract.max_jets == 10 and contract.precision == "float32"
    assert method.required_features(load_topology("ttbar_allhad")) == tuple(contract.features)
    card = resolve_model_path(name).with_suffix(".md")
    assert card.is_file() and "pairhunt train spanet" in card.read_text()


@pytest.mark.parametrize("name", ["ttbar_allhad", "pair_abc"])
def test_a_contract_s_topology_lists_the_jet_features_in_the_model_s_input_order(name):
    """The metadata's JSON sorts its keys; training data built from the contract's topology
    (``pairhunt recalibrate``) must still fill the model's input columns in their order."""
    contract = make_method(f"{'abc' if name == 'pair_abc' else 'spanet'}={name}").contract
    assert list(contract.topology["inputs"]["Jet"]["features"]) != contract.features  # sorted in the JSON
    assert [f.name for f in contract.model_topology.jets.features] == contract.features


def test_shipped_model_through_the_runner(generated, shared_nanoaod, tmp_path):
    files = {
        "ttbar": [str(generated["ttbar"])],
        "cms_2015": [str(shared_nanoaod / "nanoAOD_2015_CMS_Open_Data_ttbar.root")],
        "cms_v12": [str(shared_nanoaod / "nano_tt_v12.root")],
        "cms_v15": [str(shared_nanoaod / "nano_tt_v15.root")],
        "data": [str(shared_nanoaod / "nano_dimuon.root")],
    }
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps(files))
    out = tmp_path / "out"
    argv = ["run", str(fileset), "-o", str(out), "--method", "spanet=ttbar_allhad", "--method", "fast=ttbar_allhad_fast",
            "--method", "chi2", "--no-progress"]
    assert main(argv + ["--executor", "futures", "--workers", "2", "--chunksize", "150"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"]["skipped"] == {}
    assert main(["evaluate", str(out), str(fileset), "--dataset", "ttbar", "-o", str(tmp_path / "evaluation")]) == 0
    report = json.loads((tmp_path / "evaluation.json").read_text())
    cells = report["datasets"]["ttbar"]["methods"]
    inclusive = {m: cells[m]["inclusive"]["all"]["parent_efficiency"] for m in ("spanet", "fast", "chi2")}
    # the model cards' test set (20,028 events): SPA-NET 0.587, fast 0.564, chi2 0.282; here 142 events (+-0.04)
    assert inclusive["spanet"] == pytest.approx(0.587, abs=0.08)
    assert inclusive["fast"] == pytest.approx(0.564, abs=0.08)
    assert inclusive["chi2"] == pytest.approx(0.282, abs=0.08)
    assert min(inclusive["spanet"], inclusive["fast"]) > inclusive["chi2"] + 0.1
    from coffea.util import load

    hists = load(out / "hists" / "hists.coffea")["hists"]["mass"]
    for dataset in ("cms_2015", "cms_v12", "cms_v15"):
        spanet = hists[{"dataset": dataset, "method": "spanet"}].values(flow=True).sum()
        assert spanet == pytest.approx(hists[{"dataset": dataset, "method": "chi2"}].values(flow=True).sum())
        assert spanet == pytest.approx(hists[{"dataset": dataset, "method": "fast"}].values(flow=True).sum())
        assert np.isfinite(spanet) and spanet > 0

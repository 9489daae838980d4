"""coffea's dask-awkward mode (``mode="dask"``, ``apply_to_fileset``): the processor and the ONNX
wrapper give exactly what they give on eager events, read only the branches they need, and a
missing branch is the same one line."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

from pairhunt.assign.registry import make_method
from pairhunt.cli import main
from pairhunt.errors import PairhuntError
from pairhunt.lazy import project
from pairhunt.ml import OnnxWrapper
from pairhunt.processors import PairProcessor
from pairhunt.runner import normalise_files, run_fileset
from test_processor import assert_same_hists, write_nanoaod

dask = pytest.importorskip("dask", reason="needs the 'dask' extra")
dak = pytest.importorskip("dask_awkward", reason="needs the 'dask' extra")

CMS_TTBAR = ["nanoAOD_2015_CMS_Open_Data_ttbar.root", "nano_tt_v12.root", "nano_tt_v15.root"]
METHODS = ("chi2", "spanet=ttbar_allhad")


def processor(output_dir=None) -> PairProcessor:
    return PairProcessor("ttbar_allhad", [make_method(m) for m in METHODS], output_dir=output_dir)


def lazy_events(path, steps) -> ak.Array:
    spec = {str(path): {"object_path": "Events", "steps": steps}}
    return NanoEventsFactory.from_root(spec, schemaclass=NanoAODSchema, mode="dask", metadata={"dataset": "tt"}).events()


@pytest.fixture(scope="module")
def cms_fileset(shared_nanoaod) -> dict:
    return {name: normalise_files([str(shared_nanoaod / name)]) for name in CMS_TTBAR}


@pytest.fixture(scope="module")
def eager_v15(shared_nanoaod) -> ak.Array:
    return NanoEventsFactory.from_root({str(shared_nanoaod / "nano_tt_v15.root"): "Events"}, schemaclass=NanoAODSchema, mode="eager").events()


def test_both_modes_give_identical_histograms_on_cms_files(cms_fileset, generated):
    """Runner (one process) against dask-awkward mode on a pool of processes, chunk for partition."""
    fileset = {**cms_fileset, "generated": normalise_files([str(generated["ttbar"])])}
    runner = run_fileset(fileset, processor(), chunksize=70, progress=False)
    lazy = run_fileset(fileset, processor(), chunksize=70, progress=False, mode="dask-awkward", executor="futures", workers=2)
    assert_same_hists(runner.output["hists"], lazy.output["hists"])
    assert lazy.output["cutflow"] == runner.output["cutflow"]
    assert lazy.report.as_dict() == runner.report.as_dict()
    assert sum(lazy.report.processed.values()) == 3 * 200 + 400


def test_apply_to_fileset_reads_only_what_the_processor_needs(shared_nanoaod):
    """The analysis-facility path without pairhunt's runner: apply_to_fileset, then dask.compute."""
    from coffea.dataset_tools import apply_to_fileset

    path = str(shared_nanoaod / "nano_tt_v15.root")
    fileset = {"tt": {"files": {path: {"object_path": "Events", "steps": [[0, 70], [70, 140], [140, 200]]}}}}
    proc = processor()
    lazy_output = apply_to_fileset(proc, fileset, schemaclass=NanoAODSchema)  # builds a graph, reads nothing
    (computed,) = dask.compute(lazy_output)
    eager = run_fileset({"tt": normalise_files([path])}, processor(), chunksize=70, progress=False)
    assert_same_hists(eager.output["hists"], computed["tt"]["hists"])
    assert computed["tt"]["cutflow"] == eager.output["cutflow"]
    assert sum(computed["tt"]["files"]["tt"].values()) == 200

    events = lazy_events(path, [[0, 200]])
    (columns,) = dak.necessary_columns(project(events, proc.branches())).values()
    jet = {"Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_btagDeepFlavB", "nJet"}
    assert set(columns) == jet | {"genWeight", "run", "luminosityBlock", "event"}


def test_the_run_command_in_dask_awkward_mode_writes_the_same_run(shared_nanoaod, tmp_path):
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({name: [str(shared_nanoaod / name)] for name in CMS_TTBAR[2:]}))
    common = ["run", str(fileset), "--chunksize", "70", "--method", "chi2", "--no-progress"]
    assert main([*common, "-o", str(tmp_path / "runner")]) == 0
    assert main([*common, "-o", str(tmp_path / "lazy"), "--mode", "dask-awkward"]) == 0
    runner, lazy = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("runner", "lazy"))
    assert (runner["mode"], lazy["mode"], lazy["status"]) == ("runner", "dask-awkward", "complete")
    assert lazy["cutflow"] == runner["cutflow"] and lazy["files"] == runner["files"]
    tables = sorted((tmp_path / "runner" / "events").rglob("*.parquet"))
    assert len(tables) == 3
    for table in tables:
        expected, written = ak.from_parquet(table), ak.from_parquet(tmp_path / "lazy" / table.relative_to(tmp_path / "runner"))
        assert written.fields == expected.fields
        for field in expected.fields:
            flat = [ak.to_numpy(ak.flatten(a[field], axis=None)) for a in (expected, written)]
            np.testing.assert_array_equal(*flat, err_msg=field)  # NaN (rejected events) equal NaN


def test_a_missing_branch_is_the_same_one_line(tmp_path):
    jets = {k: ak.Array([[50.0] * 6]) for k in ("pt", "eta", "phi")}
    path = write_nanoaod(tmp_path / "no_mass.root", jets, 1)
    fileset = {"broken": normalise_files([str(path)])}
    with pytest.raises(PairhuntError, match=r"no_mass\.root.*missing branch\(es\) Jet_mass"):
        run_fileset(fileset, processor(), progress=False, mode="dask-awkward")


@pytest.mark.parametrize("model", ["ttbar_allhad", "pair_abc"])
def test_the_wrapper_gives_the_same_outputs_on_lazy_events(shared_nanoaod, eager_v15, model):
    wrapper = OnnxWrapper(model)
    expected = wrapper(eager_v15.Jet)
    lazy = wrapper(lazy_events(shared_nanoaod / "nano_tt_v15.root", [[0, 70], [70, 200]]).Jet)  # a graph: nothing read yet
    first = lazy[wrapper.contract.outputs[0]]
    (columns,) = dak.necessary_columns(first).values()
    assert not any(c.startswith("Jet_") and c.removeprefix("Jet_") not in ("pt", "eta", "phi", "mass", "btagDeepFlavB") for c in columns)
    (computed,) = dask.compute(lazy)
    assert computed.keys() == expected.keys()
    for name in expected:
        np.testing.assert_array_equal(ak.to_numpy(computed[name]), ak.to_numpy(expected[name]), err_msg=name)


def test_the_wrapper_on_no_events_gives_empty_outputs_of_the_right_shape(eager_v15):
    """onnxruntime dies with SIGFPE on an empty batch; the wrapper never hands it one."""
    outputs = OnnxWrapper("ttbar_allhad")(eager_v15.Jet[:0])
    assert ak.to_numpy(outputs["assignment_t1"]).shape == (0, 10, 10, 10)
    assert ak.to_numpy(outputs["detection_t1"]).shape == (0,)


def test_unreadable_partitions_fail_their_chunks_as_in_runner_mode(tmp_path):
    """A truncated file and a bit-flipped basket: the same failed chunks, errors and histograms."""
    from faults import flip_basket, toy_events, truncate, write_baskets

    intact = write_baskets(tmp_path / "intact.root", toy_events(1200, seed=1), 200)
    fileset = {
        "cut": normalise_files([str(truncate(intact, tmp_path / "truncated.root", 0.7))]),
        "flipped": normalise_files([str(flip_basket(intact, tmp_path / "flipped.root", "Jet_pt", 2))]),
    }
    chi2 = PairProcessor("ttbar_allhad", [make_method("chi2")])
    runner = run_fileset(fileset, chi2, chunksize=200, progress=False, allow_partial=True)
    lazy = run_fileset(fileset, chi2, chunksize=200, progress=False, allow_partial=True, mode="dask-awkward")
    failed = [(c["file"], c["entry_start"], c["error"].split(":")[0]) for c in lazy.report.failed_chunks]
    assert failed == [(c["file"], c["entry_start"], c["error"].split(":")[0]) for c in runner.report.failed_chunks]
    assert [kind for *_, kind in failed] == ["OSError"] * 3 + ["zlib.error"]
    assert lazy.report.processed == runner.report.processed
    assert_same_hists(runner.output["hists"], lazy.output["hists"])

"""Fault injection: every entry of every file ends up processed, in a failed chunk (listed with its
error), or not processed; outputs are never half-written or blamed on inputs; a stopped run
resumes to bit-identical histograms. The toy files carry float weights, so any change in the
order of the sums would show in the bits."""

from __future__ import annotations

import glob
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import awkward as ak
import cloudpickle
import numpy as np
import pytest

import faults
from faults import KillOnce, flip_basket, toy_events, truncate, write_baskets
from pairhunt.cli import main
from pairhunt.errors import OutputError
from pairhunt.assign.registry import make_method
from pairhunt.processors import PairProcessor
from pairhunt.runner import PartialRun, normalise_files, run_fileset
from pairhunt.store import ChunkStore

cloudpickle.register_pickle_by_value(faults)  # workers need not find tests/ on their path

EVENTS, BASKET = 1200, 200


def run(files: dict, processor=None, **options):
    fileset = {dataset: normalise_files([str(p) for p in paths]) for dataset, paths in files.items()}
    processor = processor or PairProcessor("ttbar_allhad", [make_method("chi2")])
    options.setdefault("progress", False)
    options.setdefault("chunksize", BASKET)
    return run_fileset(fileset, processor, **options)


def assert_same_hists(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        assert list(a[name].axes[0]) == list(b[name].axes[0]), name
        np.testing.assert_array_equal(a[name].values(flow=True), b[name].values(flow=True), err_msg=name)
        np.testing.assert_array_equal(a[name].variances(flow=True), b[name].variances(flow=True), err_msg=name)


def load_run(out: Path) -> tuple[dict, ak.Array]:
    """A finished CLI run: its accumulator and its per-event table in event order."""
    from coffea.util import load

    table = ak.concatenate([ak.from_parquet(p) for p in sorted(glob.glob(str(out / "events/*/*.parquet")))])
    return load(out / "hists" / "hists.coffea"), table[np.argsort(ak.to_numpy(table.event))]


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.fixture(scope="module")
def toys(tmp_path_factory) -> SimpleNamespace:
    """A weighted toy file in six baskets, a truncated copy and a copy with one basket corrupted."""
    directory = tmp_path_factory.mktemp("toys")
    events = toy_events(EVENTS, seed=1)
    intact = write_baskets(directory / "intact.root", events, BASKET)
    fileset = directory / "fileset.json"
    fileset.write_text(json.dumps({"toy": [str(intact)]}))
    return SimpleNamespace(
        directory=directory,
        events=events,
        intact=intact,
        fileset=fileset,
        truncated=truncate(intact, directory / "truncated.root", 0.7),
        flipped=flip_basket(intact, directory / "flipped.root", "Jet_pt", 2),
    )


@pytest.fixture(scope="module")
def reference(toys):
    """The intact file, iterative executor, no store."""
    return run({"toy": [toys.intact]})


def test_truncated_file_loses_its_unreadable_chunks_and_says_so(toys, tmp_path):
    files = {"cut": [toys.truncated], "intact": [toys.intact]}
    with pytest.raises(PartialRun) as stopped:
        run(files)
    report = stopped.value.result.report
    name = str(toys.truncated)
    processed, failed = report.processed[name], report.failed_chunks
    assert processed + report.failed_events == EVENTS and 0 < processed < EVENTS
    assert [(c["entry_start"], c["entry_stop"]) for c in failed] == [(s, s + BASKET) for s in range(processed, EVENTS, BASKET)]
    assert all(c["file"] == name and c["error"].startswith("OSError") for c in failed)
    assert report.processed[str(toys.intact)] == EVENTS and report.not_processed == {} and report.skipped == {}
    assert f"{name} entries {processed}-{processed + BASKET}" in str(stopped.value)

    partial = run(files, allow_partial=True)
    head = write_baskets(tmp_path / "head.root", toys.events[:processed], BASKET)
    expected = run({"cut": [head], "intact": [toys.intact]})
    assert_same_hists(partial.output["hists"], expected.output["hists"])
    assert partial.output["cutflow"] == expected.output["cutflow"]


def test_bit_flipped_basket_fails_exactly_its_chunk(toys, tmp_path):
    partial = run({"toy": [toys.flipped]}, allow_partial=True)
    (failed,) = partial.report.failed_chunks
    assert (failed["entry_start"], failed["entry_stop"], failed["events"]) == (400, 600, BASKET)
    assert failed["error"].startswith("zlib.error")
    assert partial.report.processed[str(toys.flipped)] == EVENTS - BASKET
    events = toys.events
    without = write_baskets(tmp_path / "without.root", ak.concatenate([events[:400], events[600:]]), BASKET)
    expected = run({"toy": [without]})
    assert_same_hists(partial.output["hists"], expected.output["hists"])
    assert partial.output["cutflow"] == expected.output["cutflow"]


def test_killed_futures_worker_fails_the_unfinished_chunks_and_resume_completes(toys, reference, tmp_path):
    store = ChunkStore(tmp_path / "store")
    killer = KillOnce("ttbar_allhad", [make_method("chi2")], entrystart=600, marker=tmp_path / "killed")
    with pytest.raises(PartialRun) as stopped:
        run({"toy": [toys.intact]}, killer, executor="futures", workers=2, store=store)
    report = stopped.value.result.report
    assert report.processed[str(toys.intact)] + report.failed_events == EVENTS
    assert 600 in {c["entry_start"] for c in report.failed_chunks}
    assert all("WorkerLost: a worker process died" in c["error"] for c in report.failed_chunks)

    resumed = run({"toy": [toys.intact]}, killer, executor="futures", workers=2, store=store)
    assert resumed.report.failed_chunks == [] and resumed.report.processed[str(toys.intact)] == EVENTS
    assert_same_hists(resumed.output["hists"], reference.output["hists"])
    assert resumed.output["cutflow"] == reference.output["cutflow"]


def test_killed_dask_worker_is_replaced_and_totals_are_exact(toys, reference, tmp_path):
    killer = KillOnce("ttbar_allhad", [make_method("chi2")], entrystart=600, marker=tmp_path / "killed")
    result = run({"toy": [toys.intact]}, killer, executor="dask", workers=2)
    assert (tmp_path / "killed").exists()  # a worker did die
    assert result.report.failed_chunks == [] and result.report.processed[str(toys.intact)] == EVENTS
    assert_same_hists(result.output["hists"], reference.output["hists"])
    assert result.output["cutflow"] == reference.output["cutflow"]


def test_resume_reruns_only_chunks_whose_manifest_entry_or_outputs_are_missing(toys, reference, tmp_path):
    store = ChunkStore(tmp_path)
    processor = PairProcessor("ttbar_allhad", [make_method("chi2")], output_dir=tmp_path)
    run({"toy": [toys.intact]}, processor, store=store)
    outputs = {p.name: p.stat().st_mtime_ns for p in store.chunk_dir.glob("*.coffea")}
    entries = sorted(store.chunk_dir.glob("*.json"))
    for entry in entries[:2]:
        entry.unlink()  # the run stopped before these chunks were recorded
    damaged = json.loads(entries[2].read_text())
    parquet = next(name for name in damaged["outputs"] if name.endswith(".parquet"))
    with open(tmp_path / parquet, "ab") as f:
        f.write(b"\0")  # a table that no longer matches its checksum

    resumed = run({"toy": [toys.intact]}, processor, store=store)
    rerun = {p.name for p in store.chunk_dir.glob("*.coffea") if p.stat().st_mtime_ns != outputs[p.name]}
    assert rerun == {e.with_suffix(".coffea").name for e in entries[:3]}
    assert_same_hists(resumed.output["hists"], reference.output["hists"])
    assert resumed.output["cutflow"] == reference.output["cutflow"]


def test_command_line_accounts_refuses_mixing_and_resumes(toys, tmp_path, capsys):
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({"cut": [str(toys.truncated)]}))
    out = tmp_path / "out"
    argv = ["run", str(fileset), "-o", str(out), "--chunksize", str(BASKET), "--no-progress"]

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    line = one_line(capsys.readouterr().err)
    assert "chunk(s)" in line and str(toys.truncated) in line and "--allow-partial" in line
    assert not (out / "summary.json").exists()  # nothing looks like a finished run
    stopped = json.loads((out / ".incomplete" / "summary.json").read_text())
    assert stopped["status"] == "incomplete" and stopped["events"] + stopped["events_failed"] == EVENTS

    refusals = [
        (["bumphunt", str(out)], "holds an unfinished run"),
        (["evaluate", str(out), str(fileset)], "holds an unfinished run"),
        (argv, "is not empty; pass --overwrite to replace its run or --resume to finish it"),
        ([*argv, "--chunksize", "300", "--resume"], "its run was made with another chunksize"),
    ]
    for command, message in refusals:
        with pytest.raises(SystemExit) as exit_info:
            main(command)
        assert exit_info.value.code == 2 and message in one_line(capsys.readouterr().err)

    assert main([*argv, "--resume", "--allow-partial"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "partial" and not (out / ".incomplete").exists()
    assert summary["events"] == stopped["events"] and summary["files"]["failed_chunks"] == stopped["files"]["failed_chunks"]
    assert len(load_run(out)[1]) == summary["events"]  # one row per processed event, none twice

    assert main([*argv[:4], "--chunksize", "300", "--overwrite", "--allow-partial", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["chunksize"] == 300 and len(load_run(out)[1]) == summary["events"]
    assert summary["events"] + summary["events_failed"] == EVENTS


def test_unwritable_output_stops_the_run_and_blames_no_input(toys, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(toys.fileset), "-o", "/proc/pairhunt/out", "--no-progress"])
    assert exit_info.value.code == 2
    assert "cannot write to /proc/pairhunt/out: FileNotFoundError" in one_line(capsys.readouterr().err)

    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "toy").write_text("a file where the dataset's directory goes")
    for executor in ("iterative", "futures"):
        processor = PairProcessor("ttbar_allhad", [make_method("chi2")], output_dir=tmp_path)
        with pytest.raises(OutputError, match=r"cannot write per-event results .*FileExistsError.*events/toy"):
            run({"toy": [toys.intact]}, processor, executor=executor, store=ChunkStore(tmp_path / executor))
        assert not list((tmp_path / executor / "chunks").glob("*.json"))  # no chunk recorded, none failed


@pytest.mark.parametrize(
    ("executor", "mode", "stop", "code"),
    [("iterative", "runner", signal.SIGTERM, 143), ("futures", "runner", signal.SIGINT, 130), ("futures", "dask-awkward", signal.SIGINT, 130)],
)
def test_interrupted_run_resumes_to_the_same_bits(toys, tmp_path, executor, mode, stop, code):
    out = tmp_path / "out"
    # 240 small chunks: with the compiled baselines a chunk takes milliseconds, and the run must
    # still be going when the signal arrives
    argv = ["run", str(toys.fileset), "-o", str(out), "--chunksize", "5", "--no-progress"]
    for _ in range(3):  # a run that ends between two looks at its chunks cannot be stopped: start it again
        child = subprocess.Popen(
            [sys.executable, "-m", "pairhunt.cli", *argv, "--overwrite", "--executor", executor, "--mode", mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while len(glob.glob(str(out / ".incomplete/chunks/*.json"))) < 2 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if child.poll() is None:
            break
        child.communicate(timeout=60)
    else:
        pytest.fail("the run ended three times before it could be interrupted")
    child.send_signal(stop)
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == code and stdout == ""  # no progress bar, no cutflow of a stopped run
    assert f"interrupted by {signal.Signals(stop).name}" in one_line(stderr)
    stopped = json.loads((out / ".incomplete" / "summary.json").read_text())
    files = stopped["files"]
    assert stopped["status"] == "incomplete" and not (out / "summary.json").exists()
    assert stopped["events"] + sum(files["not_processed"].values()) == EVENTS and stopped["events"] < EVENTS

    assert main([*argv, "--resume"]) == 0
    assert main(["run", str(toys.fileset), "-o", str(tmp_path / "reference"), "--chunksize", "5", "--no-progress"]) == 0
    (resumed, table), (expected, expected_table) = load_run(out), load_run(tmp_path / "reference")
    assert_same_hists(resumed["hists"], expected["hists"])
    assert resumed["cutflow"] == expected["cutflow"] and len(table) == EVENTS
    assert ak.array_equal(table, expected_table, equal_nan=True)


def test_empty_dataset_is_a_warning_and_no_progress_prints_no_bar(toys, tmp_path, capsys):
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({"toy": [str(toys.intact)], "tt": []}))
    assert main(["run", str(fileset), "-o", str(tmp_path / "out"), "--chunksize", "600", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "warning: dataset 'tt' lists no files" in captured.err
    assert "Processing" not in captured.out + captured.err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["warnings"] == ["dataset 'tt' lists no files"] and summary["status"] == "complete"
    assert summary["cutflow"]["tt"]["events"] == {"all events": 0}


def test_bad_inputs_of_the_other_commands_are_one_line(toys, tmp_path, capsys):
    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_text("not a model")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(toys.fileset), "-o", str(tmp_path / "x"), "--method", f"spanet={not_onnx}"])
    assert exit_info.value.code == 2
    assert "is not an ONNX model onnxruntime can load" in one_line(capsys.readouterr().err)

    for option, value, message in (("--onnx-batch-size", "0", "batch size must be at least 1"), ("--top-k", "0", "top k must be")):
        with pytest.raises(SystemExit) as exit_info:
            main(["run", str(toys.fileset), "-o", str(tmp_path / "opt"), "--method", "spanet=ttbar_allhad", option, value])
        assert exit_info.value.code == 2
        assert message in one_line(capsys.readouterr().err)

    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():  # on a GPU node --device cuda is valid
        with pytest.raises(SystemExit) as exit_info:
            main(["run", str(toys.fileset), "-o", str(tmp_path / "cuda"), "--method", "spanet=ttbar_allhad", "--device", "cuda"])
        assert exit_info.value.code == 2
        assert "no CUDA provider" in one_line(capsys.readouterr().err)

    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"toy": []}))
    assert main(["run", str(empty), "-o", str(tmp_path / "empty"), "--no-progress"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["bumphunt", str(tmp_path / "empty"), "--no-progress"])
    assert exit_info.value.code == 2
    assert "selected no event: nothing to fit" in one_line(capsys.readouterr().err)

    few = tmp_path / "few"
    assert main(["run", str(toys.fileset), "-o", str(few), "--chunksize", "100", "--maxchunks", "1", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["bumphunt", str(few), "--pseudo-experiments", "0", "--no-progress"]) == 0
    assert "below 100 the fit and significances are unreliable" in one_line(capsys.readouterr().err)


def test_unreadable_training_data_is_one_line(tmp_path, capsys):
    pytest.importorskip("torch", reason="needs the 'train' extra")
    not_root, not_h5 = tmp_path / "notes.root", tmp_path / "notes.h5"
    not_root.write_text("not a ROOT file")
    not_h5.write_text("not an HDF5 file")
    for argv, message in (
        (["train", "abc", "--data", str(tmp_path / "missing.root")], "cannot read"),
        (["train", "abc", "--data", str(not_root)], "cannot read"),
        (["train", "spanet", "--topology", "ttbar_allhad", "--data", str(tmp_path / "missing.h5")], "cannot read"),
        (["train", "spanet", "--topology", "ttbar_allhad", "--data", str(not_h5)], "cannot read"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*argv, "-o", str(tmp_path / "run"), "--no-progress"])
        assert exit_info.value.code == 2
        assert message in one_line(capsys.readouterr().err)


def test_a_bad_model_size_is_one_line_before_any_file_is_read(tmp_path, capsys):
    pytest.importorskip("torch", reason="needs the 'train' extra")
    spanet = ["train", "spanet", "--topology", "ttbar_allhad", "--data", str(tmp_path / "missing.root"), "-o", str(tmp_path / "run")]
    abc = ["train", "abc", "--topology", "pair_abc", "--data", str(tmp_path / "missing.root"), "-o", str(tmp_path / "run")]
    for command, options, message in (
        (spanet, ["--pair-bias", "-3"], "pair bias -3"),
        (spanet, ["--dim", "30", "--heads", "4"], "dim 30 does not divide into 4 heads"),
        (spanet, ["--encoder-layers", "0"], "encoder layers 0"),
        (spanet, ["--tuple-mass", "-1"], "tuple mass -1"),
        (abc, ["--dim", "-8"], "dim -8"),
        (abc, ["--dim", "30", "--heads", "4"], "dim 30 must exceed 3 and divide into 4 heads"),
        (abc, ["--temperature", "0"], "temperature 0"),
        (abc, ["--isr-weight", "-1"], "isr -1"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, *options, "--no-progress"])
        assert exit_info.value.code == 2
        assert message in one_line(capsys.readouterr().err)  # not "cannot read": the size is checked first


def test_commands_that_read_a_run_refuse_a_directory_that_holds_none(tmp_path, capsys):
    """One line, exit 2, naming what is missing: not a message about a file deep inside."""
    not_a_run = tmp_path / "not_a_run"
    not_a_run.mkdir()
    commands = [
        ["anomaly", str(not_a_run), "--method", "cwola", "--window", "1000", "1200", "--assignment", "abc", "--data", "data",
         "-o", str(tmp_path / "anomaly")],
        ["characterize", str(not_a_run), "--window", "1000", "1200", "--data", "data", "-o", str(tmp_path / "map")],
    ]
    for argv in commands:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2, argv
        assert f"{not_a_run} is not a finished pairhunt run (no summary.json)" in one_line(capsys.readouterr().err), argv

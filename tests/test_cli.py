"""Every subcommand has --help; --version; the package layout installs as documented."""

from __future__ import annotations

import argparse
import importlib
import importlib.resources
import json
import subprocess
import sys

import pytest

from pairhunt import __version__
from pairhunt.cli import build_parser


def subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_version():
    result = subprocess.run([sys.executable, "-m", "pairhunt.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.strip() == f"pairhunt {__version__}"


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_and_option_has_help(command, capsys):
    parser = build_parser()
    chooser = next(a for a in parser._actions if a.dest == "command")
    subparser = chooser.choices[command]
    assert next(a.help for a in chooser._choices_actions if a.dest == command)  # listed in pairhunt --help
    assert subparser.description
    nested = [a for a in subparser._actions if isinstance(a, argparse._SubParsersAction)]  # train spanet|abc
    options = [a for a in subparser._actions if a not in nested] + [c for a in nested for c in a._choices_actions]
    assert [a.option_strings or a.dest for a in options if not a.help] == []
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([command, "--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    assert [o for a in subparser._actions for o in a.option_strings if o not in shown] == []


def test_layout_packages_import():
    importlib.import_module("pairhunt.processors")
    assert importlib.resources.files("pairhunt.models").is_dir()


def test_public_api_resolves_lazily():
    code = "import sys, pairhunt; print('onnxruntime' in sys.modules or 'numba' in sys.modules)"
    light = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert light.stdout.strip() == "False"  # import pairhunt alone loads none of the heavy parts
    import pairhunt

    for name in pairhunt.__all__:
        assert getattr(pairhunt, name) is not None
    assert pairhunt.PairProcessor is importlib.import_module("pairhunt.processors").PairProcessor
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        pairhunt.nothing  # noqa: B018


def test_torch_is_not_imported_by_the_analysis_side():
    code = "import sys, pairhunt.cli, pairhunt.generate, pairhunt.processors, pairhunt.theory; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


BASE_INSTALL = """
import contextlib, io, json, sys

class BaseInstall:  # pip install pairhunt, no extras: their modules do not import
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"torch", "zuko", "onnx", "onnxscript", "pythia8mc", "fastjet"}:
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)

sys.meta_path.insert(0, BaseInstall())
from pairhunt.cli import main

results = {}
for argv in json.loads(sys.argv[1]):
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code
    results[argv[0]] = [code, stderr.getvalue()]
print(json.dumps(results))
"""


def test_a_base_install_runs_and_names_each_missing_extra(shared_nanoaod, tmp_path):
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps({"tt": [str(shared_nanoaod / "nano_tt_v12.root")]}))
    needs = {
        "generate": (["generate", "gluino", "-n", "5", "-o", str(tmp_path / "g.root")], "generate"),
        "train": (["train", "spanet", "--topology", "ttbar_allhad", "--data", "x.root", "-o", str(tmp_path / "r")], "train"),
        "export": (["export", str(tmp_path / "nowhere"), "-o", str(tmp_path / "m.onnx")], "train"),
        "ensemble": (["ensemble", "a.onnx", "b.onnx", "-o", str(tmp_path / "e.onnx")], "train"),
        "recalibrate": (["recalibrate", "a.onnx", "--data", "x.root", "-o", str(tmp_path / "r.onnx")], "train"),
        "anomaly": (["anomaly", str(tmp_path), "--assignment", "chi2", "--window", "1", "2", "--data", "tt", "-o", str(tmp_path / "a")], "anomaly"),
        "demo": (["demo", "-o", str(tmp_path / "d")], "generate"),
    }
    runs = [argv for argv, _ in needs.values()] + [["run", str(fileset), "-o", str(tmp_path / "out"), "--method", "chi2", "--no-progress"]]
    result = subprocess.run([sys.executable, "-c", BASE_INSTALL, json.dumps(runs)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    for command, (_, extra) in needs.items():
        code, stderr = outcome[command]
        assert code == 2 and stderr.count("\n") == 1, (command, stderr)
        assert f"pairhunt {command}: error: pairhunt {command} needs the '{extra}' extra (pip install 'pairhunt[{extra}]')" in stderr
    assert outcome["run"][0] == 0  # the analysis side needs no extra
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["status"] == "complete"

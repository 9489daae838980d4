"""The wheel, not only the editable install the tests run from, carries every module and every
shipped file: pyproject.toml lists the packages by hand (processors/ and models/ live outside
src/), so a new subpackage left out of the list is missing from ``pip install pairhunt``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# source folder -> where its files land in the wheel (pyproject.toml's package-dir)
INSTALLED_AS = {"src/pairhunt": "pairhunt", "processors": "pairhunt/processors", "models": "pairhunt/models"}


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory) -> set[str]:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    for folder in ("src", "processors", "models"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("wheel")
    # the installed build backend where it is recent enough (torch brings one), else pip fetches it
    isolation = ["--no-build-isolation"] if _setuptools_major() >= 77 else []
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out), *isolation],
        check=True, capture_output=True,
    )
    (wheel,) = out.glob("pairhunt-*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def _setuptools_major() -> int:
    try:
        import setuptools
    except ImportError:
        return 0
    return int(setuptools.__version__.split(".")[0])


def _shipped(folder: str, pattern: str) -> list[str]:
    base = ROOT / folder
    return [f"{INSTALLED_AS[folder]}/{p.relative_to(base).as_posix()}" for p in sorted(base.rglob(pattern)) if "__pycache__" not in p.parts]


def test_the_wheel_carries_every_module(wheel_files):
    modules = [m for folder in INSTALLED_AS for m in _shipped(folder, "*.py")]
    assert len(modules) > 100
    assert [m for m in modules if m not in wheel_files] == []


def test_the_wheel_carries_the_shipped_models_and_topologies(wheel_files):
    data = _shipped("models", "*.onnx") + _shipped("models", "*.md") + _shipped("src/pairhunt", "*.yaml")
    assert any(d.endswith("pair_abc.onnx") for d in data) and any("topologies/" in d for d in data)
    assert [d for d in data if d not in wheel_files] == []

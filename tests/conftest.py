"""Shared fixtures: small generated samples (seconds of Pythia) and the shared real NanoAOD files."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# (sample, parameters, events): a few hundred events each, generated once per test session
GENERATED = {
    "ttbar": ({}, 400),
    "ttbar-semileptonic": ({}, 400),
    "gluino": ({"mass": 1000.0}, 200),
    "gluino-cascade": ({"mass": 1500.0, "mchi": 500.0}, 200),
    "stop": ({"mass": 1000.0}, 200),
    "qcd": ({"pthat_min": 250.0}, 200),
}


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> dict[str, Path]:
    """ROOT files of every sample, generated with seed 11."""
    pytest.importorskip("pythia8mc", reason="needs the 'generate' extra")
    from pairhunt.generate import Request, generate, make_sample

    directory = tmp_path_factory.mktemp("generated")
    files = {}
    for name, (parameters, events) in GENERATED.items():
        path = directory / f"{name}.root"
        generate(Request(make_sample(name, **parameters), events, seed=11), path, progress=False)
        files[name] = path
    return files


@pytest.fixture(scope="session")
def shared_nanoaod() -> Path:
    directory = SHARED_DATA / "nanoaod"
    if not directory.is_dir():
        pytest.skip(f"shared NanoAOD files not found at {directory}")
    return directory

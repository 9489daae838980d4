"""Faults to inject: weighted toy files in several baskets, truncation, bit flips, a worker that dies."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from pairhunt.generate.nanoaod import NanoAODWriter
from pairhunt.processors import PairProcessor


def toy_events(n_events: int, seed: int) -> ak.Array:
    """NanoAOD-like events: 4-9 jets each (most pass the ttbar selection), float weights."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(4, 10, n_events)
    n = int(counts.sum())

    def jagged(values):
        return ak.unflatten(values.astype(np.float32), counts)

    jets = ak.zip(
        {
            "pt": jagged(rng.uniform(30, 300, n)),
            "eta": jagged(rng.uniform(-2.4, 2.4, n)),
            "phi": jagged(rng.uniform(-np.pi, np.pi, n)),
            "mass": jagged(rng.uniform(5, 30, n)),
            "btag": ak.unflatten(rng.random(n) < 0.3, counts),
        }
    )
    return ak.zip(
        {
            "run": np.ones(n_events, dtype=np.uint32),
            "luminosityBlock": np.ones(n_events, dtype=np.uint32),
            "event": np.arange(1, n_events + 1, dtype=np.uint64),
            "genWeight": rng.lognormal(0.0, 1.0, n_events).astype(np.float32),
            "Jet": jets,
        },
        depth_limit=1,
    )


def write_baskets(path: Path, events: ak.Array, per_basket: int) -> Path:
    """``events`` in baskets of ``per_basket`` entries (one ``extend`` each), zlib-compressed."""
    with NanoAODWriter(path) as writer:
        for start in range(0, len(events), per_basket):
            writer.write(events[start : start + per_basket])
    return path


def truncate(source: Path, target: Path, fraction: float) -> Path:
    """The first ``fraction`` of ``source``'s bytes: the TTree opens, its last baskets are gone."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def flip_basket(source: Path, target: Path, branch: str, basket: int) -> Path:
    """``source`` with 16 bytes inverted in the middle of one compressed basket of ``branch``."""
    with uproot.open(source) as f:
        b = f["Events"][branch]
        middle = int(b.member("fBasketSeek")[basket] + b.member("fBasketBytes")[basket] // 2)
    data = bytearray(source.read_bytes())
    data[middle : middle + 16] = bytes(x ^ 0xFF for x in data[middle : middle + 16])
    target.write_bytes(bytes(data))
    return target


class KillOnce(PairProcessor):
    """Kills the worker process that first reaches the chunk starting at ``entrystart``.

    The ``marker`` file remembers the kill, so the chunk runs normally when tried again.
    """

    def __init__(self, *args, entrystart: int, marker: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.entrystart = entrystart
        self.marker = str(marker)

    def process_chunk(self, events, metadata: dict) -> dict:
        if metadata["entrystart"] == self.entrystart and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().process_chunk(events, metadata)

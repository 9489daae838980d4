"""A deep ensemble of ABC models: one recipe, several seeds, one anomaly score.

ABC trainings that differ only in their seed score signal very differently (on the tuning
samples, 1.3 TeV gluinos against QCD: AUC 0.74 to 0.91 for seeds 1-5), because the score is
the reconstruction error of a small autoencoder stopped early. The geometric mean of the
members' scores is better than any single member and does not depend on the luck of one seed.
The geometric mean, not the arithmetic one: a member whose errors are on a larger scale does
not outvote the others.

The first member assigns the jets: the category probabilities and the average parent mass
(what the processor histograms) are its own, so the mass spectrum is that of one model. It is
the member with the best validation loss (``assigner_first``), chosen on background alone. The
members of one recipe assign very differently (tuning 1.8 TeV gluinos inside the ±15 % window:
0 % to 50 %): some never leave the ISR-heavy start of training, and the loss never picked one of
those (45 members in nine ensembles, ``benchmarks/abc_assigner_choice.py``); among the others
neither the loss nor any other background-only measure tried ranks them. The ensemble's score
is calibrated in bins of that mass like a single model's (``anomaly_score_decorrelated``). A run directory of an
ensemble holds ``ensemble.json`` (the member directories, first the assigning one), each
member's own run directory and the ensemble's ``calibration.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from pairhunt.errors import PairhuntError
from pairhunt.train.abc_model import AbcModel, MassCalibration, scored_outputs

ENSEMBLE_FILE = "ensemble.json"


class AbcEnsemble(nn.Module):
    """ABC models of one recipe; the first assigns, all score (geometric mean)."""

    def __init__(self, members: list[AbcModel]):
        super().__init__()
        if not members:
            raise PairhuntError("an ABC ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.calibration = MassCalibration()

    def hard_assignment_score(self, jets: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The assigning (first) member's category probabilities and mass; the members' geometric-mean score."""
        probabilities, score, mass = self.members[0].hard_assignment_score(jets, mask)
        logs = [score.clamp_min(1e-12).log()]
        logs += [member.hard_assignment_score(jets, mask)[1].clamp_min(1e-12).log() for member in self.members[1:]]
        return probabilities, torch.stack(logs).mean(dim=0).exp(), mass

    def forward(self, jets: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return scored_outputs(*self.hard_assignment_score(jets, mask), self.calibration)


def member_dirs(run_dir: str | Path) -> list[Path] | None:
    """The member run directories of an ensemble run, first the assigning one; None for a single run."""
    path = Path(run_dir) / ENSEMBLE_FILE
    if not path.is_file():
        return None
    members = [Path(run_dir) / name for name in json.loads(path.read_text())["members"]]
    missing = [str(m) for m in members if not (m / "config.json").is_file()]
    if missing:
        raise PairhuntError(f"{path} lists member runs that are missing: {', '.join(missing)}")
    return members


def best_validation(run_dir: str | Path) -> float:
    """The validation objective (higher is better) of a member's ``best.pt``."""
    return float(torch.load(Path(run_dir) / "best.pt", weights_only=False, map_location="cpu")["best"])


def assigner_first(members: list[Path]) -> list[Path]:
    """The members ordered by their best validation objective, best first: that one assigns."""
    return sorted(members, key=best_validation, reverse=True)


def write_members(run_dir: str | Path, members: list[Path]) -> None:
    """Record the members (relative to ``run_dir``, first the assigning one)."""
    names = [str(Path(m).relative_to(run_dir)) for m in members]
    (Path(run_dir) / ENSEMBLE_FILE).write_text(json.dumps({"members": names}, indent=2) + "\n")

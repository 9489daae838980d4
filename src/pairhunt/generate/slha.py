"""SLHA spectra with R-parity-violating decay tables for the gluino samples.

Pythia overwrites ``oneChannel`` decay settings of SUSY particles when it reads an SLHA file
(and leaves the gluino stable), so the decays must come from DECAY tables in the file itself.
The RPV coupling lambda''_112-like decays g~ -> u d s (and charge conjugate) give three light
quarks per gluino; the neutralino of the cascade decays the same way. The stop of
:func:`rpv_stop_slha` decays through lambda''_312: t~ -> dbar sbar, two quarks.
"""

from __future__ import annotations

GLUINO = 1000021
NEUTRALINO = 1000022
STOP = 1000006
WIDTH = 0.01  # GeV: narrow compared with the jet resolution, prompt decay

_UDS = "    5.0E-01   3    2    1    3   # -> u d s\n    5.0E-01   3   -2   -1   -3   # -> ubar dbar sbar\n"


def neutralino_decay_table(mchi: float) -> tuple[float, str]:
    """Mass and DECAY table of an RPV neutralino decaying to three light quarks."""
    return mchi, f"DECAY   {NEUTRALINO}   {WIDTH:.3E}\n{_UDS}"


def rpv_gluino_slha(mass: float, neutralino: tuple[float, str] | None = None) -> str:
    """An SLHA file with a gluino of ``mass`` decaying to qqq, or to q qbar chi when given.

    ``neutralino`` is ``(mchi, decay_table)`` from :func:`neutralino_decay_table`.
    """
    masses = [f"   {GLUINO}   {mass:.6E}   # gluino"]
    if neutralino is None:
        gluino_decay = _UDS
        tables = ""
    else:
        mchi, tables = neutralino
        masses.append(f"   {NEUTRALINO}   {mchi:.6E}   # neutralino1")
        gluino_decay = "".join(
            f"    2.5E-01   3    {q}   {-q}   {NEUTRALINO}   # -> q qbar chi10\n" for q in (1, 2, 3, 4)
        )
    return (
        "BLOCK MODSEL\n    1   0   # general MSSM\n"
        "BLOCK MASS\n" + "\n".join(masses) + "\n"
        f"DECAY   {GLUINO}   {WIDTH:.3E}\n{gluino_decay}" + tables
    )


def rpv_stop_slha(mass: float) -> str:
    """An SLHA file with a stop of ``mass`` decaying to two light antiquarks (t~ -> dbar sbar)."""
    return (
        "BLOCK MODSEL\n    1   0   # general MSSM\n"
        f"BLOCK MASS\n   {STOP}   {mass:.6E}   # stop1\n"
        f"DECAY   {STOP}   {WIDTH:.3E}\n    1.0E+00   2   -1   -3   # -> dbar sbar\n"
    )

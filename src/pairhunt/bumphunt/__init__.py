"""Bump hunt on a mass spectrum: dijet-function background fit (3/4/5 parameters, F-test),
sliding-window scan with local and global significance, signal injection, plots and reports."""

from pairhunt.bumphunt.fit import BackgroundFit, FitChoice, choose_fit, fit_dijet
from pairhunt.bumphunt.hunt import BumpHunt, bump_hunt, inject, injection_test
from pairhunt.bumphunt.pseudodata import keep_by_weight
from pairhunt.bumphunt.scan import GlobalSignificance, ScanResult, global_significance, scan
from pairhunt.bumphunt.spectrum import Spectrum

__all__ = [
    "BackgroundFit", "BumpHunt", "FitChoice", "GlobalSignificance", "ScanResult", "Spectrum",
    "bump_hunt", "choose_fit", "fit_dijet", "global_significance", "inject", "injection_test", "keep_by_weight", "scan",
]

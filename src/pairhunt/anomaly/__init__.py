"""Resonant anomaly detection on the reconstructed pair mass: CWoLa hunting and CATHODE, with the
idealised and supervised classifiers as their bounds, on a run's per-event table.

torch (and zuko for CATHODE's flow) is needed here only, as in :mod:`pairhunt.train`.
"""

from pairhunt.anomaly.classifier import ClassifierConfig, kfold_scores
from pairhunt.anomaly.features import FEATURES, mass_correlations
from pairhunt.anomaly.flow import ConditionalFlow, FlowConfig
from pairhunt.anomaly.methods import METHODS, Scores, SearchConfig, cathode, cwola, idealised, supervised
from pairhunt.anomaly.regions import Window, sliding_windows
from pairhunt.anomaly.sample import AnomalySample, load_sample
from pairhunt.anomaly.significance import keep_threshold, max_sic, sculpting, sic_curve, sideband_significance

__all__ = [
    "FEATURES", "METHODS", "AnomalySample", "ClassifierConfig", "ConditionalFlow", "FlowConfig", "Scores", "SearchConfig", "Window",
    "cathode", "cwola", "idealised", "keep_threshold", "kfold_scores", "load_sample", "mass_correlations", "max_sic",
    "sculpting", "sic_curve", "sideband_significance", "sliding_windows", "supervised",
]

"""Monte Carlo samples: Pythia8 -> visible particles -> anti-kT jets -> NanoAOD-like ROOT file."""

from pairhunt.generate.detector import DetectorConfig
from pairhunt.generate.generator import Request, generate
from pairhunt.generate.samples import SAMPLE_NAMES, Sample, make_sample

__all__ = ["SAMPLE_NAMES", "DetectorConfig", "Request", "Sample", "generate", "make_sample"]

"""Spectra from a ``pairhunt run``: the average-mass histogram of one method, summed over
datasets with scale factors (cross section x luminosity / sum of weights), optionally after an
anomaly-score cut read from the (mass, score) histogram."""

from __future__ import annotations

from pathlib import Path

import hist
import numpy as np

from pairhunt.bumphunt.spectrum import Spectrum
from pairhunt.errors import PairhuntError


def load_hists(run_dir: str | Path) -> dict[str, hist.Hist]:
    """The histograms of a run directory (``hists/hists.coffea``)."""
    from coffea.util import load

    path = Path(run_dir) / "hists" / "hists.coffea"
    if not path.is_file():
        raise PairhuntError(f"{run_dir} is not a pairhunt run directory (no {path.relative_to(run_dir)})")
    return load(path)["hists"]


def _category(h: hist.Hist, axis: str, value: str) -> None:
    values = list(h.axes[axis])
    if value not in values:
        raise PairhuntError(f"no {axis} {value!r} in the run; it has {values}")


def method_spectrum(hists: dict[str, hist.Hist], method: str, datasets: dict[str, float], score_min: float | None = None) -> Spectrum:
    """Scaled sum over ``datasets`` of the average parent mass of ``method``.

    With ``score_min`` only events whose anomaly score is at least ``score_min`` (rounded down
    to the score axis' bin edge) count; the method must fill scores (ABC).
    """
    name = "mass_average" if score_min is None else "mass_score"
    h = hists[name]
    values = variances = None
    for dataset, factor in datasets.items():
        _category(h, "dataset", dataset)
        _category(h, "method", method)
        one = h[{"dataset": dataset, "method": method}]
        if score_min is not None:
            if one.sum().value <= 0:
                raise PairhuntError(f"method {method!r} filled no anomaly scores; a score cut needs a method such as ABC")
            one = one[:, hist.loc(score_min) :: sum]
        v, w2 = one.values() * factor, one.variances() * factor**2
        values, variances = (v, w2) if values is None else (values + v, variances + w2)
    if values is None:
        raise PairhuntError("no dataset given")
    return Spectrum(np.asarray(h.axes["mass"].edges, dtype=np.float64), values, variances)


def summed_2d(h: hist.Hist, method: str, datasets: dict[str, float]) -> hist.Hist | None:
    """Scaled sum over datasets of a (dataset, method, x, y) histogram; None when it is empty."""
    if method not in h.axes["method"]:
        return None
    parts = [h[{"dataset": d, "method": method}] * f for d, f in datasets.items() if d in h.axes["dataset"]]
    summed = sum(parts[1:], parts[0]) if parts else None
    return summed if summed is not None and summed.values().sum() > 0 else None


def parse_scaled(specs: list[str]) -> dict[str, float]:
    """``["qcd:2.5", "data"]`` -> ``{"qcd": 2.5, "data": 1.0}``."""
    out = {}
    for spec in specs:
        name, _, factor = spec.partition(":")
        try:
            out[name] = float(factor) if factor else 1.0
        except ValueError as error:
            raise PairhuntError(f"bad dataset scale in {spec!r}: use NAME or NAME:FACTOR") from error
    return out


def hunt_in_run(
    run_dir: str | Path,
    outdir: str | Path,
    method: str,
    datasets: dict[str, float],
    signal: dict[str, float] | None = None,
    strengths: tuple[float, ...] = (),
    score_min: float | None = None,
    **options,
) -> dict[str, Path]:
    """The bump hunt of one method's spectrum in a run, with its report and plots.

    ``signal`` (datasets and scales) is injected on top of ``datasets`` at the nominal strength
    (1) for the hunt itself, and at each of ``strengths`` for the injection test.
    """
    from pairhunt.bumphunt.hunt import bump_hunt, inject, injection_test
    from pairhunt.bumphunt.report import write_report

    hists = load_hists(run_dir)
    background = method_spectrum(hists, method, datasets, score_min)
    data = background
    extra: dict = {"method": method, "datasets": datasets, "score_min": score_min}
    if signal:
        template = method_spectrum(hists, method, signal, score_min)
        data = inject(background, template, 1.0)
        extra["signal"] = signal
        if strengths:
            extra["injection"] = injection_test(background, template, list(strengths), options.get("resolution", 0.1), options.get("fit_range"))
    hunt = bump_hunt(data, **options)
    everything = {**datasets, **(signal or {})}
    two_d = {name: summed_2d(hists[name], method, everything) for name in ("m1_m2", "mass_score")}
    label = f"{method}: {' + '.join(everything)}" + (f", score >= {score_min:g}" if score_min is not None else "")
    return write_report(hunt, Path(outdir), label, extra, {k: v for k, v in two_d.items() if v is not None})

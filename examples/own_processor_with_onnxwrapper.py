"""A pairhunt model inside *your own* coffea processor: ``OnnxWrapper`` runs the shipped SPA-NET
ttbar model on a NanoAOD jet collection, and the processor histograms what it needs (here, how
likely each top is to be fully reconstructable in the event: SPA-NET's detection output).

    python examples/own_processor_with_onnxwrapper.py ../shared/data/nanoaod/nano_tt_v15.root --output detection-example

Only the model comes from pairhunt: the selection, the histograms and the Runner are the
analysis's own (docs/processor.md, "A pairhunt model in your own coffea processor").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import awkward as ak
import hist
import matplotlib

matplotlib.use("Agg")  # files, not windows: runs on a batch node
import matplotlib.pyplot as plt
import mplhep as hep
from coffea import processor
from coffea.nanoevents import NanoAODSchema

from pairhunt.ml import OnnxWrapper


class TopDetection(processor.ProcessorABC):
    """Events with ≥ 6 jets of the model's selection; the detection probability of each top."""

    def __init__(self, model: str = "ttbar_allhad"):
        self.model = OnnxWrapper(model)  # the session is made in each worker, on first use

    def process(self, events):
        out = self.model(events.Jet)
        six_jets = ak.num(self.model.kept_jets(events.Jet)) >= 6
        h = hist.Hist(
            hist.axis.StrCategory([], name="dataset", growth=True),
            hist.axis.StrCategory(["t1", "t2"], name="top"),
            hist.axis.Regular(20, 0.0, 1.0, name="detection", label="Detection probability"),
        )
        for top in ("t1", "t2"):
            h.fill(dataset=events.metadata["dataset"], top=top, detection=ak.to_numpy(out[f"detection_{top}"][six_jets]))
        return {"detection": h, "events": len(events), "six_jets": int(ak.sum(six_jets))}

    def postprocess(self, accumulator):
        return accumulator


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="NanoAOD ROOT files (tree Events)")
    parser.add_argument("--output", default="detection-example")
    args = parser.parse_args(argv)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)

    runner = processor.Runner(executor=processor.IterativeExecutor(), schema=NanoAODSchema)
    result = runner({"ttbar": [str(Path(f).resolve()) for f in args.files]}, TopDetection(), treename="Events")
    print(f"{result['events']} events read, {result['six_jets']} with six jets")

    plt.style.use(hep.style.CMS)
    fig, ax = plt.subplots()
    for top in ("t1", "t2"):
        hep.histplot(result["detection"][{"dataset": "ttbar", "top": top}], ax=ax, label=top, yerr=False)
    ax.set_ylabel("Events with six jets")
    ax.legend(title="top")
    fig.savefig(output / "detection.png", bbox_inches="tight")
    plt.close(fig)
    return result


if __name__ == "__main__":
    main()

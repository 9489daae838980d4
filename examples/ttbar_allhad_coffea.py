"""All-hadronic ttbar on CMS NanoAOD with pairhunt inside a coffea analysis: the processor,
coffea's Runner, the accumulated histograms, and the reconstructed top mass per assignment method.

    python examples/ttbar_allhad_coffea.py ../shared/data/nanoaod/nano_tt_v12.root --output ttbar-example

The pieces are the ones ``pairhunt run`` uses (docs/api.md): a ``PairProcessor`` with three
assignment methods (plain χ², χ² with b-tags, the shipped SPA-NET model through onnxruntime),
``run_fileset`` (coffea's Runner, here the futures executor, with every chunk accounted for), and
``hist`` histograms with named axes, plotted with mplhep and saved as a ``.coffea`` accumulator.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import hist
import matplotlib

matplotlib.use("Agg")  # files, not windows: runs on a batch node
import matplotlib.pyplot as plt
import mplhep as hep
from coffea.util import save

from pairhunt import PairProcessor, make_method, run_fileset

METHODS = ("chi2", "chi2_btag", "spanet=ttbar_allhad")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="NanoAOD ROOT files (tree Events)")
    parser.add_argument("--output", default="ttbar-example")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)

    fileset = {"ttbar": {"files": {str(Path(f).resolve()): "Events" for f in args.files}}}
    processor = PairProcessor("ttbar_allhad", [make_method(spec) for spec in METHODS])
    result = run_fileset(fileset, processor, executor="futures", workers=args.workers)

    # every event is accounted for: processed (and counted in the cutflow) or in a failed chunk
    steps = result.output["cutflow"]["ttbar"]["events"]
    print("cutflow:", ", ".join(f"{step} {count}" for step, count in steps.items()))
    if result.report.failed_chunks:
        print(f"failed chunks: {result.report.failed_chunks}")

    mass = result.output["hists"]["mass_average"][{"dataset": "ttbar", "mass": hist.rebin(4)}]  # 20 GeV bins
    plt.style.use(hep.style.CMS)
    fig, ax = plt.subplots()
    for method in mass.axes["method"]:
        hep.histplot(mass[{"method": method}], ax=ax, label=method, yerr=False)
    ax.set_ylabel("Events (weighted)")
    ax.legend(title="assignment")
    fig.savefig(output / "top_mass.png", bbox_inches="tight")
    plt.close(fig)
    save(result.output, output / "ttbar.coffea")
    print(f"wrote {output / 'top_mass.png'} and {output / 'ttbar.coffea'}")
    return {"cutflow": steps, "failed_chunks": list(result.report.failed_chunks), "methods": list(mass.axes["method"])}


if __name__ == "__main__":
    main()

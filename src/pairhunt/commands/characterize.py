"""``pairhunt characterize``: place a mass window's events on the theory map."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pairhunt.errors import PairhuntError


def check_run_matches(run_dir: Path, contract) -> None:
    """The run's topology and method are those the map was trained on."""
    from pairhunt.rundir import require_finished

    require_finished(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    if summary["topology"] != contract.topology or summary["topology_definition"]["inputs"] != contract.topology_inputs:
        raise PairhuntError(
            f"the theory map was trained on topology {contract.topology!r}; {run_dir} ran topology {summary['topology']!r}"
            + (" with other inputs or selection" if summary["topology"] == contract.topology else "")
        )
    methods = [spec.partition("=")[0] for spec in summary["methods"]]
    if contract.method not in methods:
        raise PairhuntError(f"the theory map reads method {contract.method!r}; {run_dir} ran {methods}")


def execute(args: argparse.Namespace) -> int:
    from pairhunt.theory.characterize import characterize, window_set, write_characterization
    from pairhunt.theory.embedding import TheoryMap
    from pairhunt.theory.inputs import load_events

    run_dir = Path(args.run_dir)
    theory_map = TheoryMap(args.model)
    contract = theory_map.contract
    check_run_matches(run_dir, contract)
    accounting: dict[str, dict] = {}
    events = load_events(run_dir, contract.method, args.data, tuple(contract.features), accounting)
    window = window_set(events, args.window[0], args.window[1], args.sideband, raw=args.raw)
    result = characterize(theory_map, window, bootstrap=args.bootstrap, seed=args.seed)
    result["inputs"] = {"run_dir": str(run_dir), "data": args.data, "model": str(theory_map.path), "method": contract.method, "events": accounting}
    paths = write_characterization(result, theory_map, args.output)
    what = "background-subtracted" if window.description["background_subtracted"] else "raw"
    print(f"window {args.window[0]:g}-{args.window[1]:g} GeV ({what}, {window.description['signal_region_events']} events in it):")
    for row in result["ranking"][:5]:
        print(f"  {row['theory']:<24} probability {row['probability']:.3f}")
    tests = [name for name, key in (("on the map", "unlike_on_map"), ("in the pooled representation", "unlike_pooled")) if result[key]]
    flag = f"UNLIKE every theory of the library ({' and '.join(tests)})" if result["unlike_every_theory"] else "like the library"
    flag += f", as a set of {result['effective_events']:.0f} effective events"
    print(f"  {flag} ({result['unlike_fraction_of_resamples']:.0%} of resamples unlike)" if args.bootstrap else f"  {flag}")
    print(f"wrote {paths['json']} and {paths['map']}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "characterize", help="which known theory does a mass window's excess look like (theory map)",
        description="Place the events of a mass window (signal region minus the sideband-estimated background) on the "
        "theory map (`pairhunt train embed`): the probability of each library theory and a flag when the excess is "
        "unlike all of them. Writes characterize.json and map.png.",
    )
    parser.add_argument("run_dir", help="finished pairhunt run holding the data")
    parser.add_argument("--window", nargs=2, type=float, required=True, metavar=("LOW", "HIGH"), help="signal region in GeV")
    parser.add_argument("--data", nargs="+", required=True, help="datasets of the run that make the data")
    parser.add_argument("--model", default="theory_map", help="theory-map ONNX file or shipped name (default theory_map)")
    parser.add_argument("--raw", action="store_true", help="place the window's events as they are (no background subtraction)")
    parser.add_argument("--sideband", type=float, default=1.0, help="width of each sideband in signal-region widths (default 1)")
    parser.add_argument("--bootstrap", type=int, default=200, help="Poisson resamples of the set for the probabilities (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the resampling (default 1)")
    parser.add_argument("-o", "--output", required=True, help="output directory")
    parser.set_defaults(handler=execute)

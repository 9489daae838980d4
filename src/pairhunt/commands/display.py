"""Tables printed by the commands (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_summary(title: str, summary: dict) -> None:
    table = Table(title=title, show_header=False)
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        table.add_row(key, str(value))
    Console().print(table)


def print_cutflow(cutflow: dict) -> None:
    table = Table(title="cutflow")
    table.add_column("dataset")
    table.add_column("step")
    table.add_column("events", justify="right")
    table.add_column("sum of weights", justify="right")
    for dataset, flow in cutflow.items():
        for step, count in flow["events"].items():
            table.add_row(dataset, step, str(count), f"{flow['sumw'][step]:.6g}")
    Console().print(table)

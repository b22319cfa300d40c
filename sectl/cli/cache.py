"""`sectl cache`: the exported graphs sectl keeps for speed, listed and cleared."""

from __future__ import annotations

import typer
from rich.table import Table

from sectl.cli.common import handle_errors, out, print_json

HELP = """List or clear sectl's cache of exported onnxruntime graphs ($XDG_CACHE_HOME/sectl/onnx).

enhance exports a model's graph on first use and keeps it, keyed by the weights, buffers, constructor
arguments, the source of the code that builds it and the torch/onnx/onnxruntime versions, so a stale
graph is never served. The cache keeps at most $SECTL_CACHE_GB gigabytes (default 2), dropping the least
recently used graphs first; clearing it is always safe (graphs are exported again when needed).

Examples:

  sectl cache

  sectl cache --json

  sectl cache --clear
"""


def cache_command(
    clear: bool = typer.Option(False, "--clear", help="Remove every cached graph."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """List or clear the graph cache."""
    _run(clear, as_json)


@handle_errors
def _run(clear: bool, as_json: bool) -> None:
    from sectl.onnx import cache

    listed = cache.clear() if clear else cache.entries()
    total = sum(e.size for e in listed)
    if as_json:
        print_json({"folder": str(cache.cache_dir()), "limit_bytes": cache.limit_bytes(), "cleared": clear,
                    "total_bytes": total, "graphs": [e.to_json() for e in listed]})  # fmt: skip
        return
    if clear:
        out.print(f"removed {len(listed)} graph(s), {total / 2**20:.1f} MiB, from {cache.cache_dir()}", highlight=False)
        return
    if not listed:
        out.print(f"no cached graphs in {cache.cache_dir()}", highlight=False)
        return
    table = Table(title=f"{cache.cache_dir()}: {len(listed)} graph(s), {total / 2**20:.1f} MiB of {cache.limit_bytes() / 2**30:g} GiB")
    for column in ("graph", "MiB", "last used"):
        table.add_column(column, justify="right" if column == "MiB" else "left")
    for entry in listed:
        record = entry.to_json()
        table.add_row(entry.path.name, f"{entry.size / 2**20:.1f}", record["last_used"])
    out.print(table)

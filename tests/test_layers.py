"""The package's layers, read from the sources (imports inside functions count): no import cycles, and no
layer reaches up. Models know nothing of export, streaming or enhancement; streaming and export know
nothing of the engines that choose between them; only the CLI imports the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from sectl.provenance import sectl_imports

PACKAGE = Path(__file__).resolve().parents[1] / "sectl"


def module_graph() -> dict[str, set[str]]:
    files = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return {name: {m for m in sectl_imports(name, path) if m in files and m != name} for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            if component:
                found.append(sorted([node, *component]))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    assert cycles(module_graph()) == []


LAYERS = {
    "sectl.models": ("sectl.onnx", "sectl.streaming", "sectl.enhance", "sectl.engines", "sectl.export", "sectl.cli"),
    "sectl.streaming": ("sectl.onnx", "sectl.enhance", "sectl.engines", "sectl.export", "sectl.cli"),
    "sectl.onnx": ("sectl.enhance", "sectl.engines", "sectl.export", "sectl.cli"),
    "sectl.signal": ("sectl.enhance", "sectl.models", "sectl.cli"),
}


@pytest.mark.parametrize("layer", LAYERS)
def test_no_layer_reaches_up(layer):
    above = LAYERS[layer]
    wrong = {f"{name} -> {m}" for name, imported in module_graph().items() if name == layer or name.startswith(layer + ".")
             for m in imported if m.startswith(above)}  # fmt: skip
    assert wrong == set()


def test_only_the_cli_imports_the_cli():
    wrong = {f"{name} -> {m}" for name, imported in module_graph().items() if not name.startswith(("sectl.cli", "sectl.__main__"))
             for m in imported if m.startswith("sectl.cli")}  # fmt: skip
    assert wrong == set()


def test_the_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]

"""Where a written artefact came from: the sectl source commit and versions (no model imports here, so
checkpoint, export and training code can all use it without import cycles)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path


def git_commit() -> str | None:
    """The commit of the sectl source tree in use (None outside a git checkout)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def versions() -> dict[str, str]:
    """The versions that decide what an exported graph computes."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    found = {"torch": torch.__version__}
    for package in ("sectl", "onnx", "onnxruntime"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def module_file(name: str) -> Path | None:
    """The source file of module ``name`` (None for a namespace, a compiled module or one not found)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


def sectl_imports(name: str, path: Path) -> set[str]:
    """The sectl modules that module ``name`` (source ``path``) imports, at module level or inside functions,
    read from its source; ``from pkg import x`` counts both ``pkg`` and ``pkg.x`` (x may be a module)."""
    import ast
    import importlib.util

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level else node.module
            lazy = lazy_names(base) if base.startswith("sectl") else {}
            found |= {base, *(lazy.get(alias.name, f"{base}.{alias.name}") for alias in node.names)}
    return {n for n in found if n == "sectl" or n.startswith("sectl.")}


@functools.cache
def lazy_names(package: str) -> dict[str, str]:
    """The ``_LAZY`` table (name -> module) of a sectl package whose names load their modules on first use
    (PEP 562): ``from sectl.audio import read_audio`` imports ``sectl.audio.io``."""
    import ast

    path = module_file(package)
    if path is None or path.name != "__init__.py":
        return {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and \
                any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in node.targets):  # fmt: skip
            return {k.value: v.value for k, v in zip(node.value.keys, node.value.values)
                    if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)}  # fmt: skip
    return {}


def source_closure(*modules: str) -> list[Path]:
    """The source files of ``modules`` and of every sectl module they import, directly or not (module-level
    and inside functions), found by reading the files: what a cached artefact depends on, so that an edit
    anywhere in that code, not only in a hand-kept list, makes a new cache key."""
    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen or (path := module_file(name)) is None:
            continue
        seen[name] = path
        parents = [name.rsplit(".", depth)[0] for depth in range(1, name.count(".") + 1)]  # importing a.b.c runs a and a.b
        todo += [*sectl_imports(name, path), *parents]
    return sorted(set(seen.values()))

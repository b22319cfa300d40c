"""Presets: YAML data resolved as base <- parents (``extends``) <- preset <- ``--set`` overrides.

Every key must exist in ``presets/base.yaml`` (unknown keys are rejected with their dotted name); the
merged result is validated by the typed schema in :mod:`sectl.train.schema` (types, choices, model
arguments against the chosen architecture), and errors name the key, the value and what was expected.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from sectl.errors import ConfigError, first_line
from sectl.train.schema import validate

PRESET_DIR = Path(os.environ.get("SECTL_PRESETS", Path(__file__).resolve().parents[1] / "presets"))
"""Inside the package (so wheels carry them); the repository's top-level ``presets`` links here."""
BASE = "base"


def preset_path(name_or_path: str | Path) -> Path:
    """A preset name (``mal``) from ``presets/``, or a YAML file path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():  # a folder named like a preset does not shadow it
        if not path.is_file():
            raise ConfigError(f"{path}: preset file not found")
        return path
    if not PRESET_DIR.is_dir():
        raise ConfigError(
            f"preset folder {PRESET_DIR} not found (a broken installation?); point SECTL_PRESETS at a presets folder"
        )
    candidate = PRESET_DIR / f"{name_or_path}.yaml"
    if not candidate.is_file():
        known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        raise ConfigError(f"unknown preset {name_or_path!r}; known: {', '.join(known)}")
    return candidate


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> dict:
    """A configuration file as a mapping; syntax errors and duplicate keys name the file and line."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader) or {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else "somewhere"
        raise ConfigError(f"{path}: {where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({first_line(exc)})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a configuration must be a mapping of keys")
    return data


_read_yaml = read_yaml


def _merge(base: dict, diff: dict, schema: dict, prefix: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in diff.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            raise ConfigError(f"unknown config key {dotted!r}")
        if isinstance(schema[key], dict) and schema[key]:
            if not isinstance(value, dict):
                raise ConfigError(f"{dotted}: expected a mapping of keys, got {value!r}")
            out[key] = _merge(out[key], value, schema[key], f"{dotted}.")
        elif isinstance(schema[key], dict) and isinstance(value, dict):  # a free-form mapping (model.args): merged
            out[key] = {**(out[key] or {}), **value}
        else:
            out[key] = value
    return out


def load_preset_chain(name_or_path: str | Path, seen: tuple = ()) -> dict:
    """The preset's own diff merged over its ``extends`` parents (without the base)."""
    path = preset_path(name_or_path)
    if path.resolve() in seen:
        raise ConfigError(f"{path}: circular 'extends'")
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None or parent == BASE:
        return data
    sibling = path.parent / f"{parent}.yaml"
    parent_path = sibling if sibling.is_file() else preset_path(parent)
    merged = load_preset_chain(parent_path, seen + (path.resolve(),))
    return _deep_update(merged, data)


def _deep_update(base: dict, diff: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in diff.items():
        out[key] = _deep_update(out.get(key, {}), value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"train.lr=1e-3"`` -> (["train", "lr"], 0.001); the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected dotted.key=value")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def base_config() -> dict:
    """Every key with its default (``presets/base.yaml``)."""
    return _read_yaml(preset_path(BASE))


def resolve_config(preset: str | Path = "baseline", overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """The full configuration: base defaults <- preset chain <- overrides, all validated."""
    schema = _read_yaml(preset_path(BASE))
    return apply_overrides(validate(_merge(schema, load_preset_chain(preset), schema)), overrides)


def apply_overrides(config: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """``config`` with ``--set`` overrides applied and validated against the base preset."""
    schema = _read_yaml(preset_path(BASE))
    for item in overrides:
        keys, value = parse_override(item)
        diff: dict = value
        for key in reversed(keys):
            diff = {key: diff}
        config = _merge(config, diff, schema)
    return validate(config)


def get(config: dict, dotted: str) -> Any:
    node: Any = config
    for key in dotted.split("."):
        node = node[key]
    return node

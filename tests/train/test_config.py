from __future__ import annotations

import pytest

from sectl.errors import ConfigError
from sectl.train.config import PRESET_DIR, get, parse_override, resolve_config

SCRIPT_KEYS = [
    "model.size", "train.steps", "train.batch_size", "train.lr", "data.clean", "data.noise", "data.rir",
    "validation.noisy", "validation.clean", "init_from", "seed",
]


@pytest.mark.parametrize("preset", sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))
def test_every_shipped_preset_resolves_with_the_script_keys(preset):
    config = resolve_config(preset)
    for key in SCRIPT_KEYS:
        get(config, key)  # raises KeyError if missing


def test_presets_are_diffs_over_their_parents():
    assert get(resolve_config("mal"), "loss.mal") == 1.0
    dynamic = resolve_config("mal_dynamic")
    assert get(dynamic, "mal.variant") == "dynamic"
    assert get(dynamic, "loss.l1") == 0.1 and get(dynamic, "loss.mrstft") == 0.0  # inherited from mal
    assert get(resolve_config("wavlm_loss"), "loss.ssl") == 1.0


def test_overrides_parse_yaml_values():
    config = resolve_config("baseline", ["train.lr=1e-3", "model.size=tiny", "data.clean=[a, b]", "train.steps=5"])
    assert get(config, "train.lr") == 0.001 and get(config, "model.size") == "tiny"
    assert get(config, "data.clean") == ["a", "b"] and get(config, "train.steps") == 5
    assert parse_override("init_from=runs/x") == (["init_from"], "runs/x")


def test_unknown_keys_and_wrong_types_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="'train.stepz'"):
        resolve_config("baseline", ["train.stepz=3"])
    with pytest.raises(ConfigError, match="train.steps: expected int"):
        resolve_config("baseline", ["train.steps=many"])
    with pytest.raises(ConfigError, match="train.lr: expected float"):
        resolve_config("baseline", ["train.lr=true"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: baseline\nmodel:\n  sise: tiny\n")
    with pytest.raises(ConfigError, match="'model.sise'"):
        resolve_config(bad)
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve_config("no_such_preset")
    with pytest.raises(ConfigError, match="dotted.key=value"):
        resolve_config("baseline", ["novalue"])


def test_preset_file_with_extends_chain(tmp_path):
    (tmp_path / "parent.yaml").write_text("extends: mal\ntrain:\n  steps: 7\n")
    (tmp_path / "child.yaml").write_text("extends: parent\ntrain:\n  lr: 0.01\n")
    config = resolve_config(tmp_path / "child.yaml")
    assert get(config, "train.steps") == 7 and get(config, "train.lr") == 0.01 and get(config, "loss.mal") == 1.0

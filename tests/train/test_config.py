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


@pytest.mark.parametrize("override,message", [
    ("model.hidden=wide", "model.hidden: expected int, got 'wide'"),
    ("train.threads=many", "train.threads: expected int, got 'many'"),
    ("model.bottleneck=gru", "model.bottleneck: expected 'lstm' or 'conv', got 'gru'"),
    ("mal.variant=frozen_fe", "mal.variant: expected 'frozen', 'frozen-fe' or 'dynamic'"),
    ("distill.joint=maybe", "distill.joint: expected bool"),
    ("model.name=nsnet3", "model.name: unknown architecture 'nsnet3'"),
])
def test_null_defaults_and_choices_are_type_checked_with_key_value_and_expectation(override, message):
    with pytest.raises(ConfigError) as info:
        resolve_config("baseline", [override])
    assert message in str(info.value)


def test_model_arguments_are_validated_against_the_chosen_architecture():
    config = resolve_config("baseline", ["model.name=masknet", "model.args={n_fft: 1024, hop: 256, layers: 1}"])
    assert config["model"]["args"] == {"n_fft": 1024, "hop": 256, "layers": 1}
    from sectl.train.tasks import build_model

    built = build_model(config)
    assert (built.config.n_fft, built.config.hop, built.config.layers) == (1024, 256, 1)
    with pytest.raises(ConfigError, match="model.args.nfft: masknet has no argument 'nfft'"):
        resolve_config("baseline", ["model.name=masknet", "model.args={nfft: 1024}"])
    with pytest.raises(ConfigError, match="model.args.hop: expected int for masknet, got 'big'"):
        resolve_config("baseline", ["model.name=masknet", "model.args={hop: big}"])
    with pytest.raises(ConfigError, match="model.hidden: deepfilternet3 has no argument 'hidden'"):
        resolve_config("baseline", ["model.name=deepfilternet3", "model.size=paper", "model.hidden=8"])
    with pytest.raises(ConfigError, match="model.size: 'small' is not a size of nsnet2"):
        resolve_config("baseline", ["model.name=nsnet2"])


def test_the_resolved_configuration_is_plain_yaml():
    import yaml

    config = resolve_config("vae_jmas")
    assert yaml.safe_load(yaml.safe_dump(config)) == config

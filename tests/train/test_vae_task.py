"""The speech-VAE training task: presets, adversarial step separation, adaptive weights, resume."""

from __future__ import annotations

import copy

import pytest
import torch

from sectl.models.io.checkpoint import load_checkpoint
from sectl.train import resolve_config, train
from sectl.train.vae_task import VAETask, gradient_norm
from tests.train.test_trainer import train_interrupted_at

VAE_PRESETS = ["vae_vanilla", "vae_tas", "vae_jmas", "vae_jmas_fixed", "vae_jmas_utterance"]


def vae_config(data_dir, preset="vae_jmas", *extra):
    return resolve_config(preset, [
        "model.size=tiny", "ssl.model=tiny", "ssl.layer=2", "vae.discriminator_width=0.1", "train.batch_size=2",
        "data.segment_s=0.5", f"data.clean={data_dir / 'speech'}", "train.steps=10", "train.log_every=5",
        "train.threads=1", *extra,
    ])


@pytest.mark.parametrize("preset", VAE_PRESETS)
def test_every_vae_preset_trains_ten_steps(data_dir, tmp_path, preset):
    state = train(vae_config(data_dir, preset), tmp_path / "run")
    assert state.step == 10
    payload = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert payload["model"]["name"] == "speech_vae" and set(payload["task"]["modules"]) >= {"model", "ema", "discriminators"}
    # Alternating: 5 VAE and 5 discriminator updates, and each schedule advanced with its own optimizer.
    assert {name: s["last_epoch"] for name, s in payload["schedulers"].items()} == {"generator": 5, "discriminators": 5}


def state(module) -> dict:
    return copy.deepcopy(module.state_dict())


def changed(before: dict, module) -> bool:
    return any(not torch.equal(v, module.state_dict()[k]) for k, v in before.items())


def test_updates_alternate_as_released_vae_on_even_steps_discriminators_on_odd(data_dir):
    task = VAETask(vae_config(data_dir), torch.device("cpu"))
    assert task.config["vae"]["alternate"] is True
    for step, vae_moves in ((0, True), (1, False), (2, True), (3, False)):
        vae, disc, ema = state(task.model), state(task.discriminators), state(task.ema)
        record = task.step(step, task.sampler.batch(step, 2)).record
        assert changed(vae, task.model) == vae_moves and changed(ema, task.ema) == vae_moves
        assert changed(disc, task.discriminators) == (not vae_moves)
        assert {"mrstft", "kl", "disc"} <= set(record)  # every term's latest value, whichever half ran


def test_each_adversarial_step_updates_only_its_own_weights(data_dir):
    """Without alternation (vae.alternate=false) a step updates both, each optimizer only its own weights."""
    task = VAETask(vae_config(data_dir, "vae_jmas", "vae.alternate=false"), torch.device("cpu"))
    teacher = copy.deepcopy(task.distill.teacher.state_dict())
    generator_before = copy.deepcopy(task.model.state_dict())
    disc_before = copy.deepcopy(task.discriminators.state_dict())
    # A step whose generator optimizer is frozen (lr 0) changes only the discriminators, and vice versa.
    for group in task.optimizers["generator"].param_groups:
        group["lr"] = 0.0
    task.step(0, task.sampler.batch(0, 2))
    assert all(torch.equal(v, task.model.state_dict()[k]) for k, v in generator_before.items())
    assert any(not torch.equal(v, task.discriminators.state_dict()[k]) for k, v in disc_before.items())
    for group in task.optimizers["generator"].param_groups:
        group["lr"] = 1e-3
    for group in task.optimizers["discriminators"].param_groups:
        group["lr"] = 0.0
    disc_before = copy.deepcopy(task.discriminators.state_dict())
    task.step(1, task.sampler.batch(1, 2))
    assert all(torch.equal(v, task.discriminators.state_dict()[k]) for k, v in disc_before.items())
    assert any(not torch.equal(v, task.model.state_dict()[k]) for k, v in generator_before.items())
    assert all(torch.equal(v, task.distill.teacher.state_dict()[k]) for k, v in teacher.items())  # frozen
    assert not any(p.requires_grad for p in task.distill.teacher.parameters())


def test_adaptive_weights_are_the_gradient_norm_ratio(data_dir):
    task = VAETask(vae_config(data_dir), torch.device("cpu"))
    x = task.sampler.batch(0, 2)
    mean, std = task.model.encode(x)
    z = mean + std * torch.randn_like(std)
    reconstruction = task.mrstft(task.model.decode(z, x.shape[-1]), x)
    _, weights, terms = task._distillation(x, z, reconstruction)
    last = list(task.model.to_moments.parameters())
    for name, term in terms.items():
        g_rec = torch.autograd.grad(reconstruction, last, retain_graph=True)
        g_term = torch.autograd.grad(term, last, retain_graph=True)
        norm = lambda grads: torch.sqrt(sum(g.pow(2).sum() for g in grads))  # noqa: E731
        assert weights[name] == pytest.approx(float(norm(g_rec) / (norm(g_term) + 1e-6)), rel=1e-5)
    assert float(gradient_norm(reconstruction, last)) > 0


def test_resume_of_a_vae_run_equals_an_uninterrupted_one(data_dir, tmp_path):
    config = vae_config(data_dir, "vae_jmas", "train.steps=4", "train.checkpoint_every=100")
    train(config, tmp_path / "full")
    train_interrupted_at(config, tmp_path / "killed", 2)
    full = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")["task"]["modules"]
    resumed = load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt")["task"]["modules"]
    for module in ("model", "ema", "discriminators", "distill_projection"):
        assert all(torch.equal(full[module][k], resumed[module][k]) for k in full[module]), module


def test_vae_validation_scores_the_round_trip(data_dir, tmp_path):
    config = vae_config(data_dir, "vae_vanilla", "train.steps=2", "validation.every=2",
                        f"validation.clean={data_dir / 'vctk' / 'clean'}", "validation.metrics=[pesq_wb, estoi]")
    state = train(config, tmp_path / "run")
    assert state.best_step == 2 and state.best_score is not None


def test_a_pretrained_enhancer_can_be_the_offline_teacher(models_dir, data_dir, tmp_path):
    config = vae_config(data_dir, "vae_jmas", "ssl.model=nsnet2", "ssl.layer=3", "train.steps=2")
    train(config, tmp_path / "run")
    task = VAETask(config, torch.device("cpu"))
    frames = task.distill.teacher(torch.zeros(1, 16000))
    assert frames.shape == (1, 100, 400)  # NSNet2's GRU states: 400-d at 100 Hz
    assert task.distill.project.out_features == 400


def test_the_generator_step_computes_no_discriminator_gradients(data_dir):
    """Backward through the discriminators for the generator's loss must not fill their weight gradients
    (wasted work, and gradients a reducer would then all-reduce): one gradient per step, the discriminator's."""
    for alternate in ("true", "false"):
        task = VAETask(vae_config(data_dir, "vae_vanilla", f"vae.alternate={alternate}"), torch.device("cpu"))
        computed = []
        for p in task.discriminators.parameters():
            p.register_hook(lambda grad: computed.append(1))
        task.step(0, task.sampler.batch(0, 2))  # a VAE step (and, without alternation, a discriminator step)
        assert len(computed) == (0 if alternate == "true" else len(list(task.discriminators.parameters())))


def test_kl_is_the_releases_channel_sum_without_the_half():
    """(mean^2 + std^2 - log std^2 - 1) summed over the 64 channels, averaged over batch and frames: 128x the
    per-element mean of the textbook KL (the old term), which made kl: 1e-3 128 times weaker."""
    from sectl.losses.gan import gaussian_kl

    g = torch.Generator().manual_seed(0)
    mean, std = torch.randn(2, 64, 7, generator=g), torch.rand(2, 64, 7, generator=g) + 0.1
    textbook = 0.5 * (mean.pow(2) + std.pow(2) - 1 - 2 * std.log())
    assert float(gaussian_kl(mean, std)) == pytest.approx(float(2 * textbook.sum(1).mean()), rel=1e-6)
    assert float(gaussian_kl(mean, std)) == pytest.approx(128 * float(textbook.mean()), rel=1e-6)
    assert float(gaussian_kl(torch.zeros(1, 64, 3), torch.ones(1, 64, 3))) == 0.0


def test_ema_decay_warms_up_with_power_three_quarters_to_beta():
    from sectl.train.vae_task import ema_decay

    assert ema_decay(0, 0.9999) == 0.0  # the first update copies the weights
    assert ema_decay(15, 0.9999) == pytest.approx(1 - 16 ** -0.75)  # 0.875
    assert ema_decay(10**7, 0.9999) == 0.9999
    assert resolve_config("vae_jmas", [])["vae"]["ema_decay"] == 0.9999


def test_vae_presets_crop_32768_samples_as_released():
    for preset in VAE_PRESETS:
        config = resolve_config(preset, [])
        assert round(config["data"]["segment_s"] * 16000) == 32768, preset


def test_the_reconstruction_term_is_auraloss_perceptual_mrstft(data_dir):
    """FFT 2048..32, hop FFT/4, window FFT, A-weighted, no time-domain L1: auraloss's own value."""
    import auraloss

    task = VAETask(vae_config(data_dir, "vae_vanilla"), torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    x, y = 0.1 * torch.randn(2, 8000, generator=g), 0.1 * torch.randn(2, 8000, generator=g)
    sizes = [2048, 1024, 512, 256, 128, 64, 32]
    kwargs = dict(fft_sizes=sizes, hop_sizes=[n // 4 for n in sizes], win_lengths=sizes, sample_rate=16000)
    weighted = auraloss.freq.MultiResolutionSTFTLoss(perceptual_weighting=True, **kwargs)(y[:, None], x[:, None])
    plain = auraloss.freq.MultiResolutionSTFTLoss(**kwargs)(y[:, None], x[:, None])
    assert float(task.mrstft(y, x)) == pytest.approx(float(weighted), rel=1e-6)
    assert abs(float(weighted) - float(plain)) > 1e-3  # the A-weighting is on
    assert float(task.mrstft(x, x)) == pytest.approx(0.0, abs=1e-6)

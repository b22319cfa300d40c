"""DeepFilterNet3, NSNet2 and GTCRN as sectl enhancers, with tiny random models: shapes, stages, gradients,
checkpoints, Model-as-Loss levels. Parity with the published weights is in test_pretrained.py."""

from __future__ import annotations

import pytest
import torch

from sectl.losses.mal import ModelAsLoss, learned_levels
from sectl.models import build_enhancer, count_parameters
from sectl.models.io.checkpoint import save_checkpoint
from sectl.models.enhancers.deepfilternet3 import deep_filter
from sectl.models.enhancers.erb import running_mean
from sectl.engines import load_enhancer
from sectl.models.enhancers.spectral import analysis, overlap_add, sqrt_hann_window, vorbis_window

NAMES = ["deepfilternet3", "nsnet2", "gtcrn"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seconds", [0.001, 0.3, 1.0])
def test_forward_keeps_shape_for_any_length(name, seconds):
    model = build_enhancer(name, "tiny").eval()
    x = 0.1 * torch.randn(2, max(1, int(seconds * model.sample_rate)))
    y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.parametrize("name,params", [("deepfilternet3", 2.14e6), ("nsnet2", 2.69e6), ("gtcrn", 23669)])
def test_paper_sizes_have_the_published_parameter_counts(name, params):
    model = build_enhancer(name, "paper")
    assert count_parameters(model) == pytest.approx(params, rel=0.01)


@pytest.mark.parametrize("name", NAMES)
def test_encode_levels_match_encoder_levels_and_gradients_reach_every_weight(name):
    model = build_enhancer(name, "tiny")
    features = model.features(0.1 * torch.randn(2, model.sample_rate // 4))
    assert len(features) == len(model.encoder_levels())
    model(0.1 * torch.randn(2, model.sample_rate // 4)).pow(2).mean().backward()
    assert all(p.grad is not None for name_, p in model.named_parameters() if "lsnr" not in name_)


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_keeps_rate_and_output(name, tmp_path):
    model = build_enhancer(name, "tiny").eval()
    save_checkpoint(tmp_path / "m.pt", model)
    loaded = load_enhancer(tmp_path / "m.pt")
    x = 0.1 * torch.randn(1, 4000)
    assert loaded.sample_rate == model.sample_rate and torch.equal(model(x), loaded(x))


@pytest.mark.parametrize("name", NAMES)
def test_mal_frozen_fe_freezes_exactly_the_first_learned_levels(name):
    model = build_enhancer(name, "tiny")
    levels = model.encoder_levels()
    learned = learned_levels(model)
    assert all(not list(levels[i].parameters()) for i in range(len(levels)) if i not in learned)
    ModelAsLoss(model, "frozen-fe", frozen_levels=1)
    frozen = {id(p) for p in levels[learned[0]].parameters()}
    assert frozen and all(not p.requires_grad for p in model.parameters() if id(p) in frozen)
    assert all(p.requires_grad for i in learned[1:] for p in levels[i].parameters())


def test_spectral_round_trip_is_exact_with_power_complementary_windows():
    x = torch.randn(1, 4800, dtype=torch.float64)
    for window in (vorbis_window(960).double(), sqrt_hann_window(960).double()):
        padded = torch.nn.functional.pad(x, (480, 960))
        y = overlap_add(analysis(padded, window, 480), window, 480)[:, 480 : 480 + 4800]
        assert torch.allclose(y, x, atol=1e-10)


def test_deep_filter_with_a_unit_tap_at_the_current_frame_is_the_identity():
    spec = torch.randn(1, 7, 4, dtype=torch.complex64)
    coefs = torch.zeros(1, 5, 7, 4, dtype=torch.complex64)
    coefs[:, 2] = 1  # order 5, lookahead 2: tap 2 is frame t
    assert torch.allclose(deep_filter(spec, coefs, lookahead=2), spec)
    coefs = torch.zeros_like(coefs)
    coefs[:, 4] = 1  # the last tap looks two frames ahead
    assert torch.allclose(deep_filter(spec, coefs, lookahead=2)[:, :-2], spec[:, 2:])


def test_running_mean_equals_the_recursive_definition():
    x = torch.randn(3, 50, dtype=torch.float64)
    init = torch.randn(3, dtype=torch.float64)
    state, expected = init.clone(), []
    for t in range(50):
        state = 0.1 * x[:, t] + 0.9 * state
        expected.append(state)
    assert torch.allclose(running_mean(x, 0.9, init), torch.stack(expected, -1), atol=1e-10)


# ---------------------------------------------------------------------------------------------- GTCRN
@pytest.mark.parametrize("length", [257, 512, 4000, 4097])
def test_gtcrn_frames_are_torch_stft_centred_with_reflect_padding(length):
    """The official inference's STFT (``torch.stft(center=True)``, which mirrors the signal at both ends),
    computed here by gathering the mirrored signal, plus one frame where the length is not a multiple of the hop."""
    model = build_enhancer("gtcrn", "tiny")
    x = torch.randn(2, length, dtype=torch.float64)
    window = sqrt_hann_window(512).double()
    model.window = window  # in float64, so the comparison sees the framing, not float32 rounding
    ours = model.stft(x)
    reference = torch.stft(x, 512, 256, window=window, center=True, pad_mode="reflect", return_complex=True)
    assert ours.shape[-1] == -(-length // 256) + 1 and reference.shape[-1] == length // 256 + 1
    assert torch.allclose(ours[..., : reference.shape[-1]], reference, atol=1e-10)


@pytest.mark.parametrize("length", [1, 200, 256, 300, 4000])
def test_gtcrn_framing_round_trip_is_exact_at_any_length(length):
    """Mirrored frames, overlap-added without the mirrored half frame: every sample is covered by two frames."""
    model = build_enhancer("gtcrn", "tiny")
    model.window = sqrt_hann_window(512).double()
    x = torch.randn(1, length, dtype=torch.float64)
    assert torch.allclose(model.istft(model.stft(x))[:, :length], x, atol=1e-10)


def test_gtcrn_erb_bands_sum_to_one_on_every_bin_and_round_trip_low_bins():
    from sectl.models.enhancers.gtcrn import erb_filterbank

    bands = erb_filterbank(16000, 512, 65, 64)
    assert bands.shape == (64, 192) and (bands >= 0).all()
    assert torch.allclose(bands.sum(0), torch.ones(192))
    model = build_enhancer("gtcrn", "tiny")
    x = torch.randn(3, 257)
    assert torch.equal(model.split_bands(model.merge_bands(x))[:, :65], x[:, :65])


def test_gtcrn_is_causal_beyond_its_half_frame():
    """Output sample n reads input up to the end of the frame after it, sample ``(n // hop + 2) hop - 1``:
    changing the input from sample 2048 (8 hops) on changes the output from sample 1792 on, not before."""
    torch.manual_seed(0)
    model = build_enhancer("gtcrn", "tiny").eval()
    x = 0.1 * torch.randn(1, 4000)
    changed = x.clone()
    changed[:, 2048:] = 0.1 * torch.randn(1, 4000 - 2048)
    with torch.no_grad():
        a, b = model(x), model(changed)
    assert torch.equal(a[:, :1792], b[:, :1792])
    assert (a[:, 1793:2048] - b[:, 1793:2048]).abs().min() > 0  # at 1792 the frame's window is 0


def test_gtcrn_rejects_band_layouts_its_strided_convolutions_cannot_invert():
    with pytest.raises(ValueError, match="1 mod 4"):
        build_enhancer("gtcrn", "tiny", erb_bands=63)


def test_grouped_linear_exports_as_a_grouped_convolution_with_the_same_output(tmp_path):
    import onnx
    import onnxruntime as ort

    from sectl.models.enhancers.deepfilternet3 import GroupedLinear

    layer = GroupedLinear(96, 48, groups=8).eval()
    x = torch.randn(2, 7, 96)
    torch.onnx.export(layer, (x,), tmp_path / "g.onnx", opset_version=17, dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "b", 1: "t"}})  # fmt: skip
    assert [n.op_type for n in onnx.load(tmp_path / "g.onnx").graph.node].count("Conv") == 1
    session = ort.InferenceSession(str(tmp_path / "g.onnx"), providers=["CPUExecutionProvider"])
    for frames in (1, 11):
        x = torch.randn(3, frames, 96)
        torch.testing.assert_close(torch.from_numpy(session.run(None, {"x": x.numpy()})[0]), layer(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("cin, cout, kernel, fused", [(2, 64, (3, 3), True), (64, 64, (1, 3), False),
                                                      (64, 10, (5, 1), False), (1, 64, (3, 3), False)])  # fmt: skip
def test_conv_block_runs_grouped_and_pointwise_as_one_convolution_only_where_that_is_cheaper(cin, cout, kernel, fused):
    from sectl.models.enhancers.deepfilternet3 import ConvBlock

    torch.manual_seed(0)
    block = ConvBlock(cin, cout, kernel, fstride=2)
    assert block.fused == fused
    x = torch.randn(2, cin, 9, 32)
    two_layers = block.conv(x)
    if block.pointwise is not None:
        two_layers = block.pointwise(two_layers)
    y = block.unpadded(x)
    torch.testing.assert_close(y, block.activation(two_layers), atol=1e-5, rtol=0)
    y.square().sum().backward()
    assert block.conv.weight.grad.abs().sum() > 0
    assert block.pointwise is None or block.pointwise.weight.grad.abs().sum() > 0


def test_fused_conv_block_exports_as_one_convolution_with_folded_weights(tmp_path):
    import onnx

    from sectl.models.enhancers.deepfilternet3 import ConvBlock

    block = ConvBlock(2, 64, (3, 3)).eval()
    torch.onnx.export(block, (torch.randn(1, 2, 5, 96),), tmp_path / "c.onnx", opset_version=17, dynamo=False)
    ops = [n.op_type for n in onnx.load(tmp_path / "c.onnx").graph.node]
    assert ops.count("Conv") == 1 and "Einsum" not in ops


def test_fused_weight_is_one_constant_once_onnxruntime_loads_the_stream_graph(tmp_path):
    """The stream graph keeps the weight product (the exporter does not fold it inside the step); onnxruntime's
    load-time folding must, or every call would recompute it."""
    import onnx
    import onnxruntime as ort

    from sectl.models import build_enhancer
    from sectl.onnx.export import export_onnx

    model = build_enhancer("deepfilternet3", "paper").eval()
    assert model.encoder.df_conv0.fused
    export_onnx(model, tmp_path / "g.onnx", {}, False)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "loaded.onnx")
    ort.InferenceSession(str(tmp_path / "g.onnx"), options, providers=["CPUExecutionProvider"])
    graph = onnx.load(tmp_path / "loaded.onnx").graph
    constants = {i.name for i in graph.initializer}
    bias = "step.model.encoder.df_conv0.pointwise.bias"
    convs = [n for n in graph.node if n.op_type in ("Conv", "FusedConv") and bias in n.input]
    assert len(convs) == 1 and convs[0].input[1] in constants

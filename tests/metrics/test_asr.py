"""The ``wer`` metric: text normalisation, edit distance, CTC decoding, model files, and the eval plumbing
with a tiny random wav2vec 2.0 (real weights need a download)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import torchaudio
from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.errors import SectlError
from sectl.metrics import asr
from sectl.metrics.asr import ctc_greedy, load_recognizer, save_recognizer, word_error_rate

LABELS = ["-", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L", "U", "M", "W", "C", "F", "G", "Y",
          "P", "B", "V", "K", "'", "X", "J", "Q", "Z"]  # fmt: skip
TINY_ARGS = dict(
    extractor_mode="group_norm", extractor_conv_layer_config=[(16, 10, 5), (16, 3, 2), (16, 3, 2), (16, 3, 2), (16, 2, 2)],
    extractor_conv_bias=False, encoder_embed_dim=32, encoder_projection_dropout=0.0, encoder_pos_conv_kernel=16,
    encoder_pos_conv_groups=4, encoder_num_layers=2, encoder_num_heads=2, encoder_attention_dropout=0.0,
    encoder_ff_interm_features=64, encoder_ff_interm_dropout=0.0, encoder_dropout=0.0, encoder_layer_norm_first=False,
    encoder_layer_drop=0.0, aux_num_out=len(LABELS),
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_asr(tmp_path_factory):
    torch.manual_seed(0)
    model = torchaudio.models.wav2vec2_model(**TINY_ARGS)
    path = tmp_path_factory.mktemp("asr") / "tiny_asr.pt"
    save_recognizer(path, model, TINY_ARGS, LABELS)
    return path, model


@pytest.fixture(autouse=True)
def fresh_recognizer():
    asr.set_recognizer(None)
    yield
    asr.set_recognizer(None)


def test_word_error_rate_counts_edits_per_reference_word():
    assert word_error_rate("the cat sat", reference="The cat sat.") == 0.0
    assert word_error_rate("the bat sat down", reference="the cat sat") == pytest.approx(2 / 3)  # 1 substitution + 1 insertion
    assert word_error_rate("", reference="one two three four") == 1.0
    assert word_error_rate("it's", reference="IT'S!") == 0.0  # apostrophes kept, punctuation and case dropped
    with pytest.raises(SectlError, match="empty reference"):
        word_error_rate("x", reference="  ...  ")


def test_ctc_greedy_collapses_repeats_drops_blanks_and_splits_words():
    index = {c: i for i, c in enumerate(LABELS)}
    path = [index[c] for c in "--HH-E-LL-L-O||WW-O-R-L-D--"]
    assert ctc_greedy(path, LABELS) == "HELLO WORLD"


def test_a_saved_model_reloads_to_the_same_recogniser(tiny_asr, vctk):
    path, model = tiny_asr
    recogniser = load_recognizer(path)
    wave = torch.randn(16000)
    with torch.no_grad():
        expected = ctc_greedy(model.eval()(wave[None])[0][0].argmax(-1).tolist(), LABELS)
    assert recogniser(wave) == expected
    (path.parent / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(SectlError, match="junk.pt: not a readable ASR model"):
        load_recognizer(path.parent / "junk.pt")


def test_offline_default_pipeline_is_one_clear_error(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H, "get_model", lambda *a, **k: no_network())
    with pytest.raises(SectlError, match="could not load torchaudio's WAV2VEC2_ASR_BASE_960H .* --asr-model"):
        load_recognizer("WAV2VEC2_ASR_BASE_960H")
    with pytest.raises(SectlError, match="neither a file nor a torchaudio ASR pipeline"):
        load_recognizer("no_such_pipeline")


def test_eval_scores_wer_from_transcripts_beside_the_references(tiny_asr, vctk, tmp_path):
    path, _ = tiny_asr
    clean = tmp_path / "clean"
    shutil.copytree(vctk / "clean", clean)
    files = sorted(clean.glob("*.wav"))
    for f in files[:-1]:
        f.with_suffix(".txt").write_text("please call stella\n")
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "--ref", str(clean), "--est", str(vctk / "noisy"), "-m", "wer,si_sdr",
                                 "--asr-model", str(path), "--json", "--jobs", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["provenance"]["asr_model"] == str(path)
    rows = {r["file"]: r for r in report["files"]}
    scored = [rows[f.name]["wer"] for f in files[:-1]]
    assert all(w is not None and w >= 0 for w in scored)
    assert rows[files[-1].name]["wer"] is None  # no transcript for the last file: a missing value, not a crash
    no_ref = runner.invoke(app, ["eval", "--est", str(vctk / "noisy"), "-m", "wer", "--asr-model", str(path)])
    assert no_ref.exit_code != 0 and "need a reference" in no_ref.stderr

"""Model-file lookup: folder order, checked downloads, one error naming every place searched."""

from __future__ import annotations

import hashlib

import pytest

from sectl import modelfiles
from sectl.errors import SectlError
from sectl.modelfiles import ModelFiles, locate


class FakeResponse:
    def __init__(self, payload: bytes) -> None:
        self.headers = {"Content-Length": str(len(payload))}
        self.parts = [payload, b""]

    def read(self, n):
        return self.parts.pop(0)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_download_keeps_only_files_with_the_right_checksum(tmp_path, monkeypatch):
    monkeypatch.setattr(modelfiles.urllib.request, "urlopen", lambda *a, **k: FakeResponse(b"fake"))
    with pytest.raises(SectlError, match="checksum"):
        modelfiles.download("http://example.invalid/m.onnx", "0" * 64, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    modelfiles.download("http://example.invalid/m.onnx", hashlib.sha256(b"fake").hexdigest(), tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").read_bytes() == b"fake"


def test_first_folder_holding_every_file_wins(tmp_path):
    model = ModelFiles("m", {"a.bin": "", "b.bin": ""})
    partial, full = tmp_path / "partial", tmp_path / "full"
    partial.mkdir(), full.mkdir()
    (partial / "a.bin").write_bytes(b"")
    for name in ("a.bin", "b.bin"):
        (full / name).write_bytes(b"")
    assert locate(model, [partial, full], tmp_path / "cache") == {"a.bin": full / "a.bin", "b.bin": full / "b.bin"}


def test_missing_without_url_names_every_folder_and_the_hint(tmp_path):
    model = ModelFiles("thing", {"a.bin": ""}, url=None, hint="put a.bin into $THING_DIR")
    with pytest.raises(SectlError) as info:
        locate(model, [tmp_path / "x"], tmp_path / "cache")
    message = str(info.value)
    assert str(tmp_path / "x") in message and str(tmp_path / "cache") in message and "$THING_DIR" in message


def test_every_resource_is_searched_explicit_then_its_variable_then_the_models_folder(tmp_path, monkeypatch):
    """One order for every command and every model: an option or config key, the resource's own variable,
    then ``$SECTL_MODELS_DIR/<name>`` (then the cache): DNSMOS, the ``wer`` recogniser, SSL teachers."""
    from sectl.metrics import asr
    from sectl.models.teachers.ssl import copied_weights

    models = tmp_path / "models"
    monkeypatch.setenv("SECTL_MODELS_DIR", str(models))
    monkeypatch.setenv("SECTL_DNSMOS_DIR", str(tmp_path / "env"))
    assert modelfiles.search_folders("dnsmos", "SECTL_DNSMOS_DIR", tmp_path / "option") == [
        tmp_path / "option", tmp_path / "env", models / "dnsmos"]  # fmt: skip
    monkeypatch.delenv("SECTL_DNSMOS_DIR")
    assert modelfiles.search_folders("dnsmos", "SECTL_DNSMOS_DIR") == [models / "dnsmos"]

    monkeypatch.delenv("SECTL_ASR_MODEL", raising=False)
    asr.set_recognizer(None)
    assert asr.recognizer_source() == asr.DEFAULT_PIPELINE
    exported = models / "asr" / f"{asr.DEFAULT_PIPELINE}.pt"
    exported.parent.mkdir(parents=True)
    exported.write_bytes(b"")
    assert asr.recognizer_source() == str(exported)
    monkeypatch.setenv("SECTL_ASR_MODEL", "HUBERT_ASR_LARGE")
    assert asr.recognizer_source() == "HUBERT_ASR_LARGE"

    assert copied_weights("wavlm_base") is None
    (models / "wavlm_base").mkdir()
    (models / "wavlm_base" / "wavlm_base.pth").write_bytes(b"")  # the file torchaudio downloads
    assert copied_weights("wavlm_base") == models / "wavlm_base" / "wavlm_base.pth"

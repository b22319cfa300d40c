from __future__ import annotations

import numpy as np
import pytest

from sectl.errors import SectlError
from sectl.metrics import evaluate
from tests.conftest import write_wav


def test_vctk_noisy_means_match_independent_computation(vctk):
    report = evaluate(vctk / "noisy", ref=vctk / "clean", metrics="pesq_wb,estoi,si_sdr", jobs=2)
    assert len(report.files) == 6 and not report.errors and not report.unpaired
    assert report.mean["pesq_wb"] == pytest.approx(1.413, abs=5e-4)
    assert report.mean["estoi"] == pytest.approx(0.611, abs=5e-4)
    assert report.mean["si_sdr"] == pytest.approx(8.20, abs=5e-3)
    assert report.std["si_sdr"] > 0


def test_batch_keeps_going_past_a_bad_file_and_lists_unpaired(tmp_path, clean_speech):
    ref, est = tmp_path / "ref", tmp_path / "est"
    for name in ["a.wav", "b.wav", "c.wav"]:
        write_wav(ref / name, clean_speech)
    write_wav(est / "a.wav", clean_speech)
    (est / "b.wav").write_text("garbage")
    write_wav(est / "extra.wav", clean_speech)
    report = evaluate(est, ref=ref, metrics="si_sdr")
    assert [r.file for r in report.files] == ["a.wav"]
    assert len(report.errors) == 1 and "b.wav" in report.errors[0]
    assert report.unpaired == ["ref only: c.wav", "est only: extra.wav"]


def test_length_mismatch_is_trimmed_with_warning(tmp_path, clean_speech):
    write_wav(tmp_path / "ref.wav", clean_speech)
    write_wav(tmp_path / "est.wav", clean_speech[:-800])  # 50 ms shorter
    report = evaluate(tmp_path / "est.wav", ref=tmp_path / "ref.wav", metrics="si_sdr")
    assert report.files[0].scores["si_sdr"] > 80
    assert "50 ms" in report.files[0].warnings[0]


def test_resamples_other_rates(tmp_path, clean_speech):
    import torch
    import torchaudio.functional as AF

    up = AF.resample(torch.from_numpy(clean_speech), 16000, 48000).numpy()
    write_wav(tmp_path / "ref.wav", clean_speech)
    write_wav(tmp_path / "est.wav", up, rate=48000, subtype="FLOAT")
    report = evaluate(tmp_path / "est.wav", ref=tmp_path / "ref.wav", metrics="pesq_wb,si_sdr")
    assert report.files[0].scores["pesq_wb"] > 4.4
    assert report.files[0].scores["si_sdr"] > 25


def test_unknown_metric_and_missing_reference_are_clear_errors(tmp_path, clean_speech):
    write_wav(tmp_path / "a.wav", clean_speech)
    with pytest.raises(SectlError, match="unknown metric"):
        evaluate(tmp_path, ref=tmp_path, metrics="pesq_wb,nope")
    with pytest.raises(SectlError, match="need a reference"):
        evaluate(tmp_path, metrics="pesq_wb")


def test_json_schema(tmp_path, clean_speech):
    write_wav(tmp_path / "r" / "x.wav", clean_speech)
    write_wav(tmp_path / "e" / "x.wav", clean_speech * 0.5 + 0.01 * np.random.default_rng(0).standard_normal(len(clean_speech)))
    payload = evaluate(tmp_path / "e", ref=tmp_path / "r", metrics="stoi,lsd").to_json()
    assert set(payload) >= {"files", "mean", "std"}
    assert payload["files"][0]["file"] == "x.wav"
    assert set(payload["files"][0]) == {"file", "stoi", "lsd"}
    assert set(payload["mean"]) == set(payload["std"]) == {"stoi", "lsd"}


def test_every_report_records_what_produced_its_numbers(vctk):
    from sectl.metrics import evaluate

    record = evaluate(vctk / "noisy" / "p287_001.wav", ref=vctk / "clean" / "p287_001.wav",
                      metrics="pesq_wb,estoi,si_sdr,dnsmos_ovrl").to_json()["provenance"]  # fmt: skip
    assert record["sectl_version"] and "16 kHz" in record["preprocessing"]["resampling"]
    assert record["metrics"]["pesq_wb"]["backend"] == "pesq" and record["metrics"]["pesq_wb"]["version"] != "unknown"
    assert record["metrics"]["estoi"]["backend"] == "pystoi" and "P.862.2" in record["metrics"]["pesq_wb"]["method"]
    assert set(record["dnsmos"]["model_files_sha256"]) == {"sig_bak_ovr.onnx", "model_v8.onnx"}
    assert record["dnsmos"]["model_files_sha256"]["model_v8.onnx"].startswith("9246480c")


def test_every_registered_metric_has_a_provenance_record():
    from sectl.metrics import METRICS
    from sectl.metrics.provenance import provenance

    record = provenance(list(METRICS))["metrics"]
    assert set(record) == set(METRICS) and all(r["method"] for r in record.values())

"""`sectl report` without a browser: what the folder holds, the scores it embeds, choosing utterances, refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import soundfile as sf
from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.report.page import script_json
from tests.report.conftest import make_corpus

runner = CliRunner()


def page_data(folder):
    text = (folder / "index.html").read_text()
    return json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S).group(1))


def test_the_folder_holds_one_page_and_the_audio_of_every_version(small_report, corpus):
    data = page_data(small_report)
    assert data["versions"] == ["noisy", "DF3", "clean"] and data["reference"] == 2 and len(data["utterances"]) == 4
    for utterance in data["utterances"]:
        for audio, image in zip(utterance["audio"], utterance["spectrogram"]):
            assert (small_report / audio).is_file() and (small_report / image).read_bytes()[:4] == b"\x89PNG"
    first = data["utterances"][0]
    assert sf.read(small_report / first["audio"][2])[0] == pytest.approx(sf.read(corpus / "clean" / first["name"])[0], abs=1e-4)
    text = (small_report / "index.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)  # nothing from any network
    assert "<style>" in text and "class Player" in text  # style and script inline


def test_the_page_embeds_what_sectl_eval_prints_for_the_same_systems(small_report, corpus):
    result = runner.invoke(app, ["eval", "--ref", str(corpus / "clean"), "--est", str(corpus / "noisy"),
                                 "--est", f"DF3={corpus / 'enhanced'}", "-m", "si_sdr,stoi", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert page_data(small_report)["eval"] == json.loads(result.stdout)


def test_select_picks_the_worst_or_a_spread_by_a_metric_of_the_last_system(tmp_path):
    corpus = make_corpus(tmp_path / "c", 9, seconds=0.3)
    args = ["report", "--ref", str(corpus / "clean"), "--est", str(corpus / "noisy"), "--est", str(corpus / "enhanced"), "-m", "si_sdr"]
    assert runner.invoke(app, [*args, "-o", str(tmp_path / "w"), "--select", "3", "--select-by", "worst:si_sdr"]).exit_code == 0
    data = page_data(tmp_path / "w")
    scores = {f["file"]: f["si_sdr"] for f in data["eval"]["systems"][1]["files"]}
    assert [u["name"] for u in data["utterances"]] == sorted(scores, key=scores.get)[:3]  # worst first
    assert data["selection"]["of"] == 9 and len(data["eval"]["systems"][1]["files"]) == 9  # the summary covers all
    assert runner.invoke(app, [*args, "-o", str(tmp_path / "s"), "--select", "3", "--select-by", "spread:si_sdr"]).exit_code == 0
    ranked = sorted(scores, key=scores.get)
    assert [u["name"] for u in page_data(tmp_path / "s")["utterances"]] == [ranked[0], ranked[4], ranked[8]]


def test_opus_pages_are_small_and_play_at_a_rate_opus_has(tmp_path):
    corpus = make_corpus(tmp_path / "c", 1, seconds=0.5)
    sf.write(tmp_path / "c" / "odd.wav", sf.read(corpus / "clean" / "u000.wav")[0], 22050)
    result = runner.invoke(app, ["report", "--est", f"ODD={tmp_path / 'c' / 'odd.wav'}", "-m", "dnsmos_ovrl", "-o", str(tmp_path / "r"),
                                 "--audio-format", "opus"])  # fmt: skip
    assert result.exit_code == 0, result.output
    info = sf.info(next((tmp_path / "r" / "audio").glob("*.opus")))
    assert info.subtype == "OPUS" and info.samplerate == 48000


def test_data_cannot_close_the_script_element():
    assert "</script>" not in script_json({"name": "</script><script>alert(1)</script>"})


@pytest.mark.parametrize("extra, message", [
    (["--audio-format", "mp3"], "--audio-format"),
    (["--select-by", "worst:si_sdr"], "--select-by applies with --select"),
    (["--select", "2", "--select-by", "worst"], "--select-by"),
    (["-m", "nope"], "unknown metric"),
    (["--practice", "2"], "--practice and --test-id apply with --test"),
])  # fmt: skip
def test_argument_errors_are_one_line_and_exit_2(tmp_path, extra, message):
    result = runner.invoke(app, ["report", "--est", str(tmp_path), "-o", str(tmp_path / "r"), *extra])
    assert result.exit_code == 2 and message in result.output, result.output


def test_the_report_is_never_written_over_a_report_without_overwrite(small_report, corpus):
    again = runner.invoke(app, ["report", "--ref", str(corpus / "clean"), "--est", str(corpus / "noisy"), "-m", "si_sdr", "-o", str(small_report)])
    assert again.exit_code == 1 and "output exists (use --overwrite" in again.output


def test_without_a_browser_ci_fails_where_elsewhere_the_browser_tests_skip(monkeypatch, tmp_path):
    from tests.report.conftest import chromium_path, missing

    monkeypatch.setenv("SECTL_CHROMIUM", str(tmp_path / "no-chromium"))
    assert chromium_path() is None
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        missing("no headless Chromium")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="browser.sh"):
        missing("no headless Chromium")


def test_select_by_a_metric_not_scored_is_refused_before_any_scoring(tmp_path, monkeypatch):
    import sectl.report.build

    def scoring(*args, **kwargs):
        raise AssertionError("scored before the arguments were checked")

    monkeypatch.setattr(sectl.report.build, "score_systems", scoring)
    corpus = make_corpus(tmp_path / "c", 2, seconds=0.2)
    result = runner.invoke(app, ["report", "--ref", str(corpus / "clean"), "--est", str(corpus / "noisy"), "-m", "si_sdr",
                                 "--select", "1", "--select-by", "worst:stoi", "-o", str(tmp_path / "r")])  # fmt: skip
    assert result.exit_code == 2 and "stoi is not among the metrics scored" in result.stderr, result.output


def test_peak_limiting_keeps_the_versions_relative_levels(tmp_path):
    """A version louder than full scale brings every version of its utterance down by the same gain."""
    from sectl.report import build_report
    from tests.conftest import tone, write_wav

    clean = tone(0.3, amp=0.5)
    write_wav(tmp_path / "c" / "clean" / "a.wav", clean, subtype="FLOAT")
    write_wav(tmp_path / "c" / "loud" / "a.wav", 4 * clean, subtype="FLOAT")  # peaks at 2.0
    build_report([("loud", str(tmp_path / "c" / "loud"))], tmp_path / "r", ref=str(tmp_path / "c" / "clean"), metrics="si_sdr")
    loud, _ = sf.read(tmp_path / "r" / "audio" / "u00000-0.wav")
    reference, _ = sf.read(tmp_path / "r" / "audio" / "u00000-1.wav")
    assert abs(loud).max() == pytest.approx(0.999, abs=1e-3)
    assert loud == pytest.approx(4 * reference, abs=4e-4)  # the 12 dB between them kept
    assert reference == pytest.approx(clean * 0.999 / 2.0, abs=1e-4)


class CountingList(list):
    """A list that counts how often it is walked through."""

    walks = 0

    def __iter__(self):
        CountingList.walks += 1
        return super().__iter__()


def test_a_versions_scores_are_looked_up_not_searched():
    from types import SimpleNamespace

    from sectl.report.data import Version

    files = CountingList(SimpleNamespace(file=f"u{i}.wav", scores={"si_sdr": float(i)}) for i in range(500))
    version = Version("DF3", Path("out"), SimpleNamespace(report=SimpleNamespace(files=files)))
    CountingList.walks = 0
    assert [version.scores(f"u{i}.wav")["si_sdr"] for i in range(500)] == list(range(500))
    assert CountingList.walks == 1  # one pass over the files for the whole page, not one per row
    assert Version("clean", Path("clean")).scores("u0.wav") == {}


def test_spectrograms_stay_small_whatever_the_length_of_the_file(tmp_path):
    """A spectrogram image is at most MAX_COLUMNS x ROWS palette pixels: a 30 s file's was 3751 x 257 RGBA (a 5 min
    file's 22 MB), many times its Opus audio; short files keep one column per 8 ms frame."""
    import numpy as np
    from PIL import Image

    from sectl.report.media import HOP, MAX_COLUMNS, ROWS, SPECTROGRAM_RATE
    from tests.conftest import write_wav
    from tests.report.conftest import RATE

    rng = np.random.default_rng(0)
    for name, seconds in (("long.wav", 30.0), ("short.wav", 2.0)):
        clean = 0.3 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * RATE)) / RATE)
        write_wav(tmp_path / "clean" / name, clean)
        write_wav(tmp_path / "noisy" / name, clean + 0.05 * rng.standard_normal(clean.size))
    result = runner.invoke(app, ["report", "--ref", str(tmp_path / "clean"), "--est", str(tmp_path / "noisy"), "-m", "si_sdr",
                                 "-o", str(tmp_path / "r"), "--audio-format", "opus"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = page_data(tmp_path / "r")
    sizes = {}
    for utterance in data["utterances"]:
        for image in utterance["spectrogram"]:
            with Image.open(tmp_path / "r" / image) as picture:
                assert picture.mode == "P" and picture.height == ROWS and picture.width <= MAX_COLUMNS
                sizes[utterance["name"]] = picture.width
    assert sizes["short.wav"] == int(2.0 * SPECTROGRAM_RATE) // HOP + 1
    assert sizes["long.wav"] > MAX_COLUMNS // 2
    images = sum(p.stat().st_size for p in (tmp_path / "r" / "spectrograms").iterdir())
    audio = sum(p.stat().st_size for p in (tmp_path / "r" / "audio").iterdir())
    assert images < 2 * audio, (images, audio)

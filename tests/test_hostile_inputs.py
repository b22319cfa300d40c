"""A corpus of hostile inputs, generated here, through enhance, eval and iterate: every bad file is
reported by name with its reason, nothing is lost or overwritten, every good file is processed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from sectl.cli.app import app

runner = CliRunner()
RNG = np.random.default_rng(0)
X = (0.1 * RNG.standard_normal(16000)).astype(np.float32)

GOOD = {
    "zeros.wav": dict(data=np.zeros(16000, np.float32)),
    "dc.wav": dict(data=np.full(16000, 0.3, np.float32)),
    "clipped.wav": dict(data=np.clip(10 * X, -1, 1)),
    **{f"fmt_{s}.wav": dict(data=X, subtype=s) for s in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")},
    **{f"rate_{r}.wav": dict(data=np.resize(X, r), rate=r) for r in (8000, 22050, 44100, 48000, 96000)},
    "stereo.wav": dict(data=np.stack([X, X], 1)),
    "six_channels.wav": dict(data=np.stack([X] * 6, 1)),
    "one_sample.wav": dict(data=X[:1]),
    "ten_ms.wav": dict(data=X[:160]),
    "space in name.wav": dict(data=X),
    "ünïcödé.wav": dict(data=X),
    "flac.flac": dict(data=X),
}
BAD = {  # name -> the reason the message must give
    "empty.wav": "file is empty",
    "truncated_header.wav": "not a readable audio file",
    "truncated_data.wav": "truncated",
    "text.wav": "not a readable audio file",
    "nan.wav": "NaN or Inf",
    "inf.wav": "NaN or Inf",
    "loop_a.wav": "broken or looping symbolic link",
    "loop_b.wav": "broken or looping symbolic link",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, vctk):
    root = tmp_path_factory.mktemp("hostile") / "in"
    root.mkdir()
    for name, spec in GOOD.items():
        sf.write(root / name, spec["data"], spec.get("rate", 16000), subtype=spec.get("subtype"))
    whole = (vctk / "noisy" / "p287_001.wav").read_bytes()
    (root / "empty.wav").write_bytes(b"")
    (root / "truncated_header.wav").write_bytes(whole[:20])
    (root / "truncated_data.wav").write_bytes(whole[:1000])
    (root / "text.wav").write_text("not audio at all")
    for name, value in (("nan.wav", np.nan), ("inf.wav", np.inf)):
        sf.write(root / name, np.where(np.arange(16000) == 5, value, X).astype(np.float32), 16000, subtype="FLOAT")
    os.symlink("loop_b.wav", root / "loop_a.wav")
    os.symlink("loop_a.wav", root / "loop_b.wav")
    (root / "folder.wav").mkdir()  # a folder with an audio name: walked, not read
    return root


def test_enhance_processes_every_good_file_and_names_every_bad_one(corpus, tmp_path, tiny_checkpoint):
    before = {p.name: p.read_bytes() for p in corpus.iterdir() if p.is_file()}
    result = runner.invoke(app, ["enhance", str(corpus), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert sorted(os.path.basename(p) for p in report["written"]) == sorted(GOOD)
    for name, reason in BAD.items():
        assert any(name in line and reason in line for line in report["failed"]), (name, report["failed"])
    assert len(report["failed"]) == len(BAD)
    for name, spec in GOOD.items():  # same length, rate and channels as the input
        info, source = sf.info(tmp_path / "out" / name), sf.info(corpus / name)
        assert (info.frames, info.samplerate, info.channels) == (source.frames, source.samplerate, source.channels), name
    assert {p.name: p.read_bytes() for p in corpus.iterdir() if p.is_file()} == before  # inputs untouched


def test_eval_scores_the_readable_pairs_and_names_the_rest(corpus):
    result = runner.invoke(app, ["eval", "--ref", str(corpus), "--est", str(corpus), "-m", "si_sdr,pesq_wb", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert len(report["files"]) == len(GOOD)
    for name, reason in BAD.items():
        assert any(name in line and reason in line for line in report["errors"]), name
    assert "Traceback" not in result.output and "RuntimeWarning" not in result.output


@pytest.mark.parametrize("name", ["one_sample.wav", "six_channels.wav", "rate_96000.wav", "fmt_PCM_U8.wav"])
def test_iterate_runs_on_odd_but_valid_files(corpus, name, tiny_checkpoint):
    result = runner.invoke(app, ["iterate", str(corpus / name), "--n", "1", "--no-dnsmos", "--json", "--model", str(tiny_checkpoint)])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["steps"]) == 2


@pytest.mark.parametrize("name,reason", [("text.wav", "not a readable audio file"), ("loop_a.wav", "looping")])
def test_iterate_names_a_bad_file(corpus, name, reason, tiny_checkpoint):
    result = runner.invoke(app, ["iterate", str(corpus / name), "--n", "1", "--no-dnsmos", "--model", str(tiny_checkpoint)])
    assert result.exit_code == 1 and name in result.stderr and reason in result.stderr


def test_outputs_never_replace_inputs_and_output_inside_input_is_safe(corpus, tmp_path, tiny_checkpoint):
    src = tmp_path / "a.wav"
    sf.write(src, X, 16000)
    original = src.read_bytes()
    same = runner.invoke(app, ["enhance", str(src), "-o", str(src), "--model", str(tiny_checkpoint), "--overwrite"])
    assert same.exit_code == 2 and "is an input of this command" in same.stderr and src.read_bytes() == original
    inside = runner.invoke(app, ["enhance", str(tmp_path), "-o", str(tmp_path / "enhanced"), "--model", str(tiny_checkpoint)])
    assert inside.exit_code == 0 and (tmp_path / "enhanced" / "a.wav").is_file() and src.read_bytes() == original


def permission_bits_enforced(probe) -> list[str]:
    """A command prefix under which file permission bits apply. Root bypasses them, so as root the
    command runs with the capabilities that do so (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) dropped."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    caps = "-dac_override,-dac_read_search"
    prefix = [setpriv, "--bounding-set", caps, "--inh-caps", caps, "--"] if setpriv else []
    if not prefix or subprocess.run([*prefix, "cat", str(probe)], capture_output=True).returncode == 0:
        pytest.skip("running as root where setpriv cannot drop CAP_DAC_OVERRIDE: permission bits are not enforced")
    return prefix


def sectl_cli(prefix: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "sectl", *args], capture_output=True, text=True, timeout=300)


def test_unreadable_file_and_unwritable_output_folder(tmp_path, tiny_checkpoint):
    source = tmp_path / "in"
    source.mkdir()
    sf.write(source / "ok.wav", X, 16000)
    sf.write(source / "locked.wav", X, 16000)
    (source / "locked.wav").chmod(0)
    locked_out = tmp_path / "read_only"
    locked_out.mkdir()
    locked_out.chmod(0o555)
    prefix = permission_bits_enforced(source / "locked.wav")
    model = ["--model", str(tiny_checkpoint)]

    batch = sectl_cli(prefix, "enhance", str(source), "-o", str(tmp_path / "out"), *model, "--json")
    assert batch.returncode == 1, batch.stderr
    report = json.loads(batch.stdout)
    assert [os.path.basename(p) for p in report["written"]] == ["ok.wav"]
    assert report["failed"] == [f"{source / 'locked.wav'}: cannot read the file (Permission denied)"]
    scores = sectl_cli(prefix, "eval", "--ref", str(source), "--est", str(source), "-m", "si_sdr", "--json")
    assert scores.returncode == 1 and "locked.wav: cannot read the file (Permission denied)" in scores.stdout

    for target in (locked_out, locked_out / "sub", locked_out / "x.wav"):
        result = sectl_cli(prefix, "enhance", str(source / "ok.wav"), "-o", str(target), *model)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "cannot write (Permission denied)" in result.stderr
        assert "Traceback" not in result.stderr
    run = sectl_cli(prefix, "train", "-o", str(locked_out / "run"), "--set", f"data.clean={source}", "--set", f"data.noise={source}")
    assert run.returncode == 1 and "run: cannot write (Permission denied)" in run.stderr
    assert list(locked_out.iterdir()) == []


def test_output_folder_below_a_file_is_reported(tmp_path, tiny_checkpoint):
    source = tmp_path / "a.wav"
    sf.write(source, X, 16000)
    (tmp_path / "plain_file").write_text("x")
    result = runner.invoke(app, ["enhance", str(source), "-o", str(tmp_path / "plain_file" / "out"), "--model", str(tiny_checkpoint)])
    assert result.exit_code == 1 and "plain_file/out: cannot write (Not a directory)" in result.stderr


MEASURED_CLI = """
import resource, sys
from sectl.cli.app import app
try:
    app(args=sys.argv[1:], prog_name="sectl")
    code = 0
except SystemExit as exc:
    code = exc.code
print("peak_rss_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def write_noise(path, minutes: int) -> None:
    rng = np.random.default_rng(minutes)
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as f:
        for _ in range(minutes):
            f.write((0.1 * rng.standard_normal(16000 * 60)).astype(np.float32))


def test_a_one_hour_file_is_streamed_with_the_memory_of_a_ten_minute_one(tmp_path, tiny_checkpoint):
    """Peak memory must not grow with duration: holding the extra 50 minutes as float32 alone would
    add 192 MB; the test allows 64 MB of growth."""
    peaks = {}
    for minutes in (10, 60):
        source = tmp_path / f"{minutes}min.wav"
        write_noise(source, minutes)
        result = subprocess.run(
            [sys.executable, "-c", MEASURED_CLI, "enhance", str(source), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint)],
            capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"},  # one thread: no spinning on a busy machine
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        peaks[minutes] = int(result.stderr.split("peak_rss_kib")[-1]) / 1024
        assert sf.info(tmp_path / "out" / source.name).frames == minutes * 60 * 16000
        source.unlink()
    growth = peaks[60] - peaks[10]
    assert growth < 64, f"peak RSS 10 min {peaks[10]:.0f} MiB, 60 min {peaks[60]:.0f} MiB"


# ------------------------------------------------------------------------------- batches that lose nothing
def test_two_inputs_with_one_output_name_are_refused_before_any_work(tmp_path, tiny_checkpoint):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        sf.write(tmp_path / folder / "x.wav", X, 16000)
    for jobs in ("1", "2"):
        result = runner.invoke(app, ["enhance", str(tmp_path / "a" / "x.wav"), str(tmp_path / "b" / "x.wav"), "-o",
                                     str(tmp_path / "out"), "--overwrite", "-j", jobs, "--model", str(tiny_checkpoint)])  # fmt: skip
        assert result.exit_code == 2, result.output
        assert "a/x.wav" in result.stderr and "b/x.wav" in result.stderr and "one result would be lost" in result.stderr
        assert not (tmp_path / "out").exists()


def test_a_second_run_into_a_folder_inside_the_input_does_not_enhance_the_first_runs_outputs(tmp_path, tiny_checkpoint):
    work = tmp_path / "w"
    work.mkdir()
    sf.write(work / "x.wav", X, 16000)
    for _ in range(2):
        result = runner.invoke(app, ["enhance", str(work), "-o", str(work / "enh"), "--overwrite", "--json",
                                     "--model", str(tiny_checkpoint)])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert [os.path.relpath(p, work) for p in json.loads(result.stdout)["written"]] == ["enh/x.wav"]
    assert not (work / "enh" / "enh").exists()


def test_leftover_temporary_files_are_not_inputs(tmp_path, tiny_checkpoint):
    """A killed run leaves no partial output under the output's name, and a later scan never takes
    sectl's hidden temporaries for inputs."""
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "x.wav", X, 16000)
    sf.write(src / ".sectl-abc123.wav", X, 16000)  # what an interrupted write leaves
    result = runner.invoke(app, ["enhance", str(src), "-o", str(tmp_path / "out"), "--json", "--model", str(tiny_checkpoint)])
    assert result.exit_code == 0 and [os.path.basename(p) for p in json.loads(result.stdout)["written"]] == ["x.wav"]
    scores = runner.invoke(app, ["eval", "--ref", str(src), "--est", str(tmp_path / "out"), "-m", "si_sdr", "--json"])
    assert scores.exit_code == 0 and json.loads(scores.stdout)["unpaired"] == []


@pytest.mark.parametrize("suffix", [".mp3", ".aiff", ".caf"])
def test_named_outputs_in_other_formats_are_written_and_found_in_folders(tmp_path, tiny_checkpoint, suffix):
    src = tmp_path / "x.wav"
    sf.write(src, X, 16000)
    target = tmp_path / f"out{suffix}"
    result = runner.invoke(app, ["enhance", str(src), "-o", str(target), "--model", str(tiny_checkpoint)])
    assert result.exit_code == 0, result.output
    assert target.is_file() and sf.info(target).samplerate == 16000  # a file of that format, not a folder
    folder = runner.invoke(app, ["enhance", str(tmp_path), "-o", str(tmp_path / "again"), "--json", "--model", str(tiny_checkpoint)])
    assert sorted(os.path.basename(p) for p in json.loads(folder.stdout)["written"]) == sorted(["x.wav", target.name])


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigterm_keeps_finished_outputs_leaves_no_temporaries_and_exits_143(tmp_path, tiny_checkpoint, jobs):
    """What Slurm, Kubernetes and `timeout` send: handled like Ctrl-C; with -j 2 the files the workers had
    started are finished, and the summary counts exactly the files on disk."""
    import re
    import signal
    import time

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(40):
        sf.write(src / f"{i:02d}.wav", np.resize(X, 16000 * 20), 16000)
    process = subprocess.Popen([sys.executable, "-m", "sectl", "enhance", str(src), "-o", str(out), "--model", str(tiny_checkpoint),
                                "-j", jobs], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.is_dir() and any(p.name.endswith(".wav") and p.name[0] != "." for p in out.iterdir())):
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "file(s) finished and kept" in stderr and "Traceback" not in stderr
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temporary left behind
    kept = sorted(out.iterdir())
    assert 1 <= len(kept) < 40 and all(sf.info(p).frames == 16000 * 20 for p in kept)
    assert int(re.search(r"(\d+) file\(s\) finished and kept", stderr).group(1)) == len(kept)
    # --skip-existing finishes the batch without --overwrite, leaving the kept files as they are.
    stamps = {p.name: p.stat().st_mtime_ns for p in kept}
    rest = runner.invoke(app, ["enhance", str(src), "-o", str(out), "--skip-existing", "--json", "--model", str(tiny_checkpoint)])
    assert rest.exit_code == 0, rest.output
    report = json.loads(rest.stdout)
    assert len(report["skipped"]) == len(kept) and len(report["written"]) == 40 - len(kept)
    assert all((out / name).stat().st_mtime_ns == stamp for name, stamp in stamps.items())


@pytest.mark.parametrize("subtype", ["PCM_24", "FLOAT"])
def test_audio_on_stdin_keeps_its_sample_format(tmp_path, tiny_checkpoint, subtype):
    import io

    buffer = io.BytesIO()
    sf.write(buffer, X, 16000, format="WAV", subtype=subtype)
    result = subprocess.run([sys.executable, "-m", "sectl", "enhance", "-", "-o", "-", "--model", str(tiny_checkpoint)],
                            input=buffer.getvalue(), capture_output=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert sf.info(io.BytesIO(result.stdout)).subtype == subtype


def test_tables_redirected_to_a_file_keep_full_values(tmp_path, vctk):
    """`sectl eval ... > scores.txt`: no 80-column squeeze that cuts numbers to '1.7…', no colour codes."""
    metrics = "pesq_wb,pesq_nb,stoi,estoi,si_sdr,lsd,mcd,mel_distance,segsnr,csig,cbak,covl"
    result = subprocess.run([sys.executable, "-m", "sectl", "eval", "--ref", str(vctk / "clean"), "--est", str(vctk / "noisy"),
                             "-m", metrics], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout and "\x1b[" not in result.stdout
    assert "mel_distance" in result.stdout and "covl" in result.stdout


def test_a_silent_estimate_never_beats_the_noisy_input(tmp_path, vctk):
    """All zeros, and a 1-sample file, as estimates: every metric missing with the reason, a warning naming
    the file, and the means taken over the real estimates only."""
    est = tmp_path / "est"
    est.mkdir()
    shutil.copy(vctk / "noisy" / "p287_001.wav", est / "p287_001.wav")
    info = sf.info(vctk / "noisy" / "p287_002.wav")
    sf.write(est / "p287_002.wav", np.zeros(info.frames, np.float32), 16000)
    sf.write(est / "p287_003.wav", X[:1], 16000)
    result = runner.invoke(app, ["eval", "--ref", str(vctk / "clean"), "--est", str(est), "-m", "si_sdr,dnsmos_ovrl", "--json"])
    assert result.exit_code == 0, result.output
    files = {f["file"]: f for f in json.loads(result.stdout)["files"]}
    assert all(files[n][m] is None for n in ("p287_002.wav", "p287_003.wav") for m in ("si_sdr", "dnsmos_ovrl"))
    assert files["p287_001.wav"]["si_sdr"] is not None
    assert "p287_002.wav: si_sdr missing (undefined: the estimate is silent)" in result.stderr
    assert "p287_003.wav: dnsmos_ovrl missing (undefined on" in result.stderr


def test_files_in_formats_sectl_cannot_read_are_named_not_silently_skipped(tmp_path, tiny_checkpoint):
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "x.wav", X, 16000)
    (src / "voice.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A ")
    result = runner.invoke(app, ["enhance", str(src), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint)])
    assert result.exit_code == 0 and "skipped 1 file(s) in a format sectl cannot read (.m4a" in result.stderr


def test_an_existing_file_where_an_output_folder_goes_is_named(tmp_path, tiny_checkpoint, data_dir):
    (tmp_path / "taken").write_text("a file")
    result = runner.invoke(app, ["enhance", str(data_dir / "vctk" / "noisy"), "-o", str(tmp_path / "taken"), "--model", str(tiny_checkpoint)])
    assert result.exit_code == 1 and "taken: exists and is not a folder" in result.stderr

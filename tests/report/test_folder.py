"""The report's folder: never over its own inputs, and after --overwrite it holds only what the new build wrote
(the previous build's files removed by its manifest, nothing else touched); a test's key is outside the hosted folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sectl.cli.app import app
from sectl.errors import OutputExistsError, SectlError
from sectl.fileutil import InputTargetError
from tests.report.conftest import make_corpus

runner = CliRunner()


def files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def build(corpus: Path, out: Path, **options):
    from sectl.report import build_report

    return build_report([("noisy", str(corpus / "noisy")), ("DF3", str(corpus / "enhanced"))], out, ref=str(corpus / "clean"),
                        metrics="si_sdr", **options)  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("folder"), 3, seconds=0.3)


def test_a_folder_holding_an_input_is_refused_even_with_overwrite(corpus, tmp_path):
    build(corpus, tmp_path / "rep2")
    before = {name: (tmp_path / "rep2" / name).read_bytes() for name in files_in(tmp_path / "rep2")}
    audio = tmp_path / "rep2" / "audio"
    result = runner.invoke(app, ["report", "--ref", str(audio), "--est", str(audio), "-o", str(tmp_path / "rep2"), "--overwrite"])
    assert result.exit_code == 2 and f"holds --est {audio}" in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(InputTargetError, match="holds --ref"):
        from sectl.report import build_report

        build_report([("x", str(corpus / "noisy"))], tmp_path / "rep2", ref=str(audio), metrics="si_sdr", overwrite=True)
    assert {name: (tmp_path / "rep2" / name).read_bytes() for name in files_in(tmp_path / "rep2")} == before
    inside = runner.invoke(app, ["report", "--est", str(corpus / "noisy"), "-o", str(corpus / "noisy" / "report")])
    assert inside.exit_code == 2 and "inside --est" in inside.stderr


def test_overwriting_a_report_with_a_test_leaves_only_the_tests_files_and_the_users(corpus, tmp_path):
    out = tmp_path / "r"
    build(corpus, out)
    listen = files_in(out)
    assert {"audio/u00000-0.wav", "spectrograms/u00000-0.png", "index.html", "sectl-report.json"} <= listen
    (out / "notes.txt").write_text("mine")
    (out / "audio" / "mine.wav").write_bytes(b"mine")
    with pytest.raises(OutputExistsError, match="use --overwrite"):
        build(corpus, out, test="acr", practice=0)
    build(corpus, out, test="acr", practice=0, overwrite=True)
    manifest = json.loads((out / "sectl-report.json").read_text())["files"]
    assert files_in(out) == {*manifest, "sectl-report.json", "notes.txt", "audio/mine.wav"}
    assert not (out / "spectrograms").exists() and not (out / "index.html").exists()  # the report's files are gone
    assert "test.json" in manifest and all(name.startswith("site/") for name in manifest if name != "test.json")
    assert not list((out / "site").rglob("test.json"))  # the key is outside the folder raters get
    build(corpus, out, overwrite=True)  # and back: the test's files go, the user's stay
    assert not (out / "site").exists() and not (out / "test.json").exists() and (out / "audio" / "mine.wav").exists()


def test_overwrite_refuses_a_report_without_manifest_and_a_manifest_leading_outside(corpus, tmp_path):
    out = tmp_path / "r"
    build(corpus, out)
    (out / "sectl-report.json").unlink()  # as an older sectl, or another tool, left it
    with pytest.raises(OutputExistsError, match="no sectl-report.json beside it"):
        build(corpus, out, overwrite=True)
    (tmp_path / "outside.txt").write_text("keep")
    (out / "sectl-report.json").write_text(json.dumps({"sectl_report": 1, "files": ["index.html", "../outside.txt"]}))
    with pytest.raises(SectlError, match="'../outside.txt' is not a file of the folder"):
        build(corpus, out, overwrite=True)
    assert (tmp_path / "outside.txt").read_text() == "keep" and (out / "index.html").exists()


def test_a_file_no_build_listed_is_never_replaced(corpus, tmp_path):
    out = tmp_path / "r"
    (out / "audio").mkdir(parents=True)
    (out / "audio" / "u00000-0.wav").write_bytes(b"the user's")
    with pytest.raises(OutputExistsError, match="no sectl report build listed it"):
        build(corpus, out, overwrite=True)
    assert (out / "audio" / "u00000-0.wav").read_bytes() == b"the user's"

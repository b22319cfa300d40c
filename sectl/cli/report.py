"""`sectl report`: a listening page of enhanced folders, scored as `sectl eval` scores them."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from sectl.cli.common import EXIT_FAILURE, err, handle_errors, progress_bar
from sectl.errors import UsageError
from sectl.options import AUDIO_FORMATS, check_audio_format, parse_select_by, parse_systems

HELP = """Write a listening report: a folder with one index.html (script and style inline, no network
request) and the audio and spectrograms beside it, which opens from file:// or any static host.

Per utterance, one transport plays every version (each --est, then the clean reference): switching
version keeps the position; keys: space, 1..9, arrows. Above the utterances, each system's mean, 95 %
CI and wins-losses per metric, exactly as `sectl eval` computes them (the page embeds its JSON).

Pairing, metrics and system names are eval's: the first --est is the baseline; --est NAME=folder/
names a system; without --ref, DNSMOS scores.

Examples:

  sectl report --ref clean/ --est noisy/ --est runA/ --est DF3=out_df3/ -o report/

  sectl report --ref clean/ --est noisy/ --est out/ -o report/ --select 20 --select-by worst:pesq_wb

  sectl report --est recordings/ --est enhanced/ -o report/ --audio-format opus   # no reference: DNSMOS

  sectl report --ref clean/ --est noisy/ --est DF3=out_df3/ -o test/ --test mushra --select 12   # a blind test

With --test acr|p835|mushra the page is a blind listening test instead (ACR, P.835, or MUSHRA with the
hidden reference and 3.5/7 kHz anchors; needs --ref): raters type an id (it seeds their order), rate,
and download one ratings file each; `sectl eval --ratings files... --test test/test.json` scores them.
The page and its audio go to test/site/ (give raters, or host, only that folder); test/test.json beside
it is the key (which system each clip is): keep it.

--overwrite replaces a report: every file the folder's previous build wrote (its sectl-report.json lists
them) is removed first, and nothing else; a folder holding an input is refused.

Exit codes: 0 written; 1 some files could not be read (the page has the others); 2 bad arguments.
"""


def report_command(
    est: List[Path] = typer.Option(..., "--est", metavar="[NAME=]PATH", help="Enhanced (or noisy) file or folder; repeat per system, the first is the baseline; NAME= names it."),
    ref: Optional[Path] = typer.Option(None, "--ref", help="Clean reference file or folder (optional)."),
    output: Path = typer.Option(..., "--output", "-o", help="Report folder (index.html, audio/, spectrograms/)."),
    metrics: Optional[str] = typer.Option(None, "--metrics", "-m", help="Comma-separated metric names (default: eval's; DNSMOS without --ref)."),
    audio_format: str = typer.Option("wav", "--audio-format", help=f"Audio beside the page: {', '.join(AUDIO_FORMATS)} (opus for small pages)."),
    select_count: Optional[int] = typer.Option(None, "--select", min=1, metavar="N", help="List N utterances (the summary still covers every file)."),
    select_by: str = typer.Option("random", "--select-by", metavar="random|worst:M|best:M|spread:M", help="How --select picks: at random, or by metric M of the last --est."),
    seed: int = typer.Option(0, "--seed", help="Seed of --select-by random."),
    title: str = typer.Option("Listening report", "--title", help="The page's title."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Files scored in parallel processes."),
    dnsmos_dir: Optional[Path] = typer.Option(None, "--dnsmos-dir", help="Folder with the DNSMOS ONNX models (else $SECTL_DNSMOS_DIR, then the cache)."),
    asr_model: Optional[str] = typer.Option(None, "--asr-model", help="Recogniser for -m wer (as in sectl eval)."),
    nisqa_model: Optional[Path] = typer.Option(None, "--nisqa-model", help="NISQA's weights for -m nisqa* (as in sectl eval)."),
    utmos_model: Optional[Path] = typer.Option(None, "--utmos-model", help="UTMOS's weights for -m utmos (as in sectl eval)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the report in an existing folder (the files its build wrote are removed first)."),
    test: Optional[str] = typer.Option(None, "--test", metavar="acr|p835|mushra", help="Make the page a blind listening test by this method (needs --ref)."),
    practice: Optional[int] = typer.Option(None, "--practice", min=0, help="With --test: practice trials before the test, on utterances outside it (default 2)."),
    test_id: Optional[str] = typer.Option(None, "--test-id", help="With --test: the test's name in ratings files (default: the folder's name)."),
) -> None:
    """Write a static listening page of the systems, with eval's scores."""
    _run(est, ref, output, metrics, audio_format, select_count, select_by, seed, title, jobs,
         {"dnsmos_dir": dnsmos_dir, "asr_model": asr_model, "nisqa_model": nisqa_model, "utmos_model": utmos_model}, overwrite, {"test": test, "practice": practice, "test_id": test_id})  # fmt: skip


@handle_errors
def _run(est, ref, output, metrics, audio_format, select_count, select_by, seed, title, jobs, locations, overwrite, testing) -> None:
    systems = parse_systems(est)  # argument errors before heavy imports: they answer at once
    check_audio_format(audio_format)
    if testing["test"] is None and (testing["test_id"] is not None or testing["practice"] is not None):
        raise UsageError("--practice and --test-id apply with --test")
    testing = {**testing, "practice": 2 if testing["practice"] is None else testing["practice"]}
    from sectl.report.listening import check_test

    check_test(testing["test"], None if ref is None else str(ref), testing["practice"])
    parse_select_by(select_by)
    if select_by != "random" and select_count is None:
        raise UsageError("--select-by applies with --select N")
    from sectl.cli.eval import report_problems
    from sectl.report import build_report

    with progress_bar("scoring, then writing", total=0) as on_progress:
        report = build_report(systems, output, ref=None if ref is None else str(ref), metrics=metrics,
                              audio_format=audio_format, select_count=select_count, select_by=select_by, seed=seed,
                              title=title, on_progress=on_progress, jobs=jobs, overwrite=overwrite, **testing, **locations)  # fmt: skip
    for summary in report.summaries:
        report_problems(summary.report)
    err.print(f"wrote {report.page} ({len(report.utterances)} utterance(s), {len(systems)} system(s))", highlight=False)
    if testing["test"] is not None:
        from sectl.report.folder import KEY_FILE, SITE

        err.print(f"the key is {Path(output) / KEY_FILE}: keep it; give raters (or host) only {Path(output) / SITE}/", highlight=False)
    if any(s.report.errors for s in report.summaries):
        raise typer.Exit(EXIT_FAILURE)


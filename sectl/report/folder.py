"""A report's folder: checked against the command's inputs before any work, and, with ``overwrite``, left holding
only what the new build writes.

Every build lists the files it is about to write in :data:`MANIFEST` before it writes them. A later build into
the same folder (``overwrite``) removes exactly the files listed there, and the folders they leave empty, before
writing its own: a listening test written over a report cannot keep the report's audio beside it (where its
names would unblind the test), an interrupted build is cleaned up by the next one, and a file no build listed is
never removed (a build that would replace one refuses instead).

A listening test's folder holds its key (:data:`KEY_FILE`, which clip is which system) beside :data:`SITE`, the
folder the raters get or a static host serves: the key is never in the folder that is hosted.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from sectl.errors import OutputExistsError, SectlError
from sectl.fileutil import Input, InputTargetError, atomic_write_text, check_outputs, inputs

MANIFEST = "sectl-report.json"
"""The files the last build of a folder wrote (paths relative to the folder, ``/``-separated)."""
MANIFEST_FORMAT = 1
KEY_FILE = "test.json"
"""A listening test's key, beside its :data:`SITE` folder: ``sectl eval --ratings --test`` reads it."""
SITE = "site"
"""A listening test's page and audio: what raters get (hosted or sent); it holds nothing that names a system."""
PAGE = "index.html"


def report_inputs(systems: list[tuple[str, str]], ref: str | None, dnsmos_dir=None, asr_model=None, nisqa_model=None,
                  utmos_model=None) -> list[Input]:  # fmt: skip
    """Everything a build reads, as :func:`sectl.fileutil.check_outputs` takes it (each ``--est``, ``--ref``, the
    DNSMOS models folder, a recogniser given as a path, the NISQA and UTMOS weights)."""
    from sectl.audio.io import AUDIO_EXTENSIONS

    return [*inputs("--est", [path for _, path in systems], AUDIO_EXTENSIONS), *inputs("--ref", ref, AUDIO_EXTENSIONS),
            *inputs("--dnsmos-dir", dnsmos_dir), *inputs("--asr-model", asr_model), *inputs("--nisqa-model", nisqa_model),
            *inputs("--utmos-model", utmos_model)]  # fmt: skip


def check_folder(out: Path, reads: list[Input], overwrite: bool) -> None:
    """Refuse, before any work, a report folder that is inside an input, holds one (the build would write over
    it, or remove it with the previous build's files), or holds a report without ``overwrite`` or one no
    build of this sectl listed (no manifest to replace it by)."""
    outputs = {"-o folder": out, "report page": out / PAGE, "test key": out / KEY_FILE, "test page": out / SITE / PAGE,
               "report manifest": out / MANIFEST}  # fmt: skip
    target = out.resolve()
    for source in reads:
        if not source.path.exists():
            continue  # a recogniser's name, not a path
        place = source.path.resolve()
        if source.path.is_dir() and target.is_relative_to(place):
            raise InputTargetError(f"{out}: inside {source.role} {source.path}; the report's audio would be read as "
                                   "its input next time; write the report elsewhere")  # fmt: skip
        if place.is_relative_to(target):
            raise InputTargetError(f"{out}: holds {source.role} {source.path}; the report would write over its own "
                                   "inputs; write the report elsewhere")  # fmt: skip
    check_outputs(outputs, reads, overwrite)
    if overwrite and previous_files(out) is None:
        found = next((p for p in (out / PAGE, out / KEY_FILE, out / SITE / PAGE) if p.exists()), None)
        if found is not None:
            raise OutputExistsError(f"{found}: no {MANIFEST} beside it says which files a sectl report build wrote "
                                    "there, so --overwrite cannot replace them alone; remove the old report or "
                                    "write elsewhere")  # fmt: skip


def previous_files(out: Path) -> list[str] | None:
    """The files the folder's last build listed, or None where no build wrote a manifest."""
    path = out / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"]
        assert data.get("sectl_report") == MANIFEST_FORMAT and isinstance(files, list)
    except (OSError, ValueError, KeyError, TypeError, AssertionError, RecursionError):
        raise SectlError(f"{path}: not a manifest sectl report wrote; remove the old report or write elsewhere") from None
    for name in files:
        _check_entry(out, path, name)
    return files


def _check_entry(out: Path, manifest: Path, name) -> None:
    """A manifest entry names a file inside the folder: never anything outside it, whatever the file says."""
    pure = PurePosixPath(name) if isinstance(name, str) else None
    if pure is None or not name or pure.is_absolute() or ".." in pure.parts or "\\" in name or name == MANIFEST:
        raise SectlError(f"{manifest}: entry {name!r} is not a file of the folder; remove the old report by hand")
    path = out / pure
    if path.exists() and (path.is_dir() or not path.resolve().is_relative_to(out.resolve())):
        raise SectlError(f"{manifest}: entry {name!r} is a folder or leads outside {out}; remove the old report by hand")


def replace_previous(out: Path, planned: list[str]) -> None:
    """Make ``out`` ready for a build that writes ``planned`` (relative paths): refuse to replace a file no build
    listed, remove the previous build's files, then list ``planned`` in the manifest before any is written."""
    old = previous_files(out) or []
    listed = set(old)
    stray = next((name for name in planned if name not in listed and (out / name).exists()), None)
    if stray is not None:
        raise OutputExistsError(f"{out / stray}: exists and no sectl report build listed it in {MANIFEST}; "
                                "move it or write the report elsewhere")  # fmt: skip
    for name in old:
        (out / name).unlink(missing_ok=True)
    _remove_empty_folders(out, old)
    manifest = {"sectl_report": MANIFEST_FORMAT, "files": sorted(planned)}
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")


def _remove_empty_folders(out: Path, removed: list[str]) -> None:
    """The folders inside ``out`` that held removed files and are empty now, deepest first."""
    folders = {parent for name in removed for parent in PurePosixPath(name).parents if str(parent) != "."}
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        path = out / folder
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()

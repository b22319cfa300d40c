"""Finding audio files and pairing two trees by relative path."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sectl.audio.formats import AUDIO_EXTENSIONS
from sectl.audio.io import STDIO
from sectl.errors import SectlError, UsageError
from sectl.fileutil import InputTargetError, file_identity, is_temporary


def find_audio_files(root: str | Path, exclude: str | Path | None = None) -> list[Path]:
    """Audio files (every suffix in ``AUDIO_EXTENSIONS``) under ``root``; see :func:`find_files`."""
    return find_files(root, AUDIO_EXTENSIONS, exclude)


def find_files(root: str | Path, suffixes: tuple[str, ...], exclude: str | Path | None = None) -> list[Path]:
    """Files with one of ``suffixes`` under ``root`` (recursively, sorted); a file path returns itself.

    Broken or looping symbolic links with an audio suffix are listed too, so a batch reports them by
    name instead of skipping them silently; folders (even one named ``x.wav``) are walked, not read.
    sectl's own temporary files (an interrupted run's) are never listed, nor anything under
    ``exclude`` (a batch's output folder inside its input folder: a second run must not take the
    first run's outputs for inputs).
    """
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise SectlError(f"{root}: no such file or folder")
    skip = os.path.realpath(exclude) if exclude is not None else None
    return sorted(
        p for p in root.rglob("*")
        if p.suffix.lower() in suffixes and (p.is_file() or (p.is_symlink() and not p.exists()))
        and not is_temporary(p) and not (skip is not None and _inside(os.path.realpath(p.parent), skip))
    )  # fmt: skip


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@dataclass
class Pairing:
    """Files matched between a reference and an estimate tree, plus what had no partner."""

    pairs: list[tuple[str, Path, Path]] = field(default_factory=list)  # (relative name, ref, est)
    only_ref: list[str] = field(default_factory=list)
    only_est: list[str] = field(default_factory=list)


def pair_files(est: str | Path, *, ref: str | Path) -> Pairing:
    """Pair ``est`` with ``ref`` (two files, or two folders matched by relative path)."""
    ref, est = Path(ref), Path(est)
    if ref.is_file() or est.is_file():
        if not (ref.is_file() and est.is_file()):
            raise SectlError(f"{ref} and {est}: give two files or two folders")
        return Pairing(pairs=[(est.name, ref, est)])
    ref_files = {p.relative_to(ref).as_posix(): p for p in find_audio_files(ref)}
    est_files = {p.relative_to(est).as_posix(): p for p in find_audio_files(est)}
    for side, folder, found in (("--ref", ref, ref_files), ("--est", est, est_files)):
        if not found:
            raise SectlError(f"{folder}: no audio files in the {side} folder")
    common = sorted(ref_files.keys() & est_files.keys())
    return Pairing(
        pairs=[(name, ref_files[name], est_files[name]) for name in common],
        only_ref=sorted(ref_files.keys() - est_files.keys()),
        only_est=sorted(est_files.keys() - ref_files.keys()),
    )


def plan_batch(
    inputs: list[str | Path],
    output: str | Path,
    suffixes: tuple[str, ...] = AUDIO_EXTENSIONS,
    output_suffix: str | None = None,
) -> list[tuple[str, str]]:
    """``(source, destination)`` pairs of a batch command, checked before any work.

    Files go into ``output/`` by name, folders keep their relative paths (files with ``suffixes``;
    the output folder itself is left out of the scan), ``output_suffix`` replaces each name's suffix
    (``.npz`` for latents). A single file input may name its output file (an audio suffix, or
    ``output_suffix``); ``-`` pairs with ``-``. Two inputs that would write the same output are
    refused, naming both: the second result would silently replace the first.
    """
    if any(str(i) == STDIO for i in inputs):
        if len(inputs) != 1 or str(output) != STDIO:
            raise UsageError("'-' (stdin) must be the only input and needs '-o -' (stdout)")
        return [(STDIO, STDIO)]
    if str(output) == STDIO:
        raise UsageError("'-o -' (stdout) needs '-' (stdin) as the input")
    out = Path(output)
    if out.exists() and not out.is_dir() and not out.is_file():
        raise UsageError(f"{out}: not a folder or a file (a device?); -o takes an output folder, a file, or '-' for stdout")
    named = {*AUDIO_EXTENSIONS, *([output_suffix] if output_suffix else [])}
    if len(inputs) == 1 and Path(inputs[0]).is_file() and out.suffix.lower() in named and not out.is_dir():
        plan = [(str(inputs[0]), str(out))]
        refuse_input_targets(plan)
        return plan

    def destination(relative: Path) -> str:
        return str((out / relative).with_suffix(output_suffix) if output_suffix else out / relative)

    plan = []
    for item in map(Path, inputs):
        if item.is_dir():
            # An output folder inside the input folder holds earlier results, not inputs (the same folder
            # is still scanned: writing over the inputs is refused file by file).
            inside = os.path.realpath(out) != os.path.realpath(item)
            found = find_files(item, suffixes, exclude=out if inside else None)
            plan += [(str(f), destination(f.relative_to(item))) for f in found]
        else:
            plan.append((str(item), destination(Path(item.name))))  # missing files fail later, by name
    refuse_clashes(plan)
    refuse_input_targets(plan)
    return plan


def refuse_input_targets(plan: list[tuple[str, str]]) -> None:
    """Refuse, before any work, a plan in which an output is one of its inputs (``x.wav -o x.wav``, a
    folder enhanced into itself): an input is never replaced, whatever ``--overwrite`` says. Files are
    compared by identity (device, inode), so links and other spellings of a path are caught too, and a
    10,000-file batch costs one ``stat`` per file."""
    sources = {key: src for src, _ in plan if src != STDIO and (key := file_identity(src)) is not None}
    for _, dst in plan:
        src = sources.get(file_identity(dst)) if dst != STDIO else None
        if src is not None:
            raise InputTargetError(f"{dst}: is an input of this command ({src}); an output cannot replace it, even with "
                                   "--overwrite; write into another folder or name")  # fmt: skip


def refuse_clashes(plan: list[tuple[str, str]]) -> None:
    """Refuse a plan in which two sources share a destination."""
    first: dict[str, str] = {}
    for src, dst in plan:
        key = os.path.normcase(os.path.abspath(dst))
        if key in first and first[key] != src:
            raise UsageError(
                f"{dst}: both {first[key]} and {src} would be written there (one result would be lost); "
                "enhance them into separate output folders or rename one"
            )
        first.setdefault(key, src)


def without_existing(plan: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[str]]:
    """``--skip-existing``: the pairs whose output does not exist yet, and the outputs left as they are
    (an interrupted batch finishes without ``--overwrite``; outputs are written atomically, so an
    existing one is complete)."""
    kept: list[tuple[str, str]] = []
    existing: list[str] = []
    for src, dst in plan:
        if dst != STDIO and Path(dst).exists():
            existing.append(dst)
        else:
            kept.append((src, dst))
    return kept, existing


UNREADABLE_AUDIO = (".m4a", ".aac", ".wma", ".amr", ".ape", ".mka", ".mp4", ".m4b", ".webm", ".ac3", ".dts")
"""Audio containers soundfile (libsndfile) does not decode: folder scans skip them, and say so."""


def unreadable_audio(inputs: list[str | Path]) -> list[Path]:
    """Files under the input folders that look like audio sectl cannot read (to warn about, not to fail)."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found += find_files(item, UNREADABLE_AUDIO)
    return found


def describe_unreadable(files: list[Path]) -> str:
    """One line for a warning: how many, which kinds, and what to do."""
    kinds = sorted({f.suffix.lower() for f in files})
    return (f"skipped {len(files)} file(s) in a format sectl cannot read ({', '.join(kinds)}, e.g. {files[0]}); "
            f"convert them first, e.g. ffmpeg -i in{kinds[0]} in.wav")  # fmt: skip

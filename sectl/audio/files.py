"""Finding audio files and pairing two trees by relative path."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sectl.audio.io import AUDIO_EXTENSIONS
from sectl.errors import SectlError


def find_audio_files(root: str | Path) -> list[Path]:
    """Audio files under ``root`` (recursively, sorted); a file path returns itself.

    Broken or looping symbolic links with an audio suffix are listed too, so a batch reports them by
    name instead of skipping them silently; folders (even one named ``x.wav``) are walked, not read.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise SectlError(f"{root}: no such file or folder")
    return sorted(
        p for p in root.rglob("*")
        if p.suffix.lower() in AUDIO_EXTENSIONS and (p.is_file() or (p.is_symlink() and not p.exists()))
    )  # fmt: skip


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
    common = sorted(ref_files.keys() & est_files.keys())
    return Pairing(
        pairs=[(name, ref_files[name], est_files[name]) for name in common],
        only_ref=sorted(ref_files.keys() - est_files.keys()),
        only_est=sorted(est_files.keys() - ref_files.keys()),
    )

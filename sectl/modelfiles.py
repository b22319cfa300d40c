"""Finding what a command needs from outside the package: one lookup order for every command.

Every resource (DNSMOS's ONNX files, a pretrained enhancer's official files, the ``wer`` recogniser) is
searched in the same order by ``eval``, ``train``, ``enhance`` and the rest: the place a command was
given explicitly (an option such as ``eval --dnsmos-dir``, or a config key), then the resource's own
environment variable (``SECTL_DNSMOS_DIR``, ``SECTL_ASR_MODEL``), then ``$SECTL_MODELS_DIR/<name>``
(:func:`search_folders`), then the user cache, where a checked download lands (:func:`locate`). An
offline machine gets one error that names every place searched and how to provide the files.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from sectl.errors import SectlError, UsageError
from sectl.fileutil import Input, atomic_write_bytes


@dataclass(frozen=True)
class ModelFiles:
    """A published model's files: name (a path relative to the model's folder) -> SHA-256, and where to
    download them (``None``: nowhere stable)."""

    name: str
    files: dict[str, str]
    url: str | None = None  # base URL; each file is ``url + filename``, or ``url + remote[filename]``
    hint: str = ""  # how a user provides the files by hand
    remote: dict[str, str] = field(default_factory=dict)  # files kept under another name than upstream's

    def source(self, name: str) -> str:
        """The download URL of file ``name``."""
        return f"{self.url}{self.remote.get(name, name)}"

    def in_folder(self, folder: Path) -> dict[str, Path] | None:
        paths = {name: folder / name for name in self.files}
        return paths if all(p.is_file() for p in paths.values()) else None


MODELS_DIR_ENV = "SECTL_MODELS_DIR"
"""One folder for every model sectl looks up by name: ``$SECTL_MODELS_DIR/<name>/``."""


def search_folders(name: str, env: str | None = None, explicit: str | Path | None = None) -> list[Path]:
    """Where ``name``'s files are looked for before the cache, in order: ``explicit`` (a command's option
    or a config key), then ``$env`` (the resource's own variable), then ``$SECTL_MODELS_DIR/<name>``."""
    folders = [Path(explicit)] if explicit is not None else []
    if env and os.environ.get(env):
        folders.append(Path(os.environ[env]))
    if os.environ.get(MODELS_DIR_ENV):
        folders.append(Path(os.environ[MODELS_DIR_ENV]) / name)
    return folders


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sectl"


STORE_VARIABLES = (MODELS_DIR_ENV, "SECTL_DNSMOS_DIR", "SECTL_ASR_MODEL", "SECTL_NISQA_MODEL", "SECTL_UTMOS_MODEL")
"""Environment variables naming model files or folders (every named model, DNSMOS, the ``wer`` recogniser, the
NISQA and UTMOS weights)."""


def model_stores() -> list[Input]:
    """Every model folder or file sectl reads whatever the command line says (:data:`STORE_VARIABLES`, its own
    model cache): an input of every command, so no output lands on a model file (``--plot
    $SECTL_DNSMOS_DIR/model_v8.onnx`` would replace DNSMOS)."""
    folders = [Path(os.environ[name]) for name in STORE_VARIABLES if os.environ.get(name)]
    folders += [cache_root() / name for name in ("models", "dnsmos", "nisqa", "utmos")]
    return [Input(folder, "model files") for folder in folders]


def find_weights(title: str, name: str, filename: str, env: str, explicit: str | Path | None, how_to: str,
                 also: tuple[Path, ...] = ()) -> Path:
    """A weights file that sectl cannot download (its licence or host forbids it): ``explicit`` (a command's
    option), else ``$env``, each a file or a folder holding ``filename``, and where given it must be there (a
    wrong path is an error, never a silent fall-back); else ``$SECTL_MODELS_DIR/<name>/filename``, the cache's
    ``<name>/filename``, then the folders in ``also`` (a package's own download place). Missing: one error
    naming every place searched and ``how_to`` (where the file comes from, where to put it)."""
    given = explicit if explicit is not None else os.environ.get(env) or None
    if given is not None:
        path = Path(given)
        path = path / filename if path.is_dir() else path
        if not path.is_file():
            source = "" if explicit is not None else f" (${env})"
            raise UsageError(f"{title} weights not found at {given}{source}; {how_to}")
        return path
    folders = [*search_folders(name), cache_root() / name, *also]
    for folder in folders:
        if (folder / filename).is_file():
            return folder / filename
    searched = ", ".join(str(folder / filename) for folder in folders)
    raise UsageError(f"{title} weights not found (looked for {searched}); {how_to}")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, expected_sha256: str, target: Path, timeout: float = 20.0) -> None:
    """Fetch ``url`` into ``target`` with a progress bar on stderr; keep it only if its checksum matches."""
    from rich.console import Console
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0)
        chunks = []
        columns = (*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(f"downloading {target.name}", total=total or None)
            while chunk := response.read(1 << 16):
                chunks.append(chunk)
                bar.advance(task, len(chunk))
    payload = b"".join(chunks)
    if hashlib.sha256(payload).hexdigest() != expected_sha256:
        raise SectlError(f"{target.name}: downloaded file failed its checksum; not kept")
    atomic_write_bytes(target, payload)


def locate(model: ModelFiles, folders: list[Path], cache: Path) -> dict[str, Path]:
    """Paths of all of ``model``'s files: the first of ``folders`` + ``[cache]`` holding them, else downloaded into ``cache``."""
    for folder in [*folders, cache]:
        found = model.in_folder(folder)
        if found is not None:
            return found
    searched = ", ".join(str(f) for f in [*folders, cache])
    if model.url is None:
        raise UsageError(f"{model.name} model files not found (looked in {searched}); {model.hint}")
    try:
        for name, digest in model.files.items():
            if not (cache / name).is_file():
                download(model.source(name), digest, cache / name)
    except (OSError, urllib.error.URLError) as exc:
        raise UsageError(
            f"{model.name} model files not found (looked in {searched}) and could not be downloaded ({exc}); {model.hint}"
        ) from None
    return {name: cache / name for name in model.files}


def refuse_onnx_graph(source: str | Path | None, need: str, instead: str = "a checkpoint, a run folder or a pretrained name") -> None:
    """Refuse an exported ONNX graph where a PyTorch module is needed; ``need`` says what the graph cannot give.

    A graph only runs enhancement forward: it has no encoder to read features from, no gradients and no
    weights to train. Every loader that needs those calls this before reading the file, so each command
    answers in one line instead of failing later on a missing attribute.
    """
    if source is not None and Path(source).suffix.lower() == ".onnx":
        raise UsageError(f"{source}: an ONNX graph cannot give {need}; pass {instead}")

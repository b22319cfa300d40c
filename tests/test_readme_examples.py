"""The README's Python examples run as written (from a copy of the repository's examples folder)."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.conftest import REPO

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("code", BLOCKS, ids=[b.splitlines()[0].lstrip("# ")[:40] for b in BLOCKS])
def test_readme_example_runs(code, tmp_path, monkeypatch):
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})

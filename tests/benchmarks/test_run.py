"""benchmarks/run.py's record: every row keeps the command and date that measured it, across partial runs
(the command used to nest itself on every ``--only`` run, and one date covered rows of different days)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_run_module():
    spec = importlib.util.spec_from_file_location("bench_run", REPO / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_partial_runs_keep_each_rows_command_and_date(tmp_path, monkeypatch):
    run = load_run_module()
    sections = {"a": lambda quick: [run.row("a", "case a", "time", 1.0, "s")],
                "b": lambda quick: [run.row("b", "case b", "time", 2.0, "s")]}  # fmt: skip
    monkeypatch.setattr(run, "SECTIONS", sections)
    days = (f"2026-01-{day:02d}" for day in itertools.count(1))  # a new day at every call
    real_strftime = run.time.strftime
    monkeypatch.setattr(run.time, "strftime", lambda fmt, *a: next(days) if fmt == "%Y-%m-%d" else real_strftime(fmt, *a))
    for args in (["--only", "a", "b"], ["--only", "b"], ["--only", "b"]):
        monkeypatch.setattr(sys, "argv", ["run.py", *args, "--out", str(tmp_path)])
        try:
            run.main()
        except SystemExit as done:
            assert done.code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    rows = {r["section"]: r for r in results["rows"]}
    assert results["command"] == f"python benchmarks/run.py --only b --out {tmp_path}"  # no nesting
    assert rows["a"]["command"] == f"python benchmarks/run.py --only a b --out {tmp_path}"
    assert rows["a"]["date"] != rows["b"]["date"]  # measured on different days, and recorded so
    table = (tmp_path / "results.md").read_text()
    assert f"| a | case a | time | 1.0 | s | {rows['a']['date']} |" in table

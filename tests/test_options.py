"""Option values several commands share: system naming and the report's choices."""

from __future__ import annotations

import pytest

from sectl.errors import UsageError
from sectl.options import parse_select_by, parse_systems


def test_systems_are_named_by_folder_by_path_where_names_repeat_or_by_name_equals(tmp_path):
    (tmp_path / "odd=name").mkdir()
    odd = str(tmp_path / "odd=name")
    assert parse_systems(["noisy/", "runs/a/out", "runs/b/out", "DF3=runs/df3", odd]) == [
        ("noisy", "noisy/"), ("runs/a/out", "runs/a/out"), ("runs/b/out", "runs/b/out"), ("DF3", "runs/df3"), ("odd=name", odd)]


def test_a_named_system_does_not_make_a_bare_one_take_its_whole_path():
    assert parse_systems(["examples/noisy", "COPY=examples/noisy"]) == [("noisy", "examples/noisy"), ("COPY", "examples/noisy")]


def test_a_repeated_system_name_is_refused():
    with pytest.raises(UsageError, match="'A' given twice"):
        parse_systems(["A=x", "A=y"])


@pytest.mark.parametrize("spec", ["worst", "random:pesq_wb", "median:stoi", "best:"])
def test_select_by_is_random_or_an_order_and_a_metric(spec):
    with pytest.raises(UsageError, match="--select-by"):
        parse_select_by(spec)
    assert parse_select_by("spread:stoi") == ("spread", "stoi") and parse_select_by("random") == ("random", None)

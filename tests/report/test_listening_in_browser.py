"""A `sectl report --test` page in a real headless Chromium, from file://: raters type an id, rate every trial
(a reload resumes where they stopped), download their ratings, and `sectl eval --ratings` on the downloaded files
gives the MOS and intervals computed from the ratings the test typed."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sectl.cli.app import app
from tests.report.test_page_in_browser import Page

runner = CliRunner()


def rate_everything(browser, folder: Path, rater: str, downloads: Path, choose, reload_at: int | None = None) -> tuple[dict, list]:
    """Rate the whole test as ``rater`` (``choose(rng, scale)`` picks a value), reloading once at trial
    ``reload_at``; returns what was typed per trial id (values in definition order) and the order of trial ids.
    The rater is attentive: a gold clip (the clean reference) gets the top answer, as P.808 screening expects."""
    kinds = {trial: entry["kind"] for trial, entry in json.loads((folder / "test.json").read_text())["key"].items()}
    page = Page(browser, folder / "site")
    page.page.fill("#rater-id", rater)
    page.page.keyboard.press("Enter")
    rng = np.random.default_rng(zlib.crc32(rater.encode()))  # hash() is salted per process
    typed, seen = {}, []
    step = 0
    while page.page.query_selector("#trial"):
        trial = page.js("document.getElementById('trial').dataset.trial")
        seen.append(trial)
        values = {}
        ask = page.page.query_selector("#ask")
        for fieldset in page.page.query_selector_all("fieldset.scale"):
            scale = fieldset.query_selector("input").get_attribute("name")
            if ask:
                value = int(ask.inner_text().split("answer ")[1][0])
            else:
                value = 5 if kinds[trial] == "gold" else choose(rng, scale)
            fieldset.query_selector(f"input[value='{value}']").focus()
            page.page.keyboard.press("Space")  # keyboard only
            values[scale] = [value]
        sliders = page.page.query_selector_all(".mushra input[type=range]")
        if sliders:
            values["MUSHRA"] = [None] * len(sliders)
            for slider in sliders:
                value = choose(rng, "MUSHRA")
                slider.fill(str(value))
                values["MUSHRA"][int(slider.get_attribute("data-index"))] = value
        typed[trial] = values
        if step == reload_at:
            page.page.reload()  # autosaved: the same trial comes back with its ratings
            page.wait("document.getElementById('trial') !== null")
            assert page.js("document.getElementById('trial').dataset.trial") == trial
            assert not page.js("document.getElementById('next').disabled")
        page.page.click("#next")
        step += 1
    with page.page.expect_download() as download:
        page.page.click("#download")
    target = downloads / download.value.suggested_filename
    download.value.save_as(target)
    assert page.console == [] and all(url.startswith(("file://", "data:", "blob:")) for url in page.requests), (page.console, page.requests)
    page.context.close()
    return typed, seen


def expected_means(folder: Path, typed: list[dict], scale: str) -> dict[str, float]:
    key = json.loads((folder / "test.json").read_text())["key"]
    values: dict[str, list[int]] = {}
    for trials in typed:
        for trial, ratings in trials.items():
            if key[trial]["kind"] == "test":
                for condition, value in zip(key[trial]["conditions"], ratings[scale]):
                    values.setdefault(condition, []).append(value)
    return {c: float(np.mean(v)) for c, v in values.items()}


def test_a_mushra_test_is_rated_resumed_downloaded_and_scored(browser, mushra_test, tmp_path):
    pick = lambda rng, scale: int(rng.integers(90, 101))  # noqa: E731  (passes post-screening: the hidden reference >= 90)
    typed, orders = zip(*[rate_everything(browser, mushra_test, r, tmp_path, pick, reload_at=2 if r == "ann" else None)
                          for r in ("ann", "ben", "ann")][:2])  # fmt: skip
    assert orders[0] != orders[1]  # the rater id seeds the order
    files = sorted(tmp_path.glob("*.json"))
    result = runner.invoke(app, ["eval", "--ratings", *map(str, files), "--test", str(mushra_test), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["kept"] for r in data["raters"]] == [True, True]
    means = {r["name"]: r["mean"] for r in data["scales"]["MUSHRA"]["conditions"]}
    assert means == pytest.approx(expected_means(mushra_test, list(typed), "MUSHRA"))
    # The intervals of the same ratings, analysed straight from what was typed, without the browser's file:
    from sectl.report.analysis import analyse
    from sectl.report.ratings import Rater, load_test

    test = load_test(mushra_test)
    raters = [Rater(f"typed{i}", name, [{"id": t, "ratings": v} for t, v in trials.items() if t.startswith("t")], True)
              for i, (name, trials) in enumerate(zip(("ann", "ben"), typed))]  # fmt: skip
    direct = analyse(raters, test)
    assert data["scales"]["MUSHRA"]["conditions"] == direct["scales"]["MUSHRA"]["conditions"]


def test_an_acr_test_by_keyboard_is_scored_and_the_same_rater_gets_the_same_order(browser, acr_test, tmp_path):
    pick = lambda rng, scale: int(rng.integers(1, 6)) if scale == "ACR" else 3  # noqa: E731
    first = rate_everything(browser, acr_test, "cy", tmp_path / "a", pick)
    second = rate_everything(browser, acr_test, "cy", tmp_path / "b", pick)
    assert first[1] == second[1]
    typed = [first[0], rate_everything(browser, acr_test, "di", tmp_path, pick)[0]]
    files = [next((tmp_path / "a").glob("*.json")), *tmp_path.glob("*.json")]
    result = runner.invoke(app, ["eval", "--ratings", *map(str, files), "--test", str(acr_test / "test.json"), "--json", "--allow-partial"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    kept = [r for r in data["raters"] if r["kept"]]
    expected = expected_means(acr_test, [t for t, r in zip(typed, ("cy", "di")) if r in [k["rater"] for k in kept]], "ACR")
    assert {r["name"]: r["mean"] for r in data["scales"]["ACR"]["conditions"] if r["mean"] is not None} == pytest.approx(expected)


def test_the_test_page_labels_every_control_and_plays_by_keyboard(browser, mushra_test):
    page = Page(browser, mushra_test / "site")
    page.page.fill("#rater-id", "eve")
    page.page.keyboard.press("Enter")
    page.wait("document.getElementById('trial') !== null")
    unlabelled = page.js("""[...document.querySelectorAll('button, input, select')].filter(e =>
        !(e.getAttribute('aria-label') || '').trim() && !(e.labels && e.labels.length) &&
        !(e.tagName === 'BUTTON' && e.textContent.trim())).map(e => e.outerHTML.slice(0, 80))""")
    assert unlabelled == []
    page.page.keyboard.press(" ")
    page.wait("document.querySelector('#trial audio').currentTime > 0.3")
    page.page.keyboard.press("2")  # sample B (1 is sample A, r the reference), from the same position
    page.wait("document.querySelector('#trial audio').currentTime > 0.3 && !document.querySelector('#trial audio').paused")
    assert page.js("document.querySelectorAll('#trial .pick')[2].getAttribute('aria-pressed')") == "true"
    assert page.console == []
    page.context.close()

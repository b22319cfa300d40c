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
        for k, fieldset in enumerate(page.page.query_selector_all("fieldset.scale")):
            play_again(page)  # a scale opens once the clip has played (P.835: again, before each scale)
            page.wait(f"!document.querySelectorAll('fieldset.scale')[{k}].hidden")
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
            hear_every_sample(page, len(sliders))
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


def play_again(page) -> None:
    """A new play of the trial's clip, by keyboard (paused first if it plays)."""
    page.page.focus("#trial .play")
    if not page.js("document.querySelector('#trial audio').paused"):
        page.page.keyboard.press("Enter")
    page.page.keyboard.press("Enter")


def hear_every_sample(page, count: int) -> None:
    """MUSHRA: play the reference, then switch to each sample while playing (its slider opens once it has played)."""
    from playwright.sync_api import TimeoutError

    play_again(page)
    for k in range(1, count + 1):
        page.page.keyboard.press(str(k))
        heard = f"document.querySelectorAll('.mushra .pick')[{k}].dataset.heard === 'true'"
        try:
            page.wait(heard, timeout_s=2)
        except TimeoutError:  # the clip had ended before the switch: play this sample
            page.page.keyboard.press("Enter")
            page.wait(heard)


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


def scales_shown(page) -> list[bool]:
    return page.js("[...document.querySelectorAll('fieldset.scale')].map(f => !f.hidden)")


def test_p835_shows_one_scale_at_a_time_each_after_the_clip_is_played_and_is_scored(browser, corpus, tmp_path):
    """P.835's three ratings each follow a listening (SIG, then BAK, then OVRL); nothing is rated before the clip
    plays. The radios of a scale are one tab stop whose answer the arrow keys move. Then a whole P.835 test is
    rated by keyboard and `sectl eval --ratings` scores its three scales."""
    from tests.report.conftest import build_test

    folder = build_test(corpus, tmp_path / "p835", "p835", select_count=1)
    page = Page(browser, folder / "site")
    page.page.fill("#rater-id", "hal")
    page.page.keyboard.press("Enter")
    page.wait("document.getElementById('trial') !== null")
    assert scales_shown(page) == [False, False, False] and page.js("document.getElementById('next').disabled")
    play_again(page)
    page.wait("!document.querySelector('fieldset.scale').hidden")
    assert scales_shown(page) == [True, False, False]
    page.page.focus("#r-SIG-5")
    page.page.keyboard.press("Space")
    page.page.keyboard.press("ArrowDown")  # native radios sharing a name: the answer moves to 4
    assert page.js("document.querySelector('input[name=SIG]:checked').value") == "4"
    page.page.keyboard.press("Tab")  # one tab stop: out of the group, not to the next radio
    assert not page.js("document.activeElement.closest('fieldset[data-scale=SIG]')")
    page.page.wait_for_timeout(300)
    assert scales_shown(page) == [True, False, False]  # BAK waits for the clip to be played again
    for k, scale in ((1, "BAK"), (2, "OVRL")):
        play_again(page)
        page.wait(f"!document.querySelectorAll('fieldset.scale')[{k}].hidden")
        page.page.focus(f"#r-{scale}-3")
        page.page.keyboard.press("Space")
    assert scales_shown(page) == [True, True, True] and not page.js("document.getElementById('next').disabled")
    page.context.close()
    pick = lambda rng, scale: int(rng.integers(1, 6))  # noqa: E731
    rate_everything(browser, folder, "ida", tmp_path / "r", pick)
    rate_everything(browser, folder, "jo", tmp_path / "r", pick)
    result = runner.invoke(app, ["eval", "--ratings", *map(str, (tmp_path / "r").glob("*.json")), "--test", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["scales"]) == {"SIG", "BAK", "OVRL"}


def test_a_mushra_slider_opens_once_its_sample_has_played(browser, mushra_test):
    page = Page(browser, mushra_test / "site")
    page.page.fill("#rater-id", "kim")
    page.page.keyboard.press("Enter")
    page.wait("document.getElementById('trial') !== null")
    disabled = "[...document.querySelectorAll('.mushra input[type=range]')].map(s => s.disabled)"
    assert all(page.js(disabled)) and page.js("document.getElementById('next').disabled")
    play_again(page)  # the reference: no slider opens
    page.wait("!document.querySelector('#trial audio').paused")
    page.page.keyboard.press("2")
    page.wait("!document.querySelectorAll('.mushra input[type=range]')[1].disabled")
    assert page.js(disabled) == [True, False, True, True, True]
    assert "Sample A" in page.js("document.getElementById('hint').textContent")
    page.context.close()


def test_starting_again_never_discards_ratings_that_were_not_downloaded(browser, acr_test, tmp_path):
    from tests.report.test_build import page_data

    data = page_data(acr_test / "site")
    total = len(data["test"]["practice"]) + len(data["test"]["trials"])
    store = f"sectl-test:{data['test']['test_id']}:{data['sha256']}"
    state = json.dumps({"rater": "lu", "started_ms": 0, "position": total, "total": total, "records": [], "draft": None})
    page = Page(browser, acr_test / "site")
    saved = lambda: page.js("k => localStorage.getItem(k)", store)  # noqa: E731
    for discard in (False, True):
        page.js("([k, v]) => localStorage.setItem(k, v)", [store, state])
        page.page.reload()
        page.wait("document.getElementById('test-end') !== null")
        page.page.click("#restart")
        assert page.js("!document.getElementById('restart-warning').hidden") and saved() is not None  # warned, kept
        if discard:
            page.page.click("#restart")  # asked twice: the rater chose to delete them
        else:
            with page.page.expect_download():
                page.page.click("#download")
            page.page.click("#restart")
        page.wait("document.getElementById('rater-id') !== null")
        assert saved() is None
    page.context.close()


def test_space_on_the_download_button_downloads_and_does_not_play(browser, acr_test):
    page = Page(browser, acr_test / "site")
    page.page.fill("#rater-id", "mo")
    page.page.keyboard.press("Enter")
    page.wait("document.getElementById('trial') !== null")
    page.page.focus("#download-partial")
    with page.page.expect_download(timeout=3000) as download:
        page.page.keyboard.press(" ")
    assert download.value.suggested_filename.endswith("-mo.json")
    assert page.js("document.querySelector('#trial audio').paused")
    page.page.focus("#trial .play")
    page.page.keyboard.press(" ")  # the transport's own button: plays
    page.wait("!document.querySelector('#trial audio').paused")
    assert page.console == []
    page.context.close()

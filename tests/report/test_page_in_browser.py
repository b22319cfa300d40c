"""The `sectl report` page in a real headless Chromium, opened from file://: it loads without console errors or
network requests, plays, keeps the position across versions, moves the cursor, sorts, answers the keys, labels
every control, and stays light with hundreds of rows."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.report.conftest import make_corpus

SCREENSHOT = REPO / "docs" / "report.png"


class Page:
    """A page opened from file://, with everything the browser reported about it."""

    def __init__(self, browser, folder: Path) -> None:
        self.context = browser.new_context(viewport={"width": 1100, "height": 800})
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto((folder / "index.html").as_uri())

    def js(self, expression: str, arg=None):
        return self.page.evaluate(expression, arg)

    def wait(self, condition: str, timeout_s: float = 5.0) -> None:
        self.page.wait_for_function(condition, timeout=timeout_s * 1000)

    def audio(self, row: int = 0) -> dict:
        return self.js("r => { const a = document.querySelectorAll('article.utt')[r].querySelector('audio');"
                       " return {t: a.currentTime, src: a.getAttribute('src') || '', paused: a.paused}; }", row)  # fmt: skip


@pytest.fixture
def page(browser, small_report):
    opened = Page(browser, small_report)
    yield opened
    opened.context.close()


def test_the_page_loads_from_file_with_no_console_error_and_no_network_request(page, small_report):
    page.wait("document.querySelectorAll('article.utt').length === 4")
    page.page.wait_for_timeout(300)  # lazy images and metadata of the visible rows
    assert page.console == []
    assert all(url.startswith(("file://", "data:")) for url in page.requests), page.requests
    assert any(url.endswith(".png") for url in page.requests)  # the check sees what the page loads


def test_audio_plays_and_switching_version_keeps_the_position_and_moves_the_cursor(page):
    page.page.keyboard.press(" ")  # the first utterance is active
    page.wait("document.querySelector('article.utt audio').currentTime > 0.6")
    cursor = page.js("parseFloat(document.querySelector('article.utt .cursor').style.left)")
    before = page.audio()
    assert not before["paused"] and before["src"].endswith("-0.wav") and cursor > 0
    page.page.keyboard.press("2")
    page.wait("document.querySelector('article.utt audio').getAttribute('src').endsWith('-1.wav') && "
              "document.querySelector('article.utt audio').readyState >= 1")
    after = page.audio()
    assert after["t"] >= before["t"] - 0.05  # continued, not restarted at 0
    page.wait("!document.querySelector('article.utt audio').paused")
    assert page.js("document.querySelectorAll('article.utt')[0].querySelectorAll('.version')[1].classList.contains('current')")
    page.wait(f"parseFloat(document.querySelector('article.utt .cursor').style.left) > {cursor}")
    page.page.keyboard.press(" ")
    page.wait("document.querySelector('article.utt audio').paused")
    paused_at = page.audio()["t"]
    page.page.keyboard.press("1")  # paused: the other version waits at the same position
    page.wait("document.querySelector('article.utt audio').getAttribute('src').endsWith('-0.wav') && "
              "document.querySelector('article.utt audio').readyState >= 1")
    page.page.wait_for_timeout(100)
    assert page.audio()["paused"] and page.audio()["t"] == pytest.approx(paused_at, abs=0.01)
    assert page.console == []


def test_arrows_seek_and_move_between_utterances(page):
    page.wait("document.querySelectorAll('article.utt').length === 4")
    page.page.keyboard.press("ArrowRight")
    page.wait("Math.abs(document.querySelector('article.utt audio').currentTime - 2) < 0.01 || "
              "document.querySelector('article.utt audio').currentTime > 1.9")
    page.page.keyboard.press("ArrowLeft")
    page.wait("document.querySelector('article.utt audio').currentTime < 0.1")
    page.page.keyboard.press("ArrowDown")
    assert page.js("document.querySelectorAll('article.utt')[1].classList.contains('active')")
    page.page.keyboard.press("3")
    page.wait("document.querySelectorAll('article.utt')[1].querySelector('audio').getAttribute('src').endsWith('-2.wav')")
    page.page.keyboard.press("ArrowUp")
    assert page.js("document.querySelectorAll('article.utt')[0].classList.contains('active')")


def rows(page) -> list[str]:
    return page.js("[...document.querySelectorAll('#summary-table tbody tr')].map(r => r.dataset.system)")


def utterances(page) -> list[str]:
    return page.js("[...document.querySelectorAll('article.utt h3')].map(h => h.textContent)")


def test_the_summary_sorts_and_a_metric_orders_the_utterances_worst_first(page, small_report):
    from tests.report.test_build import page_data

    data = page_data(small_report)
    page.wait("document.querySelectorAll('#summary-table tbody tr').length === 2")
    assert rows(page) == ["noisy", "DF3"]
    page.page.get_by_role("button", name="Sort the systems by si_sdr and order the utterances by it").click()
    assert rows(page) == ["DF3", "noisy"]  # best first
    assert page.js("document.querySelector('#summary-table th[data-key=si_sdr]').getAttribute('aria-sort')") == "descending"
    judged = {f["file"]: f["si_sdr"] for f in data["eval"]["systems"][-1]["files"]}
    assert utterances(page) == sorted(judged, key=judged.get)  # worst first, by the last system
    page.page.get_by_role("button", name="Sort the systems by si_sdr and order the utterances by it").click()
    assert rows(page) == ["noisy", "DF3"] and utterances(page) == sorted(judged, key=judged.get, reverse=True)


def test_every_control_has_a_label(page):
    page.wait("document.querySelectorAll('article.utt').length === 4")
    unlabelled = page.js("""[...document.querySelectorAll('button, input, select, audio[controls], img')].filter(e =>
        !(e.getAttribute('aria-label') || '').trim() && !(e.labels && e.labels.length) &&
        !(e.tagName === 'IMG' && (e.alt || '').trim()) && !(e.tagName === 'BUTTON' && e.textContent.trim())
      ).map(e => e.outerHTML.slice(0, 80))""")
    assert unlabelled == []
    assert page.js("document.querySelectorAll('button, input, select').length") > 20  # the check saw the controls


def test_hundreds_of_rows_load_fast_and_only_visible_rows_load_audio(browser, tmp_path):
    from sectl.report import build_report

    corpus = make_corpus(tmp_path / "big", 240, seconds=0.3)
    build_report([("noisy", str(corpus / "noisy")), ("enhanced", str(corpus / "enhanced"))], tmp_path / "r",
                 ref=str(corpus / "clean"), metrics="si_sdr", select_count=200, seed=1)  # fmt: skip
    start = time.perf_counter()
    big = Page(browser, tmp_path / "r")
    big.wait("document.querySelectorAll('article.utt').length === 200")
    loaded_s = time.perf_counter() - start
    big.page.wait_for_timeout(300)
    with_audio = big.js("document.querySelectorAll('article.utt audio[src]').length")
    images = big.js("[...document.querySelectorAll('article.utt img')].filter(i => i.getAttribute('src')).length")
    assert 1 <= with_audio <= 15 and images <= 3 * 15, (with_audio, images)
    big.page.mouse.wheel(0, 20000)
    big.wait("document.querySelectorAll('article.utt audio[src]').length > %d" % with_audio)  # scrolling loads more
    assert loaded_s < 5 and big.console == []
    print(f"200 rows: page ready in {loaded_s:.2f} s, {with_audio} rows with audio before scrolling")
    big.context.close()


def test_the_examples_script_builds_a_report_that_plays(browser, tmp_path):
    """examples/report_examples.sh end to end, its page checked in the browser; with SECTL_SCREENSHOT=1 the
    README's screenshot (docs/report.png) is taken of it."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "SECTL": f"{sys.executable} -m sectl", "PYTHONPATH": str(REPO)}
    done = subprocess.run(["bash", str(REPO / "examples" / "report_examples.sh"), str(tmp_path / "ex")], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    shot = Page(browser, tmp_path / "ex" / "report")
    shot.wait("document.querySelectorAll('article.utt').length === 3")
    assert shot.js("[...document.querySelectorAll('#summary-table tbody tr')].map(r => r.dataset.system)") == ["noisy", "enhanced"]
    shot.page.keyboard.press(" ")
    shot.wait("document.querySelector('article.utt audio').currentTime > 1.0")
    shot.page.keyboard.press("2")
    shot.page.wait_for_timeout(300)
    assert shot.console == []
    if os.environ.get("SECTL_SCREENSHOT"):
        # The real recording (prompt.wav, the others are synthetic voices) on top, through the page's own controls:
        # pesq_wb's header twice orders the utterances best first; it plays, switched to the enhanced version.
        for _ in range(2):
            shot.page.get_by_role("button", name="Sort the systems by pesq_wb and order the utterances by it").click()
        shot.page.click("article.utt:first-of-type .play")
        shot.page.keyboard.press("2")
        shot.wait("document.querySelector('article.utt audio').currentTime > 1.2")
        assert shot.js("document.querySelector('article.utt h3').textContent") == "prompt.wav" and shot.console == []
        SCREENSHOT.parent.mkdir(exist_ok=True)
        from PIL import Image  # matplotlib's dependency; 96 colours keep the committed PNG near 100 KB

        shot.page.screenshot(path=str(tmp_path / "shot.png"), clip={"x": 0, "y": 0, "width": 1100, "height": 700})
        Image.open(tmp_path / "shot.png").convert("RGB").quantize(colors=96).save(SCREENSHOT, optimize=True)
    shot.context.close()


def test_space_on_a_focused_button_toggles_once(page):
    page.page.focus("article.utt .play")  # a button's own space activation must not undo the shortcut's
    page.page.keyboard.press(" ")
    page.wait("!document.querySelector('article.utt audio').paused")
    page.page.wait_for_timeout(200)
    assert not page.audio()["paused"]
    page.page.keyboard.press(" ")
    page.wait("document.querySelector('article.utt audio').paused")


def test_the_keys_act_on_the_utterance_that_has_the_focus(page):
    page.wait("document.querySelectorAll('article.utt').length === 4")
    page.page.focus("#u2 .play")  # Tab or a click puts the focus in the third utterance; the first is highlighted
    page.page.keyboard.press("2")
    page.wait("document.querySelector('#u2 audio').getAttribute('src').endsWith('-1.wav')")
    assert page.js("document.querySelector('#u2').classList.contains('active')")
    assert not page.js("document.querySelector('#u0').classList.contains('active')")
    assert page.js("document.querySelector('#u0 audio').getAttribute('src')").endswith("-0.wav")


def test_two_quick_switches_keep_the_position_and_keep_playing(page):
    page.page.keyboard.press(" ")
    page.wait("document.querySelector('article.utt audio').currentTime > 0.8")
    before = page.audio()["t"]
    # Both switches in one task: the second comes while the first file's metadata is still loading.
    page.js("() => { for (const key of ['2', '3']) document.dispatchEvent(new KeyboardEvent('keydown', { key })); }")
    page.wait("document.querySelector('article.utt audio').getAttribute('src').endsWith('-2.wav') && "
              "document.querySelector('article.utt audio').readyState >= 1 && !document.querySelector('article.utt audio').paused")
    after = page.audio()
    assert after["t"] >= before - 0.05, (before, after)  # not restarted at 0
    assert page.console == []


def test_a_version_group_is_one_tab_stop_and_the_arrows_move_within_it(page):
    page.wait("document.querySelectorAll('article.utt').length === 4")
    page.page.focus("#u0 .pick")
    page.page.keyboard.press("Tab")  # leaves the group: not to the next version's button
    assert not page.js("document.activeElement.closest('#u0 [role=radiogroup]')")
    page.page.focus("#u0 [role=radio][aria-checked=true]")
    page.page.keyboard.press("ArrowDown")  # the next version, focused and checked; the position stays
    page.wait("document.querySelector('#u0 audio').getAttribute('src').endsWith('-1.wav')")
    assert page.js("document.activeElement.getAttribute('aria-checked')") == "true"
    assert page.js("[...document.querySelectorAll('#u0 .pick')].map(b => b.tabIndex)") == [-1, 0, -1]
    page.page.keyboard.press("ArrowUp")
    page.wait("document.querySelector('#u0 audio').getAttribute('src').endsWith('-0.wav')")


def test_a_narrow_screen_scrolls_the_summary_not_the_page(browser, small_report):
    narrow = Page(browser, small_report)
    narrow.page.set_viewport_size({"width": 360, "height": 700})
    narrow.wait("document.querySelectorAll('#summary-table tbody tr').length === 2")
    box = narrow.js("getComputedStyle(document.getElementById('summary-table').parentElement).overflowX")
    assert box == "auto"
    assert narrow.js("document.documentElement.scrollWidth <= window.innerWidth"), narrow.js("document.documentElement.scrollWidth")
    narrow.context.close()


def test_utterances_without_a_score_sort_last_by_name_either_way(browser, small_report, tmp_path):
    """Missing scores (null) keep the comparator consistent: after every number and by name, whatever order the
    rows were in (a comparator that calls every null "greater" left them in the previous metric's order)."""
    import json
    import shutil

    from sectl.report.page import render
    from tests.report.test_build import page_data

    folder = tmp_path / "nulls"
    shutil.copytree(small_report, folder)
    data = page_data(folder)
    u = [x["name"] for x in data["utterances"]]  # u000..u003, by name
    for utterance, si_sdr, stoi in zip(data["utterances"], [1.0, 4.0, 2.0, 3.0], [None, 0.9, None, None]):
        utterance["scores"][data["judged"]].update(si_sdr=si_sdr, stoi=stoi)
    (folder / "index.html").write_text(render(json.loads(json.dumps(data))))
    view = Page(browser, folder)
    view.wait("document.querySelectorAll('article.utt').length === 4")
    view.page.select_option("#order-direction", "best")
    view.page.select_option("#order-metric", "si_sdr")
    assert utterances(view) == [u[1], u[3], u[2], u[0]]
    view.page.select_option("#order-metric", "stoi")
    assert utterances(view) == [u[1], u[0], u[2], u[3]]  # the missing ones by name, not in si_sdr's order
    view.page.select_option("#order-direction", "worst")
    assert utterances(view) == [u[1], u[0], u[2], u[3]]
    view.context.close()


def test_space_on_a_focused_sort_button_sorts_and_does_not_play(page):
    """Keyboard-only use: Space presses the focused button (it played or paused the highlighted utterance instead,
    and the sort buttons answered Enter only); on a transport's own buttons it still plays and pauses."""
    page.wait("document.querySelectorAll('#summary-table tbody tr').length === 2")
    page.page.focus("#summary-table th[data-key=si_sdr] button")
    page.page.keyboard.press(" ")
    page.page.wait_for_timeout(200)
    assert page.js("document.querySelector('#summary-table th[data-key=si_sdr]').getAttribute('aria-sort')") == "descending"
    assert rows(page) == ["DF3", "noisy"] and page.audio()["paused"]
    page.page.focus("#u0 .pick")
    page.page.keyboard.press(" ")
    page.wait("!document.querySelector('#u0 audio').paused")


def test_the_sorted_column_shows_its_direction(page):
    """aria-sort told screen readers which column sorts the table and which way; sighted readers saw nothing."""
    after = "getComputedStyle(document.querySelector('#summary-table th[data-key=si_sdr] button'), '::after').content"
    page.wait("document.querySelectorAll('#summary-table tbody tr').length === 2")
    assert page.js(after) in ("none", "normal")
    page.page.get_by_role("button", name="Sort the systems by si_sdr and order the utterances by it").click()
    assert page.js(after) == '" ▼"'  # descending: the best (highest) si_sdr first
    page.page.get_by_role("button", name="Sort the systems by si_sdr and order the utterances by it").click()
    assert page.js(after) == '" ▲"'

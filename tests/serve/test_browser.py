"""The web page in headless Chromium: upload a file, see the transcript and timings (slow).

Needs Debian's chromium (`apt-get install -y chromium`) and the `playwright` Python package (no
browser download: Playwright drives /usr/bin/chromium). Skips with the reason when either is missing.
"""

from __future__ import annotations

import os
import shutil

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("SORITUNE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM:
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install playwright; no browser download)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS, timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def test_upload_shows_transcript_and_timings(page, make_server, wav_bytes, expected_text, tmp_path):
    srv = make_server()
    audio = tmp_path / "수업.wav"
    audio.write_bytes(wav_bytes)
    page.goto(srv.url + "/")
    page.wait_for_function("document.getElementById('server-status').textContent.startsWith('model ')")
    assert "tiny:" in page.inner_text("#server-status")
    assert page.is_disabled("#submit")  # nothing chosen yet
    page.set_input_files("#file", str(audio))
    page.wait_for_selector("#submit:not([disabled])")
    page.select_option("#language", "ko")
    page.click("#submit")
    page.wait_for_selector('#transcript[data-state="done"]')
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    assert page.inner_text("#transcript") == expected_text
    timings = dict(row.split("\t", 1) for row in page.inner_text("#timings").splitlines() if "\t" in row)
    assert timings["server total"].endswith(" ms") and float(timings["server total"].split()[0]) > 0
    assert timings["round trip (browser)"].endswith(" ms")
    assert timings["language"] == "korean"
    assert page.locator("#segments tbody tr").count() == 1
    assert page.is_hidden("#error")


def test_bad_upload_shows_the_error_and_the_key_field_works(page, make_server, wav_bytes, expected_text, tmp_path):
    srv = make_server(api_key="sekret")
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"this is not audio at all " * 40)
    good = tmp_path / "clip.wav"
    good.write_bytes(wav_bytes)
    page.goto(srv.url + "/")
    page.wait_for_selector("#key-row:not([hidden])")  # the server asks for a key
    page.fill("#api-key", "sekret")
    page.set_input_files("#file", str(bad))
    page.click("#submit")
    page.wait_for_selector('#transcript[data-state="error"]')
    assert "400" in page.inner_text("#error") and "not an audio file" in page.inner_text("#error")
    page.set_input_files("#file", str(good))
    page.click("#submit")
    page.wait_for_selector('#transcript[data-state="done"]')
    assert page.inner_text("#transcript") == expected_text
    assert page.is_hidden("#error")


def test_stream_shows_words_as_they_arrive_and_a_timeline(page, make_server, wav_bytes, expected_text, tmp_path):
    srv = make_server()
    audio = tmp_path / "clip.wav"
    audio.write_bytes(wav_bytes)
    page.goto(srv.url + "/")
    page.wait_for_selector("#server-status:has-text('tiny:')")
    page.set_input_files("#file", str(audio))
    page.check("#stream")
    page.check("#words")
    page.select_option("#language", "ko")
    page.click("#submit")
    page.wait_for_selector('#transcript[data-state="done"]')
    words = page.locator("#transcript span.w")
    assert words.count() >= 2  # one span per streamed word
    assert page.inner_text("#transcript").strip() == expected_text
    assert page.locator("#timeline .seg").count() == page.locator("#segments tbody tr").count() >= 1
    assert page.locator("#timeline .word").count() == words.count()
    assert "streamed" in page.inner_text("#status")

"""The Live tab in a real browser (headless Chromium): a person opens a stream (FFmpeg serving the project's sample
as UDP MPEG-TS on 127.0.0.1), watches it tracked, drags a box on the live picture, reads the descriptions as they
arrive, asks, stops; closing the page ends the live session. The screenshot is ``live.png`` in the test's folder
(``GARVIDEO_APP_SCREENSHOTS`` chooses it)."""

from __future__ import annotations

import pytest
from gradio_client.exceptions import AppError

from garvideo.testing.waiting import wait_until

from .conftest import CHROMEDRIVER, CHROMIUM, SAMPLES
from .test_browser import Page
from .test_live_api import SETTINGS

pytestmark = [
    pytest.mark.slow,  # drives the app server (a subprocess) through a headless Chromium, with FFmpeg streaming
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
    ),
]

CAT_BOX = (27, 91, 137, 175)


@pytest.fixture
def page(launched_app, chromium) -> Page:
    shown = Page(chromium, launched_app.url)
    yield shown
    chromium.get("about:blank")  # leaving ends the session


def _seq(page: Page) -> int:
    return int(page.one("#gv-live-frame .gv-stage").get_attribute("data-seq"))


def test_a_person_opens_a_stream_marks_it_and_reads_what_it_says(page, launched_app, streams, client, shots):
    url, _ = streams.udp(SAMPLES / "cat.mp4", loop=True)
    page.load()
    page.js("[...document.querySelectorAll('button[role=tab]')].find(b => b.innerText.trim() == 'Live').click()")
    page.click("#gv-live-settings .label-wrap")
    page.type_into("#gv-live-window", "2")  # a description every 2 s of stream
    page.type_into("#gv-live-max-new", "8")  # a random model rambles
    page.type_into("#gv-live-source", url)
    page.click("#gv-live-open")
    page.one("#gv-live-frame img.gv-img")  # the first frame
    first = _seq(page)
    page.until(lambda: _seq(page) >= first + 5, "frames following one another as tracking gives them")
    page.shows("#gv-live-status", "frames tracked")

    page.type_into("#gv-live-name", "cat")
    drawn, pointer = page.drag(CAT_BOX, picture="#gv-live-frame", mark="#gv-live-mark")
    assert all(abs(a - b) <= 1 for a, b in zip(drawn, pointer)), (drawn, pointer)  # the stream's own pixels
    page.shows("#gv-live-mark-status", "cat: marked on the next frame tracked")
    page.shows("#gv-live-regions", "cat")
    finished = "#gv-live-texts .gv-description[data-name='cat'][data-window]"
    page.one(finished)  # a window described (its text streamed in first, then the window's)
    page.js("window.scrollTo(0, 0);")
    page.driver.save_screenshot(str(shots / "live.png"))
    assert "cat (" in page.text(finished)
    page.shows("#gv-live-log", "appeared cat appeared, marked")

    page.type_into("#gv-live-question", "What is <cat> doing?", submit=True)
    page.shows("#gv-live-ask-status", "answered question 1")
    assert "What is <cat> doing?" in page.text("#gv-live-conversation")
    page.click("#gv-live-stop")
    page.shows("#gv-live-status", "stopped (closed)")

    # Open again, then leave the page: the live session ends with it, and another client may open one.
    page.click("#gv-live-open")
    page.shows("#gv-live-status", "frames tracked")
    with pytest.raises(AppError, match="a live session is running in another tab"):
        client.predict(url, *SETTINGS, False, api_name="/live_open")
    page.driver.get("about:blank")

    def opens() -> bool:
        try:
            return client.predict(url, *SETTINGS, False, api_name="/live_open") is not None
        except AppError:
            return False

    assert wait_until(opens, 60, every=0.5)
    client.predict(api_name="/live_stop")

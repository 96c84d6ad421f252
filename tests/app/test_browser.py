"""A person's session in a real browser (headless Chromium, Debian's chromium + chromedriver).

- marks land where the mouse is, for portrait, landscape and square videos, in a short and a tall window, at
  100% and 150% zoom (within one pixel of where the pointer really was);
- what the page shows is text: markup in a file name under --root, a question, a region name or GAR's text
  is shown as written and never runs;
- the whole workflow: SAM2's mask as soon as a box is drawn, masks frame by frame while tracking, the text
  as GAR writes it, a queue that says "waiting for 1 job", buttons off while a job runs, a kept conversation,
  timeline clicks that bring the frame into view, and the leftovers of issue 23 (warnings, names, refreshes).

Screenshots are saved in a folder the test prints (GARVIDEO_APP_SCREENSHOTS chooses it; README's picture,
docs/app.png, is the one named "asked").
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from garvideo.defaults import MAX_NEW_TOKENS_LIMIT
from garvideo.outputs import validate_result_document
from garvideo.testing.waiting import wait_until

from .conftest import CHROMEDRIVER, CHROMIUM, MARKUP_NAME, SAMPLES

CAT_BOX = (27, 91, 137, 175)  # the cat on frame 12 (samples/regions.jsonl)
WAIT_S = 90

pytestmark = [
    pytest.mark.slow,  # drives the app server (a subprocess) through a headless Chromium
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
    ),
]

# Records what the page showed while a job ran: each watched element's text after every change, and the
# Track button's disabled state (read back by the test once the job is over).
WATCH_JS = """
window.gvSeen = {};
for (const css of arguments[0]) {
  const element = document.querySelector(css), seen = window.gvSeen[css] = [];
  const note = () => { const t = element.innerText; if (seen[seen.length - 1] !== t) seen.push(t); };
  new MutationObserver(note).observe(element, {subtree: true, childList: true, characterData: true});
}
const button = document.querySelector('#gv-track'), states = window.gvSeen['track-disabled'] = [];
new MutationObserver(() => states.push(button.disabled)).observe(button, {attributes: true});
"""
# Records where the mouse really was when pressed and released (CSS pixels of the viewport).
POINTER_JS = """
if (!window.gvPointer)
  for (const kind of ['mousedown', 'mouseup'])
    document.addEventListener(kind, (e) => window.gvPointer.push([e.clientX, e.clientY]), true);
window.gvPointer = [];
"""


@dataclass
class Page:
    """The app in the browser, with the few gestures the tests need."""

    driver: object
    url: str

    def load(self, width: int = 1400, height: int = 1000, zoom: float = 1.0) -> None:
        """A fresh page (a new session) in a ``width`` x ``height`` window at ``zoom`` (as the browser's zoom:
        the page's CSS pixels are ``zoom`` device pixels and the viewport ``1/zoom`` as wide)."""
        self.driver.set_window_size(width, height)
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        if zoom != 1.0:
            inner_w, inner_h = self.driver.execute_script("return [innerWidth, innerHeight]")
            metrics = {"width": round(inner_w / zoom), "height": round(inner_h / zoom), "deviceScaleFactor": zoom}
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "mobile": False})
        self.driver.get(self.url)
        self.one("#gv-upload input[type=file]")

    def one(self, css: str):
        from selenium.webdriver.common.by import By

        found = []
        assert wait_until(lambda: found.extend(self.driver.find_elements(By.CSS_SELECTOR, css)) or found, WAIT_S), css
        return found[0]

    def text(self, css: str) -> str:
        return self.one(css).text

    def until(self, condition, what: str) -> None:
        assert wait_until(condition, WAIT_S), what

    def shows(self, css: str, text: str) -> None:
        self.until(lambda: text in self.text(css), f"{text!r} in {css}: {self.text(css)!r}")

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def type_into(self, css: str, text: str, submit: bool = False) -> None:
        from selenium.webdriver.common.keys import Keys

        field = self.one(f"{css} textarea, {css} input")
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(text)  # replaces the selection: the field is never empty (a slider refuses that)
        field.send_keys(Keys.ENTER if submit else Keys.TAB)

    def click(self, css: str) -> None:
        element = self.one(css)
        self.js("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()

    def upload(self, path: Path, facts: str) -> None:
        self.one("#gv-upload input[type=file]").send_keys(str(path))
        self.shows("#gv-facts-box", facts)

    def frame_is(self, index: int) -> None:
        self.until(lambda: self.one("#gv-frame .gv-stage").get_attribute("data-frame") == str(index), f"frame {index}")

    def drag(
        self, box: tuple[float, float, float, float], picture: str = "#gv-frame", mark: str = "#gv-mark"
    ) -> tuple[list[int], list[int]]:
        """Drag over ``box`` (video pixels) on the ``picture``; the box the page took (in the ``mark`` field) and where
        the mouse really was, mapped to video pixels by the picture's rectangle inside the <img> (which may letterbox
        it)."""
        from selenium.webdriver.common.action_chains import ActionChains

        image = self.one(f"{picture} img.gv-img")
        self.js("arguments[0].scrollIntoView({block: 'center'});", image)
        self.js(POINTER_JS)
        left, top, width, height, w, h = self.js(
            "const r = arguments[0].getBoundingClientRect(), d = arguments[0].parentElement.dataset;"
            "return [r.left, r.top, r.width, r.height, +d.w, +d.h];",
            image,
        )
        scale = min(width / w, height / h)  # object-fit: contain
        shown_left, shown_top = left + (width - w * scale) / 2, top + (height - h * scale) / 2

        def offset(x: float, y: float) -> tuple[int, int]:  # from the element's centre, as Selenium wants
            return round(shown_left + x * scale - (left + width / 2)), round(shown_top + y * scale - (top + height / 2))

        x1, y1, x2, y2 = box
        chain = ActionChains(self.driver).move_to_element_with_offset(image, *offset(x1, y1)).click_and_hold()
        chain.move_to_element_with_offset(image, *offset((x1 + x2) / 2, (y1 + y2) / 2))
        chain.move_to_element_with_offset(image, *offset(x2, y2)).release().perform()
        field = self.one(f"{mark} textarea, {mark} input")
        self.until(lambda: field.get_attribute("value"), "the drawn box in the mark field")
        (down_x, down_y), (up_x, up_y) = self.js("return window.gvPointer")[-2:]
        pointer = [(down_x - shown_left) / scale, (down_y - shown_top) / scale]
        pointer += [(up_x - shown_left) / scale, (up_y - shown_top) / scale]
        return [int(v) for v in field.get_attribute("value").split(",")], [round(v) for v in pointer]


@pytest.fixture
def page(launched_app, chromium) -> Page:
    shown = Page(chromium, launched_app.url)
    yield shown
    chromium.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    chromium.get("about:blank")  # leaving ends the session


def test_marks_land_where_the_mouse_is(page, launched_app, shots):
    """Every portrait video and a landscape one in a short window used to be letterboxed and mapped through the
    panel's width (a drag over the turned cat at 103,5,183,50 gave 113,5,159,50)."""
    root = launched_app.root
    videos = {"portrait": (root / "portrait.mp4", "256×384"), "landscape": (root / "cat.mp4", "384×256"),
              "square": (root / "square.mp4", "256×256")}  # fmt: skip
    targets = {"portrait": (103, 5, 183, 50), "landscape": CAT_BOX, "square": (30, 60, 200, 230)}
    for window in ((1400, 700), (1000, 1300)):  # short, tall
        for zoom in (1.0, 1.5):
            page.load(*window, zoom=zoom)
            for name, (path, facts) in videos.items():
                page.upload(path, facts)
                drawn, pointer = page.drag(targets[name])
                where = f"{name} in a {window[0]}x{window[1]} window at {zoom:.0%}"
                assert all(abs(a - b) <= 1 for a, b in zip(drawn, pointer)), (where, drawn, pointer)
                page.shows("#gv-region-status", "SAM2's mask on frame 0")  # its mask, before adding it
                if name == "portrait" and zoom == 1.0 and window[1] == 700:
                    page.driver.save_screenshot(str(shots / "portrait-drag.png"))


def test_what_the_page_shows_is_text(page, launched_app):
    """Markup in a file name under --root, a question, a region name or GAR's text is shown as written."""
    page.load()
    page.type_into("#gv-root-pick", MARKUP_NAME, submit=True)
    page.click("#gv-open")
    page.shows("#gv-facts-box", MARKUP_NAME)  # the name, as text
    page.type_into("#gv-name", "__cat__")  # Markdown would make it bold
    page.type_into("#gv-mark", "30,60,200,230")
    page.shows("#gv-region-status", "SAM2's mask on frame 0")
    page.click("#gv-add")
    page.shows("#gv-regions", "__cat__")
    page.type_into("#gv-question", "What is <dog> doing with <__cat__>?", submit=True)
    says = "garvideo: error: the question names <dog>, which is not among the given regions (__cat__)"
    page.shows("#gv-ask-status", says)
    # No "Error" pill left on the page's outputs, no toast, and no script ran.
    body = page.js("return document.body.innerText").splitlines()
    assert "Error" not in [line.strip() for line in body] and not page.js(
        "return document.querySelector('.toast-body')"
    )
    assert page.js("return window.gvPwned === undefined") and not page.js("return document.querySelector('img[src=x]')")


def test_a_person_marks_tracks_describes_asks_and_downloads(page, launched_app, client, shots, tmp_path):
    from gradio_client import Client

    from .test_api import open_cat

    page.load()
    # Videos added under --root after the app started are offered.
    added = launched_app.root / "added-later.mp4"
    shutil.copy(SAMPLES / "cat.mp4", added)
    try:
        page.click("#gv-root-pick input")
        page.until(lambda: "added-later.mp4" in page.text("#gv-root-pick"), "the new video in the list")
    finally:
        added.unlink()
    # An upload that is no video: its name as the user gave it, not the app's path for it.
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video\n")
    page.one("#gv-upload input[type=file]").send_keys(str(notes))
    page.shows("#gv-open-status", "garvideo: error: notes.mp4 is not a video file")
    assert str(launched_app.temp_root) not in page.text("#gv-open-status")
    page.upload(SAMPLES / "cat.mp4", "384×256")
    page.until(lambda: "error" not in page.text("#gv-open-status"), "the error gone once a video opens")
    assert page.js("return document.querySelector('#gv-root-pick input').value") == ""  # not another video

    # Scrub to frame 12, drag a box over the cat: its mask at once, then added under a name that stays.
    page.type_into("#gv-slider", "12")
    page.frame_is(12)
    page.type_into("#gv-name", "cat")
    drawn, pointer = page.drag(CAT_BOX)
    assert all(abs(a - b) <= 1 for a, b in zip(drawn, pointer)) and all(abs(a - b) <= 3 for a, b in zip(drawn, CAT_BOX))
    page.shows("#gv-region-status", "SAM2's mask on frame 12")
    page.driver.save_screenshot(str(shots / "01-mask-at-once.png"))
    page.click("#gv-add")
    page.shows("#gv-regions", "cat")
    assert page.one("#gv-name input, #gv-name textarea").get_attribute("value") == "cat"
    # A box reaching outside the frame, on another frame: clipped, and the page says so.
    page.type_into("#gv-slider", "40")
    page.frame_is(40)
    page.type_into("#gv-mark", "-10,20,100,300")
    page.click("#gv-add")
    page.shows("#gv-region-status", "garvideo: warning: the box of 'cat' -10,20,100,300 reaches outside the 384x256")

    # Track while another client's job runs: this tab waits, saying so, its buttons off; then masks as SAM2 goes.
    other = Client(launched_app.url, verbose=False, download_files=str(tmp_path / "other"), analytics_enabled=False)
    try:
        open_cat(other)
        other.predict("cup", "box", "250,150,339,229", 0, api_name="/add_region")
        other.predict("", "", 1, 0, api_name="/track")
        busy = other.submit(question="What is <cup>?", max_new=MAX_NEW_TOKENS_LIMIT, api_name="/ask")
        page.until(lambda: len(busy.outputs()) > 1 or busy.done(), "the other client's job running")
        page.js(WATCH_JS, ["#gv-run-status", "#gv-frame-label", "#gv-descriptions"])
        page.click("#gv-track")
        page.shows("#gv-run-status", "waiting for 1 job to finish")
        busy.cancel()
        page.shows("#gv-run-status", "tracked 1 region(s) over 72 frames")
    finally:
        other.predict(api_name="/close_session")
        other.close()
    seen = page.js("return window.gvSeen")
    assert any(re.fullmatch(r"tracking: \d+ of \d+ frames", t.strip()) for t in seen["#gv-run-status"]), seen
    assert any(t.strip().startswith("tracking: frame ") for t in seen["#gv-frame-label"]), seen["#gv-frame-label"]
    assert True in seen["track-disabled"] and seen["track-disabled"][-1] is False  # off while it ran, then on
    page.until(lambda: len(page.driver.find_elements("css selector", "#gv-strip img")) == 8, "8 thumbnails")
    page.driver.save_screenshot(str(shots / "02-tracked.png"))
    # A thumbnail takes the slider to its frame (the third: frame 20); the thumbnails keep the video's shape.
    thumb = page.one("#gv-strip figure:nth-of-type(3) img")
    assert abs(thumb.size["width"] / thumb.size["height"] - 384 / 256) < 0.05
    page.click("#gv-strip figure:nth-of-type(3)")
    page.frame_is(20)

    # Describe: the text appears as GAR writes it, and ends as the result's.
    page.click("#gv-settings .label-wrap")
    page.type_into("#gv-max-new", "48")
    page.js(WATCH_JS, ["#gv-run-status", "#gv-frame-label", "#gv-descriptions"])
    page.click("#gv-describe")
    # a picture of the text coming (the first words show alone, then a batch every 0.3 s at most)
    writes = lambda: "…" in page.text("#gv-descriptions") or "described" in page.text("#gv-run-status")  # noqa: E731
    wait_until(writes, WAIT_S, every=0.05)
    page.driver.save_screenshot(str(shots / "03-describing.png"))
    page.shows("#gv-run-status", "described 1 region(s)")
    writing = [t for t in page.js("return window.gvSeen")["#gv-descriptions"] if "…" in t]
    assert writing, "no text was shown before GAR had finished"
    page.driver.save_screenshot(str(shots / "03-described.png"))
    # A timeline window takes the frame there (2.0 s = frame 24) and the frame is in view.
    cell = page.one("#gv-timeline [data-testid='cell-2-1']")  # row 3, the window column
    assert cell.get_attribute("textContent").strip() == "00:00:02.000 – 00:00:03.000"
    page.js("arguments[0].scrollIntoView({block: 'center'});", cell)
    cell.click()
    page.frame_is(24)
    page.until(lambda: page.js(
        "const r = document.querySelector('#gv-frame img').getBoundingClientRect();"
        "return r.top >= 0 && r.bottom <= innerHeight;"), "the frame in view")  # fmt: skip

    # Two questions: both kept, each with its command, and the text to copy holds them.
    page.type_into("#gv-max-new", "6")
    page.type_into("#gv-question", "What is <cat> doing?", submit=True)
    page.shows("#gv-ask-status", "answered question 1")
    page.type_into("#gv-question", "Where does <cat> go?")
    page.click("#gv-ask")
    page.shows("#gv-ask-status", "answered question 2")
    conversation = page.text("#gv-conversation")
    assert "What is <cat> doing?" in conversation and "Where does <cat> go?" in conversation
    assert conversation.count("--out answer-") == 2
    page.click("#gv-settings .label-wrap")  # settings folded away again
    page.driver.set_window_size(1400, 2900)  # the whole workflow in one picture (docs/app.png)
    page.js("window.scrollTo(0, 0);")
    page.driver.save_screenshot(str(shots / "asked.png"))
    page.driver.set_window_size(1400, 1000)

    # The result JSON, downloaded, is the CLI's document with the marks in it, and shows as the page did.
    link = page.one("#gv-downloads a[href$='/result.json']")
    page.js("arguments[0].scrollIntoView({block: 'center'});", link)
    link.click()
    saved = page.driver.downloads / "result.json"
    page.until(lambda: saved.exists() and saved.stat().st_size > 0, "the download")
    document = json.loads(saved.read_text())
    validate_result_document(document)
    (region,) = document["regions"]
    assert region["name"] == "cat" and [p["when"]["frame"] for p in region["prompts"]] == [12, 40]
    assert document["provenance"]["settings"]["describe"]["generation"]["max_new_tokens"] == 48
    shown = page.js("return document.querySelector('#gv-descriptions .gv-text').textContent")
    assert shown == region["description"]  # GAR's text as written, whatever characters it holds
    if os.environ.get("GARVIDEO_APP_SCREENSHOTS"):
        shutil.copy(saved, shots / "result.json")

    # Opening another video clears everything of this one; leaving the page ends the session and its files.
    page.type_into("#gv-root-pick", "square.mp4", submit=True)
    page.click("#gv-open")
    page.shows("#gv-facts-box", "square.mp4")
    assert page.text("#gv-regions").startswith("No region yet") and page.text("#gv-conversation") == ""
    assert page.one("#gv-mark textarea, #gv-mark input").get_attribute("value") == ""
    page.driver.get("about:blank")
    assert wait_until(lambda: not any("sessions" in p.parts for p in launched_app.files_left()), timeout=60)

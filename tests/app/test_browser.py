"""A person's session in a real browser (headless Chromium, Debian's chromium + chromedriver).

Open the sample clip, scrub to a frame, draw a box on it with the mouse, name it, track, describe,
jump to a timeline window, ask, download the result JSON and check it. A screenshot of each step is
saved in a folder the test prints (GARVIDEO_APP_SCREENSHOTS chooses it; README's picture comes from it).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from garvideo.outputs import validate_result_document
from garvideo.testing.waiting import wait_until

from .conftest import SAMPLES

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CAT_BOX = (27, 91, 137, 175)  # the cat on frame 12 (samples/regions.jsonl)

pytestmark = [
    pytest.mark.slow,  # drives the app server (a subprocess) through a headless Chromium
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
    ),
]


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,2700",  # the whole page in each screenshot
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    # The driver given explicitly: Selenium Manager never downloads one.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


class Steps:
    """Screenshots numbered in order of the steps."""

    def __init__(self, driver, folder: Path) -> None:
        self.driver, self.folder, self.count = driver, folder, 0
        folder.mkdir(parents=True, exist_ok=True)

    def shot(self, name: str) -> Path:
        self.count += 1
        self.driver.execute_script("window.scrollTo(0, 0);")  # the window is tall enough for the whole page
        path = self.folder / f"{self.count:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        return path


def test_a_person_marks_tracks_describes_asks_and_downloads(launched_app, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    folder = Path(os.environ.get("GARVIDEO_APP_SCREENSHOTS") or tmp_path / "screenshots")
    print(f"\nscreenshots of each step: {folder}")
    steps = Steps(browser, folder)
    wait = WebDriverWait(browser, 60)

    def one(css: str):
        return wait.until(lambda d: d.find_element(By.CSS_SELECTOR, css))

    def text_of(css: str) -> str:
        return browser.find_element(By.CSS_SELECTOR, css).text

    def type_into(css: str, text: str) -> None:
        field = one(f"{css} textarea, {css} input")
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(text)  # replaces the selection: the field is never empty (a slider refuses that)
        field.send_keys(Keys.TAB)

    def click(css: str) -> None:
        element = one(css)
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()

    browser.get(launched_app.url)
    one("#gv-upload input[type=file]").send_keys(str(SAMPLES / "cat.mp4"))
    one("#gv-frame img.gv-img")
    wait.until(lambda d: "384×256" in text_of("#gv-facts"))
    steps.shot("opened")

    # Scrub to frame 12 with the slider's number box.
    type_into("#gv-slider", "12")
    wait.until(lambda d: "frame 12 of 72" in text_of("#gv-frame-label"))
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#gv-frame .gv-stage").get_attribute("data-frame") == "12")
    steps.shot("frame-12")

    # Drag a box over the cat, in the picture's own scale.
    type_into("#gv-name", "cat")
    image = one("#gv-frame img.gv-img")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", image)
    rect = image.rect
    scale = rect["width"] / 384

    def offset(x: float, y: float) -> tuple[int, int]:  # from the picture's centre, as Selenium wants
        return round(x * scale - rect["width"] / 2), round(y * scale - rect["height"] / 2)

    x1, y1, x2, y2 = CAT_BOX
    ActionChains(browser).move_to_element_with_offset(
        image, *offset(x1, y1)
    ).click_and_hold().move_to_element_with_offset(
        image, *offset((x1 + x2) / 2, (y1 + y2) / 2)
    ).move_to_element_with_offset(image, *offset(x2, y2)).release().perform()
    mark = one("#gv-mark textarea, #gv-mark input")
    wait.until(lambda d: mark.get_attribute("value"))
    drawn = [int(v) for v in mark.get_attribute("value").split(",")]
    assert drawn == pytest.approx(list(CAT_BOX), abs=2 / scale + 1)
    steps.shot("box-drawn")
    # A box of zero area first: the page shows the CLI's one line and keeps the session.
    drawn_text = mark.get_attribute("value")
    type_into("#gv-mark", "60,90,60,170")
    click("#gv-add")
    # the toast's text is read once, when it is found: read again later, a fading toast reads '' (seen once)
    toast_text = wait.until(
        lambda d: next(
            (text for t in d.find_elements(By.CSS_SELECTOR, ".toast-body") if "garvideo: error:" in (text := t.text)),
            None,
        )
    )
    assert "the box of 'cat' must be x1,y1,x2,y2 with x1 < x2 and y1 < y2" in toast_text
    steps.shot("refused")
    for close in browser.find_elements(By.CSS_SELECTOR, ".toast-close"):
        close.click()
    type_into("#gv-mark", drawn_text)
    click("#gv-add")
    wait.until(lambda d: "cat" in text_of("#gv-regions"))

    # A random model rambles: three tokens per answer keep the page quick.
    click("#gv-settings .label-wrap")
    type_into("#gv-max-new", "3")

    click("#gv-track")
    wait.until(lambda d: "cat: 72 frames tracked" in text_of("#gv-track-text"))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#gv-strip img")) == 8)
    steps.shot("tracked")
    # A thumbnail takes the slider to its frame (the third: frame 20).
    click("#gv-strip button[aria-label='Thumbnail 3 of 8']")
    wait.until(lambda d: "frame 20 of 72" in text_of("#gv-frame-label"))

    click("#gv-describe")
    wait.until(lambda d: "00:00:01.000 – 00:00:02.000" in text_of("#gv-timeline"))
    one("#gv-overlay video")
    steps.shot("described")
    # Clicking a window goes to its first frame (2.0 s = frame 24).
    cell = one("#gv-timeline [data-testid='cell-2-1']")  # row 3, the window column
    assert cell.get_attribute("textContent").strip() == "00:00:02.000 – 00:00:03.000"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", cell)
    cell.click()
    wait.until(lambda d: "frame 24 of 72" in text_of("#gv-frame-label"))

    type_into("#gv-question", "What is <cat> doing?")
    click("#gv-ask")
    wait.until(lambda d: "garvideo ask" in text_of("#gv-command"))
    steps.shot("asked")

    link = one("#gv-downloads a[href$='/result.json']")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", link)
    link.click()
    saved = browser.downloads / "result.json"
    wait.until(lambda d: saved.exists() and saved.stat().st_size > 0)
    steps.shot("downloaded")
    document = json.loads(saved.read_text())
    validate_result_document(document)
    assert document["command"] == "describe"
    (region,) = document["regions"]
    assert region["name"] == "cat" and region["track"]["frames_tracked"] == 72
    assert len(region["timeline"]) == 6  # 6 s cut into 1 s windows
    assert region["description"] in text_of("#gv-descriptions").replace("\n", " ") or not region["description"].strip()
    assert document["provenance"]["settings"]["describe"]["generation"]["max_new_tokens"] == 3
    if os.environ.get("GARVIDEO_APP_SCREENSHOTS"):
        shutil.copy(saved, folder / "result.json")
    # A region named in words: its kind shows its own fields and button; the detector finds it.
    click("#gv-kind")
    one("#gv-kind").find_element(By.XPATH, ".//label[contains(., 'words')]").click()
    shown = lambda d, css: any(e.is_displayed() for e in d.find_elements(By.CSS_SELECTOR, css))  # noqa: E731
    wait.until(lambda d: shown(d, "#gv-find") and not shown(d, "#gv-add"))
    type_into("#gv-name", "thing")
    type_into("#gv-mark", "a cat")
    type_into("#gv-box-threshold", "0")
    click("#gv-find")
    wait.until(lambda d: "'a cat' found on frame" in text_of("#gv-regions"))
    steps.shot("found-in-words")

    # Leaving the page ends the session: its files are deleted (the API tests closed theirs).
    assert any(p.name == "cat.mp4" for p in launched_app.files_left())
    browser.get("about:blank")
    assert wait_until(lambda: launched_app.files_left() == [], timeout=60), launched_app.files_left()

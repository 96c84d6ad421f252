"""Benchmark of the web app's Live tab: how many of the frames tracked reach a browser, and how late.

``garvideo app`` (the tiny random test models, or ``--model``/``--sam2`` folders) serves in this process; FFmpeg
streams a generated clip (``testsrc2``, ``--size``, at each ``--fps``) as UDP MPEG-TS on 127.0.0.1; a headless
Chromium (Debian's chromium + chromium-driver) opens the Live tab, opens the stream and marks a box; GAR
describes a window every ``--window`` seconds meanwhile. For ``--seconds`` the page records every picture it
shows: its frame's ``seq`` (frames tracked so far) and capture time. Reported per stream rate:

- tracked fps (the session's frames tracked per second) and shown fps (distinct frames the page drew per second),
  and the share of tracked frames shown;
- capture to shown, p50 / p95: from the frame's arrival in the app to the picture's change in the page;
- between pictures, p50 / p95.

The page asks for the next frame only once it has drawn the last one and the app keeps only the newest, so when
tracking outruns the browser frames are skipped, never queued: capture to shown stays flat as the rate grows.

    python bench/live_tab.py --fps 12 60 --seconds 20 [--write]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from live import percentile  # bench/live.py (scripts run from bench/)
from machine import describe as describe_machine
from machine import write_section

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SECTION = "## Live tab (web app)"
# Every picture the page shows: [when (s), seq, capture time (s)], once per frame.
RECORD_JS = """
window.gvShown = [];
const panel = document.querySelector('#gv-live-frame');
new MutationObserver(() => {
  const stage = panel.querySelector('.gv-stage'), shown = window.gvShown;
  if (!stage || !stage.dataset.arrival) return;
  const seq = Number(stage.dataset.seq);
  if (!shown.length || shown[shown.length - 1][1] !== seq)
    shown.push([Date.now() / 1000, seq, Number(stage.dataset.arrival)]);
}).observe(panel, {childList: true, subtree: true, attributes: true, attributeFilter: ['data-tick']});
"""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(args: argparse.Namespace, tmp: Path):
    from garvideo.app import AppConfig, Models, serve
    from garvideo.pipeline import Pipeline

    gar, sam2 = args.model, args.sam2
    if gar is None or sam2 is None:
        from garvideo.testing.selftest import prepare_selftest

        tiny = prepare_selftest(tmp / "tiny")
        gar, sam2 = str(tiny.gar), str(tiny.sam2)
    pipe = Pipeline.from_pretrained(gar, sam2, device=args.device, progress=False)
    config = AppConfig(models=Models(gar, sam2), temp_root=tmp / "app")
    (tmp / "app").mkdir()
    stop, ready = threading.Event(), {}
    server = threading.Thread(
        target=serve,
        args=(config, pipe),
        kwargs={"port": free_port(), "on_ready": lambda url: ready.setdefault("url", url), "stop": stop},
        daemon=True,
    )
    server.start()
    while "url" not in ready and server.is_alive():
        time.sleep(0.2)
    return ready["url"], stop, server, pipe


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def one(driver, css: str, timeout: float = 60.0):
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        if found:
            return found[0]
        time.sleep(0.1)
    raise RuntimeError(f"{css} never showed")


def typed(driver, css: str, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    field = one(driver, f"{css} textarea, {css} input")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(text)
    field.send_keys(Keys.TAB)


def run_one(driver, url: str, clip: Path, args: argparse.Namespace) -> dict:
    """One stream rate: open it in the Live tab, mark a box, record what the page shows."""
    stream = f"udp://127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(clip), "-c", "copy"]
    feeder = subprocess.Popen([*command, "-f", "mpegts", f"{stream}?pkt_size=1316"])
    try:
        driver.get(url)
        one(driver, "button[role=tab]")
        driver.execute_script(
            "[...document.querySelectorAll('button[role=tab]')].find(b => b.innerText.trim() == 'Live').click()"
        )
        one(driver, "#gv-live-settings .label-wrap").click()
        typed(driver, "#gv-live-window", f"{args.window:g}")
        typed(driver, "#gv-live-max-new", str(args.new_tokens))
        typed(driver, "#gv-live-source", stream)
        one(driver, "#gv-live-open").click()
        one(driver, "#gv-live-frame img.gv-img")
        width, height = (int(v) for v in args.size.split("x"))
        typed(driver, "#gv-live-mark", f"{width // 4},{height // 4},{3 * width // 4},{3 * height // 4}")
        one(driver, "#gv-live-add").click()
        driver.execute_script(RECORD_JS)
        time.sleep(args.seconds)
        shown = driver.execute_script("return window.gvShown")
        one(driver, "#gv-live-stop").click()
    finally:
        feeder.terminate()
        feeder.wait()
    if len(shown) < 2:
        raise RuntimeError(f"the page showed {len(shown)} frame(s) in {args.seconds} s")
    span = shown[-1][0] - shown[0][0]
    tracked = (shown[-1][1] - shown[0][1]) / span
    return {
        "fps": None,
        "tracked": tracked,
        "shown": (len(shown) - 1) / span,
        "late": [(when - arrival) * 1000 for when, _, arrival in shown],
        "gaps": [(b[0] - a[0]) * 1000 for a, b in zip(shown, shown[1:])],
    }


def clip_at(fps: int, args: argparse.Namespace, folder: Path) -> Path:
    path = folder / f"testsrc-{fps}.mp4"
    source = f"testsrc2=size={args.size}:rate={fps}"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-t", "10", "-c:v", "libx264",
                    "-g", str(fps), "-pix_fmt", "yuv420p", str(path)], check=True)  # fmt: skip
    return path


def table(rows: list[dict]) -> str:
    lines = [
        "| stream fps | tracked fps | shown fps | shown of tracked | capture to shown ms p50 / p95 | between pictures ms p50 / p95 |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        late = f"{percentile(r['late'], 50):.0f} / {percentile(r['late'], 95):.0f}"
        gaps = f"{percentile(r['gaps'], 50):.0f} / {percentile(r['gaps'], 95):.0f}"
        share = f"{100 * r['shown'] / r['tracked']:.0f}%" if r["tracked"] else "-"
        lines.append(f"| {r['fps']} | {r['tracked']:.1f} | {r['shown']:.1f} | {share} | {late} | {gaps} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fps", type=int, nargs="+", default=[12, 60])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the page is watched per stream")
    parser.add_argument("--size", default="384x256")
    parser.add_argument("--window", type=float, default=5.0, help="a description every this many seconds")
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--model", help="GAR folder (default: the tiny random test model)")
    parser.add_argument("--sam2", help="SAM2 folder (default: the tiny random test model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--write", action="store_true", help=f"update '{SECTION}' in bench/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="garvideo-live-tab-") as folder:
        tmp = Path(folder)
        url, stop, server, pipe = start_app(args, tmp)
        driver = browser()
        rows = []
        try:
            for fps in args.fps:
                row = run_one(driver, url, clip_at(fps, args, tmp), args)
                rows.append({**row, "fps": fps})
        finally:
            driver.quit()
            stop.set()
            server.join(60)
    models = "tiny random test models" if args.model is None else f"{args.model} and {args.sam2}"
    text = (
        f"`python bench/live_tab.py {' '.join(sys.argv[1:]).replace(' --write', '')}` on "
        f"{describe_machine(args.device)}; {models}; headless Chromium on the same machine; a {args.size} "
        f"testsrc2 clip streamed as UDP MPEG-TS at each rate, one box, a window described every {args.window:g} s "
        f"with {args.new_tokens} new tokens; {args.seconds:g} s watched per rate.\n\n{table(rows)}"
    )
    print(text)
    if args.write:
        write_section(SECTION, text, block=f"### {models}, {'GPU' if args.device.startswith('cuda') else 'CPU'}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()

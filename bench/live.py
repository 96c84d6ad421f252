"""Benchmark of live video: how fast, how late and how big a live session is, against offline tracking.

A generated clip (bench/long.py's: ellipses sweeping in bands, one per object) is fed to ``Pipeline.live`` at
its own pace (``ffmpeg -re``, MPEG-TS into a FIFO: a live source that never loses a packet), every object boxed
on the first frame, windows of ``--window`` seconds described by GAR meanwhile. Each run is its own process
(its own peak RSS). Reported per run:

- sustained tracking fps (frames tracked per second, from the first tracked frame to the last) beside the
  stream's fps, and the drop rate (frames the tracker was too slow for: the newest frame wins; those that
  piled up while the source was being opened count too);
- capture to mask: each tracked frame's ``behind`` (from its arrival to its ``frame`` event), p50 and p95;
- capture to description: each window's ``behind`` (from the arrival of its last frame to its description),
  p50 and p95, and windows described, merged and skipped;
- SAM2's session state (bytes, the most held) in the run's second quarter and in its last (flat: it does not grow), the
  frame history's bytes, and the process's peak RSS (and CUDA peak);
- offline ``Pipeline.track`` on the same clip (forward from the same boxes), frames per second.

Models are the tiny random test checkpoints, or with ``--full-size`` GAR-1B's and sam2.1-hiera-tiny's shapes
with random weights (bench/pipeline.py's), so the texts are noise and the timings the architectures'.

    python bench/live.py --seconds 60 --objects 1 4                 # CPU, tiny models
    python bench/live.py --full-size --device cuda --size 1280x720 --fps 30 --objects 1 4 --write
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe as describe_machine  # bench/machine.py (scripts run from bench/)
from machine import write_section

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random weights only: never reach for the hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SECTION = "## Live video"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Meter:
    """A live output that keeps what the report needs (see the module's doc)."""

    def __init__(self, session_ref) -> None:
        self.session_ref = session_ref
        self.mask_s: list[float] = []
        self.reported: list[float] = []  # when each frame event came (wall clock)
        self.description_s: list[float] = []
        self.state: list[int] = []
        self.history: list[int] = []

    def bind(self, emit) -> None:
        pass

    def on_event(self, event) -> None:
        if event.kind == "frame":
            self.mask_s.append(event.behind)
            self.reported.append(event.emitted)
        elif event.kind == "window" and event.visible:
            self.description_s.append(event.behind)

    def on_frame(self, frame, regions) -> None:
        session = self.session_ref()
        if session is not None:
            self.state.append(session.tracker.held()[2])
            self.history.append(session.stats.history_bytes)

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass


def run_one(args: argparse.Namespace, objects: int) -> dict:
    """One live run and the offline track of the same clip (in this process)."""
    import torch
    from long import make_clip  # bench/long.py: the clip and its exact masks
    from pipeline import full_size_pipeline, tiny_pipeline  # bench/pipeline.py: the models

    from garvideo.devices import stage_threads
    from garvideo.tracking import RegionPrompt, load_tracks

    width, height = (int(v) for v in args.size.split("x"))
    video, truth = make_clip(Path(args.clips), args.seconds / 60, args.fps, (width, height), objects)
    regions = []
    for track in load_tracks(truth):
        x1, y1, x2, y2 = track.frames[0].box
        regions.append(RegionPrompt.from_box(track.name, (x1, y1, x2 + 1, y2 + 1), 0))
    with tempfile.TemporaryDirectory(prefix="garvideo-live-bench-") as tmp:
        build = full_size_pipeline if args.full_size else tiny_pipeline
        pipe = build(Path(tmp), args.device, "auto")
        cuda = pipe.tracker.device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        out = live_run(pipe, video, regions, args, Path(tmp))
        began = time.perf_counter()
        result = pipe.track(video, regions, progress=False)
        if cuda:
            torch.cuda.synchronize()
        out["offline_fps"] = len(result.tracks[0].frames) / (time.perf_counter() - began)
        out.update(
            objects=objects,
            device=str(pipe.tracker.device),
            rss_peak=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            cuda_peak=torch.cuda.max_memory_allocated() if cuda else None,
            threads=stage_threads("track", pipe.tracker.device) or torch.get_num_threads(),  # tracking's threads
        )
    return out


def live_run(pipe, video: Path, regions, args: argparse.Namespace, tmp: Path) -> dict:
    import weakref

    fifo = tmp / "live.ts"
    os.mkfifo(fifo)
    feeder = subprocess.Popen([sys.executable, __file__, "--feed", str(video), str(fifo)])
    holder: list = []
    meter = Meter(lambda: holder[0]() if holder else None)
    began = time.perf_counter()
    session = pipe.live(
        str(fifo),
        regions,
        window=args.window,
        max_new_tokens=args.new_tokens,
        describe=not args.track_only,
        report_every=1000.0,  # every frame: its latency is measured
        outputs=[meter],
    )
    holder.append(weakref.ref(session))
    session.wait()
    session.close()
    seconds = time.perf_counter() - began
    feeder.wait()
    stats = session.stats
    quarter = max(1, len(meter.state) // 4)
    return {
        "stream_fps": args.fps,
        "seconds": seconds,
        "decoded": stats.frames_decoded,
        "tracked": stats.frames_tracked,
        "dropped": stats.frames_dropped,
        # sustained: from the first tracked frame to the last (opening the source is not tracking)
        "fps": (len(meter.reported) - 1) / max(1e-9, meter.reported[-1] - meter.reported[0]),
        "mask_p50": percentile(meter.mask_s, 50),
        "mask_p95": percentile(meter.mask_s, 95),
        "description_p50": percentile(meter.description_s, 50),
        "description_p95": percentile(meter.description_s, 95),
        "windows": (stats.windows_described, stats.windows_merged, stats.windows_skipped),
        "state_early": max(meter.state[quarter : 2 * quarter]) if meter.state else 0,
        "state_late": max(meter.state[-quarter:]) if meter.state else 0,
        "history_peak": max(meter.history) if meter.history else 0,
    }


def feed(video: str, target: str) -> None:
    """Remux ``video`` into ``target`` as MPEG-TS at the clip's own pace (what ``ffmpeg -re -c copy`` does; PyAV
    only, as the GPU machines have no ``ffmpeg`` binary)."""
    import av

    with av.open(video) as source, av.open(target, "w", format="mpegts") as out:
        stream = source.streams.video[0]
        copy = out.add_stream_from_template(stream)
        began, first = time.monotonic(), None
        for packet in source.demux(stream):
            if packet.dts is None:
                continue
            at = float(packet.dts * stream.time_base)
            first = at if first is None else first
            time.sleep(max(0.0, began + (at - first) - time.monotonic()))
            packet.stream = copy
            out.mux(packet)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(rows: list[dict]) -> str:
    lines = [
        "| objects | stream fps | tracked fps | dropped | capture to mask ms p50 / p95 | capture to description s p50 / p95 "
        "| windows described / merged / skipped | SAM2 state KB early / late | history MB | peak RSS MB | offline track fps |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        drop = r["dropped"] / max(1, r["decoded"])
        described, merged, skipped = r["windows"]
        lines.append(
            f"| {r['objects']} | {r['stream_fps']} | {r['fps']:.1f} | {r['dropped']} of {r['decoded']} ({drop:.0%}) "
            f"| {_ms(r['mask_p50'])} / {_ms(r['mask_p95'])} | {_s(r['description_p50'])} / {_s(r['description_p95'])} "
            f"| {described} / {merged} / {skipped} | {r['state_early'] / 1024:.0f} / {r['state_late'] / 1024:.0f} "
            f"| {r['history_peak'] / 2**20:.0f} | {r['rss_peak'] / 2**20:.0f} | {r['offline_fps']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full-size", action="store_true", help="GAR-1B and sam2.1-hiera-tiny shapes")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the stream")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--track-only", action="store_true", help="no GAR: tracking alone")
    parser.add_argument("--clips", default="bench/out/clips")
    parser.add_argument("--write", action="store_true", help="update '## Live video' in bench/RESULTS.md")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--feed", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.feed:
        feed(*args.feed)
        return
    if args.child is not None:
        print("RESULT " + json.dumps(run_one(args, args.child)))
        return
    rows = []
    for objects in args.objects:
        command = [sys.executable, __file__, *sys.argv[1:], "--child", str(objects)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"the run with {objects} object(s) failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:]))
    threads = rows[0]["threads"]
    kind = "GAR-1B and sam2.1-hiera-tiny shapes, random weights" if args.full_size else "tiny random test models"
    text = (
        f"`python bench/live.py {' '.join(sys.argv[1:]).replace(' --write', '')}` on "
        f"{describe_machine(rows[0]['device'], threads)} for tracking (every core for GAR); "
        f"{kind}; a {args.seconds:g} s {args.size} clip at {args.fps} fps fed live (MPEG-TS into a FIFO at its own pace), "
        f"every object boxed on the first frame, {args.window:g} s windows described with {args.new_tokens} new tokens"
        f"{' (tracking only)' if args.track_only else ''}.\n\n{table(rows)}"
    )
    print(text)
    if args.write:
        block = f"### {kind}, {'GPU' if rows[0]['device'].startswith('cuda') else 'CPU'}"
        write_section(SECTION, text, block=block)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()

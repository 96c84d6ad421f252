"""Benchmark of video decoding: sampled reads against decoding every frame, on a generated 720p clip.

The clip (default 3 minutes, 1280x720, 30 fps, H.264 with a keyframe every
250 frames and B-frames, like a typical web or camera encode) is generated
once into a cache folder (not the repository). Each frame carries its index in
pixels, so every sampled read is also checked for correctness.

Measured in one run, on one machine:

- opening (the packet scan that gives exact timestamps);
- decoding every frame to RGB (the baseline);
- ``read()`` of uniform and 2 fps selections (forward through a GOP where that
  is cheaper, seeking to keyframes otherwise) and the same selections read the
  naive way (seek + decode for every frame);
- a span of up to 10 s from the middle streamed backward (the tracker's
  backward pass) and forward;
- decord, when installed.

    python bench/decode.py                  # print a table
    python bench/decode.py --write          # also update "## Video decoding" in bench/RESULTS.md
    python bench/decode.py --minutes 1 --cache /tmp/bench
"""

from __future__ import annotations

import argparse
import os
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from machine import cpu_model, write_section  # bench/machine.py (scripts run from bench/)

from garvideo.testing.clips import paint_index, read_index, write_frames
from garvideo.video import open_video
from garvideo.video.decord_backend import decord_available

SECTION = "## Video decoding"


def make_clip(path: Path, minutes: float, fps: int, width: int, height: int, gop: int) -> None:
    """Textured scenery panning sideways (so frames compress like real footage), index code on top."""
    count = int(minutes * 60 * fps)
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 255, (height // 16 + 1, (width * 3) // 16 + 1, 3), dtype=np.uint8)
    scenery = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)[:height]
    scenery = (scenery.astype(np.int16) + rng.integers(-12, 12, scenery.shape)).clip(0, 255).astype(np.uint8)

    def frames():
        for index in range(count):
            offset = (index * 3) % (scenery.shape[1] - width)
            yield paint_index(scenery[:, offset : offset + width].copy(), index)

    times = [Fraction(i, fps) for i in range(count)]
    partial = path.with_suffix(".partial.mp4")
    write_frames(partial, frames(), times, gop=gop, bframes=3, crf=23)
    partial.replace(path)


def naive_read(path: Path, indices: list[int], pts: np.ndarray) -> float:
    """Seek to each frame and decode up to it: what a per-frame reader does."""
    start = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index in indices:
            target = int(pts[index])
            container.seek(target, stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.pts is not None and frame.pts >= target:
                    frame.to_ndarray(format="rgb24")
                    break
    return time.perf_counter() - start


def timed_read(path: Path, selection, backend: str = "pyav") -> tuple[float, int | None, int | None]:
    with open_video(path, backend=backend) as video:
        start = time.perf_counter()
        frames = video.read(selection)
        elapsed = time.perf_counter() - start
        stats = video.decode_stats
    wrong = [f.index for f in frames if read_index(f.image) != f.index]
    if wrong or len(frames) != len(selection.indices):
        raise SystemExit(f"{backend} returned wrong frames: {wrong[:5]}")
    return elapsed, stats.frames_decoded if stats else None, stats.seeks if stats else None


def run(args: argparse.Namespace) -> list[str]:
    width, height = (int(v) for v in args.size.split("x"))
    cache = Path(args.cache).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"decode_{width}x{height}_{args.fps}fps_{args.minutes:g}min_gop{args.gop}.mp4"
    if not path.exists():
        print(f"generating {path} ...", flush=True)
        start = time.perf_counter()
        make_clip(path, args.minutes, args.fps, width, height, args.gop)
        print(f"  {time.perf_counter() - start:.0f} s", flush=True)

    start = time.perf_counter()
    with open_video(path, backend="pyav") as video:
        open_s = time.perf_counter() - start
        info, pts = video.info, video.timeline.pts
        selections = {"uniform 32 frames": video.sample_uniform(32), "2 fps": video.sample_rate(2)}
        start = time.perf_counter()
        decoded = sum(1 for _ in video.iter_frames())
        full_s = time.perf_counter() - start
    assert decoded == info.num_frames
    full_fps = decoded / full_s

    rows = [("decode every frame (baseline)", decoded, full_s, None, None, None)]
    for label, selection in selections.items():
        elapsed, frames_decoded, seeks = timed_read(path, selection)
        naive_s = naive_read(path, list(selection.indices), pts)
        rows.append((f"read() {label}", len(selection), elapsed, frames_decoded, seeks, naive_s))
        if decord_available():
            decord_s, _, _ = timed_read(path, selection, backend="decord")
            rows.append((f"read() {label}, decord", len(selection), decord_s, None, None, None))

    span_start = info.num_frames // 2
    span = min(int(10 * info.fps), info.num_frames - span_start)
    with open_video(path, backend="pyav") as stream:
        start = time.perf_counter()
        forward = sum(1 for _ in stream.iter_frames(span_start, span_start + span))
        forward_s = time.perf_counter() - start
        before = stream.decode_stats
        start = time.perf_counter()
        backward = sum(1 for _ in stream.iter_frames(span_start + span - 1, span_start - 1, -1))
        backward_s = time.perf_counter() - start
        after = stream.decode_stats
        chunk = stream.max_buffered_frames
        span_s = stream.index_to_time(span_start + span - 1) - stream.index_to_time(span_start) + 1 / info.fps
    rows.append((f"{span_s:.3g} s span forward", forward, forward_s, None, None, None))
    rows.append(
        (
            f"{span_s:.3g} s span backward ({chunk}-frame chunks)",
            backward,
            backward_s,
            after.frames_decoded - before.frames_decoded,
            after.seeks - before.seeks,
            None,
        )
    )

    machine = f"{cpu_model()}, {os.cpu_count()} cores, no GPU (decoding runs on the CPU)"
    lines = [
        f"`python bench/decode.py` on {machine}; PyAV {av.__version__} (FFmpeg "
        f"{getattr(av, 'ffmpeg_version_info', '?')}).",
        f"Clip: {info.width}x{info.height}, {info.fps:g} fps, {info.duration:.0f} s ({info.num_frames} frames), "
        f"H.264 with {info.keyframes} keyframes (GOP {args.gop}) and B-frames. Opening it (packet scan for exact "
        f"timestamps, one frame decoded) took {open_s * 1000:.0f} ms.",
        "",
        "| what | frames out | time (s) | frames/s out | vs decoding all | frames decoded | seeks "
        "| naive seek-per-frame (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, count, elapsed, frames_decoded, seeks, naive_s in rows:
        speedup = full_s / elapsed if "read()" in label else None
        lines.append(
            f"| {label} | {count} | {elapsed:.2f} | {count / elapsed:.0f} | "
            f"{f'{speedup:.1f}x faster' if speedup else ''} | {frames_decoded if frames_decoded is not None else ''} | "
            f"{seeks if seeks is not None else ''} | "
            f"{f'{naive_s:.2f} ({naive_s / elapsed:.1f}x slower)' if naive_s else ''} |"
        )
    lines += [
        "",
        f'Decoding every frame runs at {full_fps:.0f} frames/s. "vs decoding all" divides the baseline\'s time by '
        "the read's: what sampling saves over decoding the whole video to pick frames. The naive column seeks "
        "to the keyframe before every wanted frame and decodes up to it, as a reader that ignores GOP structure "
        "does; `read()` instead decodes forward when no keyframe lies between two wanted frames.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--gop", type=int, default=250)
    parser.add_argument("--cache", default=os.environ.get("GARVIDEO_BENCH_CACHE", "~/.cache/garvideo/bench"))
    parser.add_argument("--write", action="store_true", help=f"update {SECTION!r} in bench/RESULTS.md")
    args = parser.parse_args()
    text = "\n".join(run(args))
    print(f"{SECTION}\n\n{text}")
    if args.write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()

"""Masks, overlays and tracks files: each new path side by side with the one it replaced, in one run.

The replaced code is the project's own, read from git at ``--baseline`` (the
commit before the change, by default) and loaded beside the current modules;
nothing is copied. Measured on a generated 1280x720 clip with a moving
textured object (``garvideo.testing.clips.moving_object_clip``):

- RLE: encoding and decoding each frame's mask (the baseline's Python codec
  vs pycocotools), and whether the strings are byte-identical;
- blend: the overlay's mask tint of one region on each frame (numpy float
  math vs OpenCV ``addWeighted`` + masked copy), and the largest pixel
  difference between the two;
- overlay: ``render_overlay`` of the whole clip, the baseline module (with
  the baseline's RLE decoding) vs the current one;
- tracks JSON: saving one track of ``--json-frames`` frames (an hour at 30 fps
  by default; the clip's 720p masks repeated) with the baseline (the document
  built, then dumped as one string) vs the streamed writer: time, and the
  Python heap's peak while saving (``tracemalloc``, a separate pass).

    python bench/outputs.py            # print the table
    python bench/outputs.py --write    # also update "## Masks, overlays and tracks files" in bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import types
from pathlib import Path

import cv2
import numpy as np
from machine import cpu_model, write_section

SECTION = "## Masks, overlays and tracks files"
ROOT = Path(__file__).resolve().parents[1]
#: The commit before masks, overlay blending and tracks JSON were changed.
BASELINE = "10a1b6d"


def baseline_module(rev: str, path: str, name: str, package: str) -> types.ModuleType:
    """The module at ``path`` as it was at ``rev``, importable beside the current one (relative imports resolve
    to the current package)."""
    source = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType(name)
    module.__package__ = package
    module.__file__ = f"{rev}:{path}"
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def per_item_ms(function, items, repeats: int) -> float:
    """Median over ``repeats`` passes of the mean milliseconds per item."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        for item in items:
            function(item)
        times.append((time.perf_counter() - began) / len(items) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default=BASELINE, help="git revision of the replaced code")
    parser.add_argument("--frames", type=int, default=60, help="frames of the 1280x720 clip")
    parser.add_argument("--json-frames", type=int, default=108_000, help="frames of the saved track")
    parser.add_argument("--open-frames", type=int, default=18_000, help="frames of the clip opened (10 min at 30 fps)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--rle-only", action="store_true", help="only the RLE rows (print only, never --write)")
    args = parser.parse_args()
    if args.rle_only and args.write:
        parser.error("--rle-only measures part of the section: print it, do not --write it")

    import garvideo.tracking.track as track_module
    from garvideo import masks
    from garvideo.files import atomic_write_json
    from garvideo.outputs import drawing, overlay
    from garvideo.testing.clips import moving_object_clip
    from garvideo.tracking import Track, TrackFrame, load_tracks, save_tracks, tracks_to_json

    old_masks = baseline_module(args.baseline, "garvideo/masks.py", "garvideo._baseline_masks", "garvideo")
    old_overlay = baseline_module(
        args.baseline, "garvideo/outputs/overlay.py", "garvideo.outputs._baseline_overlay", "garvideo.outputs"
    )
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="garvideo-outputs-") as tmp:
        folder = Path(tmp)
        clip = moving_object_clip(folder / "clip.mp4", num_frames=args.frames, fps=30, size=(1280, 720))
        mask_list = list(clip.objects[0].masks)

        # RLE, on the clip's smooth object and on blobby masks (a noisy tracker's: many runs per column).
        rng = np.random.default_rng(0)
        blobby = []
        for _ in range(min(args.frames, 20)):
            noise = cv2.GaussianBlur(rng.random((720, 1280)).astype(np.float32), (0, 0), 6)
            blobby.append(noise > np.quantile(noise, 0.7))
        new_rles = [masks.encode_rle(m) for m in mask_list]
        for kind, kind_masks in (("smooth object", mask_list), ("blobby", blobby)):
            old_rles = [old_masks.encode_rle(m) for m in kind_masks]
            identical = all(a == masks.encode_rle(m) for a, m in zip(old_rles, kind_masks))
            decoded_same = all(np.array_equal(masks.decode_rle(r), m) for r, m in zip(old_rles, kind_masks))
            chars = np.mean([len(r["counts"]) for r in old_rles])
            old_encode = per_item_ms(old_masks.encode_rle, kind_masks, args.repeats)
            new_encode = per_item_ms(masks.encode_rle, kind_masks, args.repeats)
            old_decode = per_item_ms(old_masks.decode_rle, old_rles, args.repeats)
            new_decode = per_item_ms(masks.decode_rle, old_rles, args.repeats)
            rows.append(
                (
                    f"RLE encode, 720p {kind} ({chars:.0f} characters), ms/mask",
                    f"{old_encode:.2f}",
                    f"{new_encode:.2f}",
                    f"{old_encode / new_encode:.1f}x as fast; strings byte-identical: {identical}",
                )
            )
            rows.append(
                (
                    f"RLE decode, 720p {kind}, ms/mask",
                    f"{old_decode:.2f}",
                    f"{new_decode:.2f}",
                    f"{old_decode / new_decode:.1f}x as fast; masks equal: {decoded_same}",
                )
            )

        if not args.rle_only:  # the overlay, tracks JSON and opening rows
            # Blend: the tint of one region on each frame (the same entry and canvas for both).
            track = Track.from_masks("object", dict(enumerate(mask_list)), times=clip.times)
            from garvideo.video import open_video

            with open_video(clip.path) as reader:
                images = [f.image for f in reader.iter_frames()]
            style = drawing.FrameStyle.for_frame(1280, 720, 0.4)
            entries = [track.frame(i) for i in range(len(images)) if track.frame(i).visible]

            decoded = {entry.index: entry.mask() for entry in entries}  # decoded beforehand: only the blend is timed

            def tint_with(module):
                painter = module.RegionPainter(track, drawing.PALETTE[0])
                painter.mask = lambda entry: decoded[entry.index]  # this painter only

                def tint(entry):
                    canvas = images[entry.index].copy()
                    module._tint(canvas, painter, entry, style)
                    return canvas

                return tint

            old_tint, new_tint = tint_with(old_overlay), tint_with(drawing)  # the drawing left overlay.py
            difference = max(int(np.abs(old_tint(e).astype(int) - new_tint(e).astype(int)).max()) for e in entries)
            copy_only = per_item_ms(lambda e: images[e.index].copy(), entries, args.repeats)
            timed = {
                "old": per_item_ms(old_tint, entries, args.repeats) - copy_only,
                "new": per_item_ms(new_tint, entries, args.repeats) - copy_only,
            }
            rows.append(
                (
                    "mask blend (one region, 720p), ms/frame",
                    f"{timed['old']:.2f}",
                    f"{timed['new']:.2f}",
                    f"{timed['old'] / timed['new']:.1f}x as fast; largest pixel difference {difference}",
                )
            )

            # The whole overlay, old module with the old RLE decoding vs the current one.
            seconds = {}
            for label, module, decode in (
                ("old", old_overlay, old_masks.decode_rle),
                ("new", overlay, masks.decode_rle),
            ):
                runs = []
                for _ in range(args.repeats):
                    track_module.decode_rle = decode  # TrackFrame.mask() decodes with this
                    try:
                        began = time.perf_counter()
                        module.render_overlay(clip.path, folder / f"{label}.mp4", [track], progress=False)
                        runs.append(time.perf_counter() - began)
                    finally:
                        track_module.decode_rle = masks.decode_rle
                seconds[label] = statistics.median(runs)
            rows.append(
                (
                    f"overlay of {args.frames} frames 1280x720 (decode, draw, encode), s",
                    f"{seconds['old']:.2f}",
                    f"{seconds['new']:.2f}",
                    f"{seconds['old'] / seconds['new']:.2f}x as fast",
                )
            )

            # Tracks JSON of a long track.
            frames = tuple(
                TrackFrame(i, i / 30, new_rles[i % len(new_rles)], entry_box(track, i % len(new_rles)), 0.9)
                for i in range(args.json_frames)
            )
            long_track = [Track("object", 1, frames)]

            def old_save(path):
                atomic_write_json(path, tracks_to_json(long_track, {"note": "baseline"}))

            def new_save(path):
                save_tracks(path, long_track, {"note": "streamed"})

            result = {}
            for label, save in (("old", old_save), ("new", new_save)):
                path = folder / f"{label}.json"
                runs = []
                for _ in range(args.repeats):
                    began = time.perf_counter()
                    save(path)
                    runs.append(time.perf_counter() - began)
                tracemalloc.start()
                save(path)
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                result[label] = (statistics.median(runs), peak, path.stat().st_size)
            same = load_tracks(folder / "old.json") == load_tracks(folder / "new.json") == long_track
            rows.append(
                (
                    f"tracks JSON of {args.json_frames} frames (720p masks), s",
                    f"{result['old'][0]:.2f}",
                    f"{result['new'][0]:.2f}",
                    f"{result['old'][0] / result['new'][0]:.1f}x as fast; files "
                    f"{result['old'][2] / 1e6:.0f} MB vs {result['new'][2] / 1e6:.0f} MB; read back equal: {same}",
                )
            )
            rows.append(
                (
                    "tracks JSON: Python heap peak while saving, MiB",
                    f"{result['old'][1] / 2**20:.0f}",
                    f"{result['new'][1] / 2**20:.1f}",
                    "",
                )
            )

            # Opening a video reads every packet's timestamp: what describe --overlay now pays once instead of twice.
            from garvideo.testing.clips import constant_rate_clip

            long_clip = constant_rate_clip(folder / "long.mp4", num_frames=args.open_frames, fps=30, size=(64, 48))
            opening = []
            for _ in range(args.repeats):
                began = time.perf_counter()
                open_video(long_clip.path).close()
                opening.append(time.perf_counter() - began)
            rows.append(
                (
                    f"describe --overlay: opening the video ({args.open_frames} frames), s",
                    f"{2 * statistics.median(opening):.2f}",
                    f"{statistics.median(opening):.2f}",
                    "opened twice before (describe, then overlay), once now",
                )
            )

    from importlib.metadata import version

    lines = ["| what | before | after | |", "|---|---:|---:|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    report = (
        f"`python bench/outputs.py` (before: the project's code at {args.baseline}, read from git; after: "
        f"this commit; medians of {args.repeats} passes, in one process). Machine: {cpu_model()}, "
        f"{os.cpu_count()} cores, no GPU, shared with other jobs (1-minute load average {os.getloadavg()[0]:.1f} "
        f"at the end); OpenCV {cv2.__version__}, pycocotools {version('pycocotools')}. "
        f"Clip: {args.frames} frames of 1280x720 with one moving textured object "
        f"(about {np.mean([m.mean() for m in mask_list]) * 100:.0f}% of the picture).\n\n" + "\n".join(lines)
    )
    print(report)
    if args.write:
        write_section(SECTION, report)


def entry_box(track, index):
    return track.frame(index).box


if __name__ == "__main__":
    main()

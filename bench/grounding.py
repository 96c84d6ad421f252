"""Text-region search at its real cost: garvideo's detector beside transformers' zero-shot-object-detection pipeline.

Models: ``tiny`` (the tests' tiny random Grounding DINO, frames resized to 96-128 px) and ``gdino-tiny``
(``IDEA-Research/grounding-dino-tiny``'s architecture with random weights, built in memory: Swin-T, BERT-base,
6 + 6 deformable layers, 900 queries, frames resized to 800/1333 px as the checkpoint's processor does).
Frames: ``--frames`` frames of a generated ``--size`` clip (a textured object crossing a textured background).

For each model, on the same frames, phrase and thresholds:

1. transformers' own ``pipeline("zero-shot-object-detection")`` (the same weights, tokenizer and image
   processor; the caption garvideo reads, lower case with its closing '.') beside garvideo's
   ``GroundingDetector.detect``, interleaved frame by frame. The pipeline has one threshold (the box score);
   garvideo's text threshold only drops boxes, so the comparison runs it at 0: the run stops unless both give
   the same boxes (the pipeline's are whole pixels, truncated) and scores;
2. garvideo's detect on one thread and on every core (interleaved);
3. two phrases on one frame: one ``detect`` each (before) and ``detect_many`` (the frame preprocessed once);
4. where one detect's time goes (preprocessing, text encoder, image backbone, deformable encoder, decoder,
   post-processing) and its floating-point operations (torch's ``FlopCounterMode``; grid sampling not counted);
5. ``Pipeline.find`` searching the clip for a phrase it never finds (every second searched): decoding vs
   detecting per searched frame.

    python bench/grounding.py                               # both models, CPU
    python bench/grounding.py --device cuda --frames 5 --write
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from machine import describe as describe_machine  # bench/machine.py (scripts run from bench/)
from machine import write_section

from garvideo.devices import cpu_cores, torch_threads
from garvideo.grounding import GroundingDetector
from garvideo.testing.clips import moving_object_clip
from garvideo.testing.grounding_dino import build_tiny_grounding_dino_checkpoint, random_grounding_dino

SECTION = "## Text regions"
PHRASE = "a red car"
PHRASES = ("a red car", "a striped ball")


def _detector(name: str, device: str, folder: Path) -> GroundingDetector:
    if name == "tiny":
        return GroundingDetector.from_pretrained(build_tiny_grounding_dino_checkpoint(folder / "tiny"), device=device)
    return random_grounding_dino(device)


def _now() -> float:
    """The clock, once the GPU's queued work is done (so a part's time is its kernels', not their launch)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


def _timed(call):
    began = _now()
    out = call()
    return out, _now() - began


def _same_boxes(ours, theirs) -> int:
    """The number of boxes both found; raises unless the pipeline's are garvideo's (truncated to whole pixels)."""
    mine = sorted((round(d.score, 5), tuple(int(v) for v in torch.tensor(d.box).int().tolist())) for d in ours)
    other = sorted(
        (round(r["score"], 5), (r["box"]["xmin"], r["box"]["ymin"], r["box"]["xmax"], r["box"]["ymax"])) for r in theirs
    )
    if mine != other:
        raise SystemExit(
            f"garvideo and transformers' pipeline disagree: {len(mine)} vs {len(other)} boxes, e.g. {mine[:2]} vs {other[:2]}"
        )
    return len(mine)


def _versus_pipeline(detector: GroundingDetector, frames, threshold: float) -> dict:
    from PIL import Image
    from transformers import pipeline

    hf = pipeline(
        "zero-shot-object-detection",
        model=detector.model,
        tokenizer=detector.processor.tokenizer,
        image_processor=detector.processor.image_processor,
        device=detector.device,
    )
    caption, _ = detector.caption(PHRASE)
    hf(Image.fromarray(frames[0]), candidate_labels=[caption], threshold=threshold)  # warm-up
    detector.detect(frames[0], PHRASE, threshold, 0.0)
    theirs_s, ours_s, boxes = [], [], 0
    for frame in frames:  # interleaved: a busy machine slows both alike
        theirs, seconds = _timed(
            lambda f=frame: hf(Image.fromarray(f), candidate_labels=[caption], threshold=threshold)
        )
        theirs_s.append(seconds)
        ours, seconds = _timed(lambda f=frame: detector.detect(f, PHRASE, threshold, 0.0))
        ours_s.append(seconds)
        boxes += _same_boxes(ours.detections, theirs)
    return {"pipeline": statistics.median(theirs_s), "garvideo": statistics.median(ours_s), "boxes": boxes}


def _threads(detector: GroundingDetector, frames) -> dict[int, float]:
    counts = sorted({1, cpu_cores()})
    times = {n: [] for n in counts}
    for frame in frames:
        for n in counts:
            with torch_threads(n):
                times[n].append(_timed(lambda f=frame: detector.detect(f, PHRASE))[1])
    return {n: statistics.median(t) for n, t in times.items()}


def _phrases(detector: GroundingDetector, frame) -> tuple[float, float, bool]:
    alone, before = _timed(lambda: [detector.detect(frame, p) for p in PHRASES])
    together, after = _timed(lambda: detector.detect_many(frame, list(PHRASES)))
    return before, after, alone == together


def _breakdown(detector: GroundingDetector, frame) -> dict[str, float]:
    """Seconds per part of one detect, and GFLOPs of the network."""
    from torch.utils.flop_counter import FlopCounterMode

    inner = detector.model.model
    parts = {"text encoder": inner.text_backbone, "image backbone": inner.backbone, "encoder": inner.encoder}
    parts["decoder"] = inner.decoder
    spent = dict.fromkeys(parts, 0.0)
    handles = []
    for name, module in parts.items():
        handles.append(module.register_forward_pre_hook(lambda *_, n=name: spent.__setitem__(n, spent[n] - _now())))
        handles.append(module.register_forward_hook(lambda *_, n=name: spent.__setitem__(n, spent[n] + _now())))
    caption, ids = detector.caption(PHRASE)
    try:
        inputs, spent["preprocessing"] = _timed(
            lambda: detector._on_device(detector.processor(images=frame, text=caption, return_tensors="pt"))
        )
        with torch.inference_mode():
            outputs, spent["network"] = _timed(lambda: detector.model(**inputs))
    finally:
        for handle in handles:
            handle.remove()
    _, spent["post-processing"] = _timed(
        lambda: detector.post_process(outputs.logits[0], outputs.pred_boxes[0], ids, frame.shape[:2], PHRASE)
    )
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        detector.model(**inputs)
    spent["gflops"] = counter.get_total_flops() / 1e9
    spent["input"] = "x".join(str(v) for v in inputs["pixel_values"].shape[-2:][::-1])
    return spent


def _search(detector: GroundingDetector, clip: Path) -> tuple[int, float, float]:
    from garvideo.pipeline import Pipeline, RegionPrompt, TextSearch

    pipe = Pipeline(None, None, progress=False, detector=detector)
    region = RegionPrompt.from_text("car", PHRASE)
    try:
        pipe.find(clip, [region], search=TextSearch(box_threshold=1.0))  # found nowhere: every second is searched
    except Exception as exc:  # noqa: BLE001 - the one-line "not found" error names the frames searched
        message = str(exc)
    else:
        raise SystemExit("a box scored above 1.0")
    searched = int(message.split("searched ")[1].split()[0]) if "frames (" in message else 1
    # find() records its stage times only in a result; time the two parts the way the pipeline does
    from garvideo.video import open_video

    with open_video(clip) as reader:
        indices = [reader.time_to_index(float(s)) for s in range(int(reader.duration))][:searched]
        decode = sum(_timed(lambda i=i: reader.read([i]))[1] for i in indices)
        frames = [reader.read([i])[0].image for i in indices]
    detect = sum(_timed(lambda f=f: detector.detect(f, PHRASE))[1] for f in frames)
    return len(indices), decode / len(indices), detect / len(indices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=["tiny", "gdino-tiny"], choices=["tiny", "gdino-tiny"])
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the generated clip")
    parser.add_argument("--seconds", type=int, default=3, help="length of the clip Pipeline.find searches")
    parser.add_argument("--threshold", type=float, default=0.35, help="box threshold of the comparison")
    parser.add_argument("--shared", action="store_true", help="--write: say that other jobs shared the machine")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        truth = moving_object_clip(Path(tmp) / "clip.mp4", num_frames=10 * args.seconds, fps=10, size=(width, height))
        from garvideo.video import open_video

        with open_video(truth.path) as reader:
            step = max(1, reader.num_frames // args.frames)
            frames = [f.image for f in reader.read(range(0, reader.num_frames, step))][: args.frames]
        rows = [_measure(name, args, Path(tmp), frames, truth.path) for name in args.models]
    report = _report(rows, args, width, height)
    print(report)
    if args.write:
        write_section(SECTION, report, block=f"### {torch.device(args.device).type}, {args.size}")


def _measure(name: str, args, folder: Path, frames, clip: Path) -> dict:
    """Every measurement of one model, each printed as it comes (a long CPU run keeps what it got)."""
    detector = _detector(name, args.device, folder)
    row = {"model": name}
    steps = [
        ("transformers' pipeline beside garvideo", None, lambda: _versus_pipeline(detector, frames, args.threshold)),
        ("threads", "threads", lambda: _threads(detector, frames) if detector.device.type == "cpu" else {}),
        ("two phrases", "phrases", lambda: _phrases(detector, frames[0])),
        ("where a detect's time goes", "parts", lambda: _breakdown(detector, frames[0])),
        ("search", "search", lambda: _search(detector, clip)),
    ]
    for what, key, measure in steps:
        value = measure()
        row.update(value) if key is None else row.__setitem__(key, value)
        print(f"{name}, {what}: {value}", flush=True)
    return row


def _report(rows: list[dict], args, width: int, height: int) -> str:
    device = torch.device(args.device)
    lines = [
        f"`python bench/grounding.py --device {device.type} --frames {args.frames} --size {args.size}` on"
        f" {describe_machine(device)}; random weights; phrase {PHRASE!r}, box threshold {args.threshold} (text"
        f" threshold 0 in the comparison: transformers' pipeline has none); medians over {args.frames} frames of a"
        f" generated {width}x{height} clip, garvideo and the pipeline interleaved."
        + (" The machine was shared with other jobs: compare rows, not absolute times." if args.shared else ""),
        "",
        "| model | network input | GFLOPs | transformers pipeline s/frame | garvideo detect s/frame | boxes compared |"
        " same boxes | 1 thread s | all cores s | 2 phrases: 2 detects s | detect_many s | same |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        threads = row["threads"]
        one, every = (f"{threads[min(threads)]:.2f}", f"{threads[max(threads)]:.2f}") if threads else ("-", "-")
        before, after, same = row["phrases"]
        lines.append(
            f"| {row['model']} | {row['parts']['input']} | {row['parts']['gflops']:.0f} | {row['pipeline']:.3f} |"
            f" {row['garvideo']:.3f} | {row['boxes']} | yes | {one} | {every} | {before:.2f} | {after:.2f} |"
            f" {'yes' if same else 'NO'} |"
        )
    lines += [
        "",
        "| model | " + " | ".join(f"{k} s" for k in _PARTS) + " | search: frames | decode s/frame | detect s/frame |",
    ]
    lines.append("| --- | " + " | ".join("---:" for _ in _PARTS) + " | ---: | ---: | ---: |")
    for row in rows:
        parts = row["parts"]
        searched, decode, detect = row["search"]
        lines.append(
            f"| {row['model']} | "
            + " | ".join(f"{parts[k]:.3f}" for k in _PARTS)
            + f" | {searched} | {decode:.3f} | {detect:.3f} |"
        )
    return "\n".join(lines)


_PARTS = ("preprocessing", "text encoder", "image backbone", "encoder", "decoder", "network", "post-processing")

if __name__ == "__main__":
    main()

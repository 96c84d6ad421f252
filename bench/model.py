"""Time GAR's stages (encode = vision tower + projector + replay, generate = prefill + decode).

Times one image description and one video question (F frames, one tile each, R regions) with
a fixed number of new tokens, on a model with random weights: the timings are real for the
shapes, the text is not.

- default: a tiny checkpoint written by ``garvideo.testing.gar.build_tiny_gar_checkpoint`` and
  loaded with ``GAR.from_pretrained`` (64-wide, 2-layer language model and vision tower,
  448-pixel tiles, so prompts have the real 256 tokens per frame); ``--size key=value`` changes
  its sizes (keys: those of ``garvideo.testing.gar.DEFAULT_SIZES``).
- ``--full-size``: GAR-1B's architecture (the shapes ``bench/pipeline.py`` uses: Llama-3.2-1B
  language model with its 128,256-token vocabulary, PE-Core-L/14 vision tower at 448 px),
  built in memory on the device by ``garvideo.testing.gar.random_gar``: nothing is written
  (a checkpoint would be 6 GB of float32). Meant for a GPU.

    python bench/model.py                                        # tiny shapes, CPU
    python bench/model.py --full-size --device cuda --frames 16   # GAR-1B shapes on a GPU (bfloat16)

``--decode`` first measures what compiling costs before it saves anything: the first call and the per-token
time of eager decoding, of a compiled step with an empty compile cache (cold) and again in a new process that
finds the first one's compiled work in the cache (warm; ``garvideo.compile_cache``), and on CUDA of the eager
step captured as CUDA graphs; each in its own process, with torch's own inductor cache folder empty, so
"cold" is cold. From these it derives the decode steps that pay each warm-up back (what
``garvideo.defaults.COMPILE_PAYBACK_STEPS`` holds) and, on CUDA, the compiled kind to choose
(``garvideo.defaults.COMPILE_KIND``). It then compares, side by side in one run (interleaved repeats,
medians), the ways of decoding one long video prompt (``--frames`` frames, ``--new-tokens`` forced new tokens):
transformers' ``generate`` (the path garvideo used before), garvideo's static-cache loop eager, and
the same loop compiled (``torch.compile``; CUDA graphs on CUDA); the first compiled call's time
(compilation) is reported apart. Greedy tokens must be identical in every variant (float32; the
script says when they are not). It then compares ways of batching a describe's prompts (one
overall prompt of ``--frames`` frames plus four windows of a quarter of them each, which share
frames with it): all in one left-padded batch as before, versus grouped by length, with and
without one vision pass for shared frames. ``--write`` puts the tables in bench/RESULTS.md.

    python bench/model.py --decode --frames 16 --new-tokens 64 --write       # tiny shapes, CPU
    python bench/model.py --decode --full-size --device cuda --write         # GAR-1B shapes on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import describe as describe_machine  # bench/machine.py (scripts run from bench/)
from machine import write_section

from garvideo import defaults
from garvideo.model import GAR, GenerationSettings
from garvideo.testing.gar import DEFAULT_SIZES, build_tiny_gar_checkpoint, random_gar


def _scene(width: int, height: int, frames: int, regions: int):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    images, masks = [], [[] for _ in range(regions)]
    for f in range(frames):
        images.append(np.roll(base, 4 * f, axis=1))
        for r in range(regions):
            mask = np.zeros((height, width), bool)
            top, left = 10 + 30 * r, 10 + 4 * f + 20 * r
            mask[top : top + height // 4, left : left + width // 4] = True
            masks[r].append(mask)
    return images, masks


def _time(call, repeats: int):
    results = [call() for _ in range(repeats + 1)][1:]  # the first run warms up
    encode = statistics.median(r.timings.encode_s for r in results)
    generate = statistics.median(r.timings.generate_s for r in results)
    return encode, generate, results[-1]


def _sizes(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, int]:
    sizes = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in DEFAULT_SIZES:
            parser.error(f"--size {item!r}: expected KEY=VALUE with KEY one of {', '.join(DEFAULT_SIZES)}")
        try:
            sizes[key] = int(value)
        except ValueError:
            parser.error(f"--size {item!r}: the value must be a whole number")
        if sizes[key] < 1:
            parser.error(f"--size {item!r}: the value must be positive")
    return sizes


SECTION = "## model"
VARIANTS = ("generate", "eager", "compiled", "cuda-graphs")
#: The first-call processes: label, ``compile=`` setting, whether it shares the run's compile cache.
FIRST_CALLS = (
    ("eager", "off", False),
    ("compiled (inductor), cold cache", "inductor", True),
    ("compiled (inductor), warm cache", "inductor", True),
    ("CUDA graphs (no inductor)", "cuda-graphs", False),
)
#: Decode steps at which the first-call table weighs each kind's warm-up against its saving.
WEIGHED_STEPS = (500, 2000, 10000)


def _first_call_child(gar, images, masks, args) -> None:
    """In a process of its own: the first generate call, its warm-up included."""
    prompt = gar.prepare_video(images[: args.frames], {"r0": masks[0][: args.frames]}, "What does <r0> do?").inputs
    full = GenerationSettings(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
    started = time.perf_counter()
    result = gar.generate(prompt, full)[0]
    first = time.perf_counter() - started
    record = gar.info.compile_record
    report = {
        "first_s": first,
        "warmup_s": record.warmup_s,
        "cache": record.cache,
        "kind": record.kind,
        "tokens": list(result.token_ids),
        "prompt_tokens": prompt.num_tokens,
        "process_s": time.time() - float(os.environ["BENCH_LAUNCHED"]),
    }
    print("FIRST-CALL " + json.dumps(report))


def _run_first_call(args, checkpoint: Path | None, setting: str, cache: Path) -> dict:
    command = [sys.executable, __file__, "--first-call", setting, "--device", args.device, "--dtype", args.dtype]
    command += ["--frames", str(args.frames), "--new-tokens", str(args.new_tokens)]
    command += ["--full-size"] if args.full_size else ["--checkpoint", str(checkpoint)]
    with tempfile.TemporaryDirectory() as torch_cache:  # torch's own folder empty: only garvideo's cache is kept
        env = {**os.environ, "GARVIDEO_CACHE": str(cache), "TORCHINDUCTOR_CACHE_DIR": torch_cache}
        env["BENCH_LAUNCHED"] = repr(time.time())
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=Path(__file__).parent)
    lines = [line for line in done.stdout.splitlines() if line.startswith("FIRST-CALL ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"the first-call process ({setting}) failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(lines[-1].removeprefix("FIRST-CALL "))


def _first_calls(args, checkpoint: Path | None, device_type: str, cache: Path) -> list[tuple[str, str, dict]]:
    """Eager, compiled cold and warm (and CUDA graphs on CUDA), each in its own process, compiling into ``cache``
    (empty at first): (label, compile setting, what the process reported)."""
    rows = []
    for label, setting, shared in FIRST_CALLS:
        if setting == "cuda-graphs" and device_type != "cuda":
            continue
        own = cache if shared else cache.parent / f"{cache.name}-{label.split()[0]}"
        rows.append((label, setting, _run_first_call(args, checkpoint, setting, own)))
        print(f"first call, {label}: {rows[-1][2]['first_s']:.2f} s", flush=True)
    return rows


#: The in-process variant whose per-token time a first-call row's compile setting has.
_VARIANT_OF = {"off": "eager", "inductor": "compiled", "cuda-graphs": "cuda-graphs"}


def _first_call_table(rows, per_token: dict[str, float], args, device_type: str) -> str:
    """The first calls with the per-token times measured side by side in one process: what each warm-up costs and
    the decode steps that pay it back."""
    if "eager" not in per_token:
        return "(the first calls' payback needs the eager variant in --variants)"
    eager = rows[0][2]
    lines = [
        f"First calls, each in a new process (torch's inductor cache folder empty; the warm row finds the cold row's"
        f" compiled work in garvideo's compile cache): prompt {eager['prompt_tokens']} tokens, {args.new_tokens}"
        f" forced new tokens. Decode ms/token: the in-process comparison below (interleaved runs). Payback: the"
        f" warm-up over the time a step saves against eager.",
        "",
        "| decoding | first call s | of which warm-up s | process start to first result s | decode ms/token"
        " | saved ms/token | payback steps | "
        + " | ".join(f"net s at {n} steps" for n in WEIGHED_STEPS)
        + " | tokens as eager |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in WEIGHED_STEPS) + " | --- |",
    ]
    for label, setting, row in rows:
        step = per_token.get(_VARIANT_OF[setting])
        saved = per_token["eager"] - step if step is not None else None
        payback = f"{row['warmup_s'] / saved:.0f}" if setting != "off" and saved and saved > 0 else "-"
        net = [f"{n * saved - row['warmup_s']:+.1f}" if setting != "off" and saved else "-" for n in WEIGHED_STEPS]
        lines.append(
            f"| {label} | {row['first_s']:.2f} | {row['warmup_s']:.2f} | {row['process_s']:.1f} |"
            f" {_ms(step)} | {_ms(saved, '+')} | {payback} | {' | '.join(net)} |"
            f" {'yes' if row['tokens'] == eager['tokens'] else 'NO'} |"
        )
    if device_type == "cuda":
        lines += ["", _kind_advice(rows, per_token)]
    return "\n".join(lines)


def _ms(seconds: float | None, sign: str = "") -> str:
    return "-" if seconds is None else f"{1000 * seconds:{sign}.3f}"


def _kind_advice(rows, per_token: dict[str, float]) -> str:
    """On CUDA: the compiled kind that saves the most over a describe-sized run (2,000 steps), cold."""
    weighed = WEIGHED_STEPS[1]
    net = {
        setting: weighed * (per_token["eager"] - per_token[_VARIANT_OF[setting]]) - row["warmup_s"]
        for label, setting, row in rows
        if setting != "off" and "warm" not in label and _VARIANT_OF[setting] in per_token
    }
    best = max(net, key=net.get)
    return (
        f"Over {weighed} decode steps with nothing cached, {best} saves the most ({net[best]:+.1f} s): set"
        f" `garvideo.defaults.COMPILE_KIND = {best!r}` (now {defaults.COMPILE_KIND!r}) and COMPILE_PAYBACK_STEPS"
        f"['cuda'] from the payback column."
    )


def _decode_comparison(gar, images, masks, args) -> tuple[str, dict[str, float]]:
    """Old generate vs the static loop (eager, compiled) on one long prompt: a markdown block body, and each
    variant's decode seconds per token."""
    frames = args.frames
    prompt = gar.prepare_video(images[:frames], {"r0": masks[0][:frames]}, "What does <r0> do?").inputs
    full = GenerationSettings(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
    one = GenerationSettings(max_new_tokens=1)
    variants = [v for v in args.variants.split(",") if v]

    def run(variant: str, settings: GenerationSettings):
        gar.compile = {"compiled": "inductor", "cuda-graphs": "cuda-graphs"}.get(variant, "off")
        chosen = GenerationSettings(
            **{**settings.__dict__, "decoder": "generate" if variant == "generate" else "static"}
        )
        return gar.generate(prompt, chosen)[0]

    first_call = {}
    for variant in variants:  # warm-up: the compiled variant compiles here
        started = time.perf_counter()
        run(variant, full)
        first_call[variant] = time.perf_counter() - started
    times = {v: [] for v in variants}
    prefill = {v: [] for v in variants}
    per_token = {v: [] for v in variants}
    tokens = {}
    for _ in range(args.repeats):  # interleaved, so a busy machine slows every variant alike
        for variant in variants:
            result = run(variant, full)
            first = run(variant, one)  # measured right after, so the pair saw the same load
            times[variant].append(result.timings.generate_s)
            prefill[variant].append(first.timings.generate_s)
            per_token[variant].append(
                (result.timings.generate_s - first.timings.generate_s) / max(1, args.new_tokens - 1)
            )
            tokens[variant] = result.token_ids
    gar.compile = "off"
    base = variants[0]
    tile = gar.processor.tokens_per_tile
    ties = (
        ""
        if gar.info.dtype == "float32"
        else f" In {gar.info.dtype} random weights give near-tied logits, so tokens may differ between paths."
    )
    lines = [
        f"Prompt: {prompt.num_tokens} tokens ({frames} frames, each one tile of {tile} image tokens and a region run"
        f" of {tile}, + text), {args.new_tokens} forced new tokens, greedy; medians of {args.repeats} interleaved"
        f" runs after one warm-up each (first call: the warm-up, compilation included, with the compile cache the first"
        f" calls above left, if they ran); decode ms/token from each"
        f" run paired with a 1-token run right after it.{ties}",
        "",
        "| decoding | generate ms | prefill ms | decode ms/token | vs first row | first call s | tokens as first row |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    per_token = {v: statistics.median(per_token[v]) for v in variants}
    names = {
        "generate": "transformers generate (before)",
        "eager": "static-cache loop, eager",
        "compiled": "static-cache loop, compiled"
        + (" (inductor, CUDA graphs)" if gar.model.device.type == "cuda" else ""),
        "cuda-graphs": "static-cache loop, eager step captured as CUDA graphs",
    }
    for variant in variants:
        total, pre = statistics.median(times[variant]), statistics.median(prefill[variant])
        lines.append(
            f"| {names[variant]} | {1000 * total:.1f} | {1000 * pre:.1f} | {1000 * per_token[variant]:.3f} |"
            f" {per_token[base] / per_token[variant]:.2f}x | {first_call[variant]:.1f} |"
            f" {'yes' if tokens[variant] == tokens[base] else 'NO'} |"
        )
    return "\n".join(lines), per_token


def _batch_comparison(gar, images, masks, args) -> str:
    """A describe's prompts: one padded batch (before) vs grouped by length, with and without shared frames."""
    frames = args.frames
    quarter = max(1, frames // 4)
    region = masks[0]
    overall = gar.prepare_video(images[:frames:2], {"r0": region[:frames:2]}, "Describe <r0>.").inputs
    windows = [
        gar.prepare_video(images[a : a + quarter], {"r0": region[a : a + quarter]}, "Describe <r0>.").inputs
        for a in range(0, quarter * 4, quarter)
    ]
    prompts = [overall, *windows]
    settings = GenerationSettings(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
    variants = {
        "one padded batch, generate (before)": dict(
            batch_size=len(prompts), max_padding=1.0, share_images=False, decoder="generate"
        ),
        "one padded batch, static loop (eager)": dict(batch_size=len(prompts), max_padding=1.0, share_images=False),
        "grouped by length, static loop (eager)": dict(share_images=False),
        "grouped by length + shared frames, static loop (eager; now)": dict(),
    }
    tiles = []
    handle = gar.model.mllm.model.vision_tower.register_forward_hook(
        lambda module, inputs, output: tiles.append(output.last_hidden_state.shape[0])
    )

    def run(options):
        options = dict(options)
        decoder = options.pop("decoder", "static")
        chosen = GenerationSettings(**{**settings.__dict__, "decoder": decoder})
        tiles.clear()
        results = gar.generate(prompts, chosen, **options)
        return results, sum(tiles)

    try:
        for options in variants.values():
            run(options)  # warm-up
        measured = {name: [] for name in variants}
        outcome = {}
        for _ in range(args.repeats):
            for name, options in variants.items():
                results, encoded = run(options)
                encode = sum(r.timings.encode_s for r in results)
                generate = sum(r.timings.generate_s for r in results)
                measured[name].append((encode, generate))
                outcome[name] = ([r.token_ids for r in results], encoded, [r.timings.batch_size for r in results])
    finally:
        handle.remove()
    lengths = sorted({p.num_tokens for p in prompts})
    first = next(iter(variants))
    lines = [
        f"Prompts: 1 overall ({len(overall.images)} frames) + 4 windows ({quarter} frames each; the overall prompt"
        f" shows {len(overall.images)} of their frames with the same mask): lengths {lengths} tokens;"
        f" {args.new_tokens} forced new tokens; medians of {args.repeats} interleaved runs.",
        "",
        "| batching | batch size of each prompt | tiles encoded | encode ms | generate ms | total ms | vs first row | tokens as first row |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    base_total = None
    for name in variants:
        encode = statistics.median(e for e, _ in measured[name])
        generate = statistics.median(g for _, g in measured[name])
        total = encode + generate
        base_total = base_total or total
        ids, encoded, sizes = outcome[name]
        lines.append(
            f"| {name} | {sizes} | {encoded} | {1000 * encode:.0f} | {1000 * generate:.0f} | {1000 * total:.0f} |"
            f" {base_total / total:.2f}x | {'yes' if ids == outcome[first][0] else 'NO'} |"
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--regions", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--vision-batch", type=int, default=16)
    parser.add_argument(
        "--size", action="append", default=[], metavar="KEY=VALUE", help="tiny checkpoint size override (repeatable)"
    )
    parser.add_argument("--full-size", action="store_true", help="GAR-1B's architecture, built in memory")
    parser.add_argument("--decode", action="store_true", help="compare decode loops and batching (see above)")
    parser.add_argument(
        "--variants",
        help=f"--decode: comma-separated, of {', '.join(VARIANTS)} [default: all that run on the device]",
    )
    parser.add_argument("--no-first-calls", action="store_true", help="--decode: skip the first-call processes")
    parser.add_argument("--shared", action="store_true", help="--write: say that other jobs shared the machine")
    parser.add_argument("--write", action="store_true", help="--decode: update bench/RESULTS.md")
    parser.add_argument("--first-call", help=argparse.SUPPRESS)  # a child process of --decode: its compile setting
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)  # the child's tiny checkpoint
    return parser


def _load(args, sizes: dict[str, int], folder: Path) -> tuple[GAR, str]:
    """The GAR measured (GAR-1B's shapes in memory, or the tiny checkpoint in ``folder``) and how to name it."""
    compile = args.first_call or "off"
    if args.full_size:
        import torch
        from pipeline import GAR_1B_TEXT, GAR_1B_VISION  # bench/pipeline.py: the one description of GAR-1B's shapes

        torch.manual_seed(0)  # the same random weights in every process, so first calls can compare tokens
        gar = random_gar(text=GAR_1B_TEXT, vision=GAR_1B_VISION, device=args.device, dtype=args.dtype)
        gar.vision_batch_size = args.vision_batch
        gar.compile = compile
        return gar, "GAR-1B shapes, random weights"
    if not (folder / "config.json").is_file():
        build_tiny_gar_checkpoint(folder, seed=0, **sizes)
    gar = GAR.from_pretrained(
        folder, device=args.device, dtype=args.dtype, vision_batch_size=args.vision_batch, compile=compile
    )
    return gar, ", ".join(f"{k}={v}" for k, v in sizes.items()) or "tiny defaults"


def main() -> None:
    parser = _parser()
    args = parser.parse_args()
    if (
        args.decode
        and args.variants is not None
        and (set(args.variants.split(",")) - set(VARIANTS) or not args.variants)
    ):
        parser.error(f"--variants: comma-separated names of {', '.join(VARIANTS)}")
    sizes = _sizes(parser, args.size)
    if args.full_size and sizes:
        parser.error("--size changes the tiny checkpoint; --full-size has GAR-1B's fixed shapes: pass one of them")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.checkpoint) if args.checkpoint else Path(tmp) / "gar"
        gar, sizes = _load(args, sizes, folder)
        images, masks = _scene(640, 400, args.frames, args.regions)
        if args.first_call:
            _first_call_child(gar, images, masks, args)
            return
        device = gar.model.device
        if args.variants is None:
            args.variants = ",".join(v for v in VARIANTS if v != "cuda-graphs" or device.type == "cuda")
        machine = describe_machine(device)
        print(f"device: {machine}; dtype {gar.info.dtype}; sizes {sizes}")
        if args.decode:
            _decode_all(gar, images, masks, args, folder, machine, sizes)
            return
        _stages(gar, images, masks, args)


def _decode_all(gar, images, masks, args, folder: Path, machine: str, sizes: str) -> None:
    """--decode: first calls (own processes), then decode loops and batching in this one; --write keeps them."""
    device = gar.model.device
    cache = folder.parent / "compile-cache"
    rows = [] if args.no_first_calls else _first_calls(args, folder, device.type, cache)
    # the in-process compiled variant starts from the first calls' cache (warm), not from ~/.cache/garvideo
    os.environ["GARVIDEO_CACHE"] = str(cache)
    decode, per_token = _decode_comparison(gar, images, masks, args)
    first = _first_call_table(rows, per_token, args, device.type) if rows else ""
    print(first)
    print(decode)
    batching = _batch_comparison(gar, images, masks, args)
    print(batching)
    if args.write:
        shapes = "GAR-1B shapes" if args.full_size else "tiny GAR"
        title = f"### decoding and batching: {shapes}, {device.type}, {gar.info.dtype}"
        note = " The machine was shared with other jobs: compare rows, not absolute times." if args.shared else ""
        body = (
            f"`python bench/model.py --decode --frames {args.frames} --new-tokens {args.new_tokens} --repeats"
            f" {args.repeats}{' --full-size' if args.full_size else ''}` on {machine}; random weights ({sizes}).{note}"
            f"\n\n{first}\n\n{decode}\n\n{batching}"
        )
        write_section(SECTION, body, block=title)


def _stages(gar, images, masks, args) -> None:
    """The default run: encode and generate times of an image description and a video question."""
    settings = GenerationSettings(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
    one_token = GenerationSettings(max_new_tokens=1)
    print(
        f"{'case':<34}{'prompt':>8}{'tiles':>7}{'encode ms':>11}{'generate ms':>13}{'prefill ms':>12}"
        f"{'decode ms/token':>17}"
    )

    def measure(name, inputs, tiles):
        encode, generate, result = _time(lambda: gar.generate(inputs, settings)[0], args.repeats)
        _, prefill, _ = _time(lambda: gar.generate(inputs, one_token)[0], args.repeats)
        steps = len(result.token_ids)
        decode = (generate - prefill) / max(1, steps - 1)
        print(
            f"{name:<34}{result.prompt_tokens:>8}{tiles:>7}{1000 * encode:>11.1f}{1000 * generate:>13.1f}"
            f"{1000 * prefill:>12.1f}{1000 * decode:>17.2f}"
        )

    inputs = gar.processor.prepare_caption(images[0], masks[0][0])
    measure("image, describe (thumb+tile)", inputs, inputs.images[0].num_tiles)
    regions = {f"r{r}": masks[r] for r in range(args.regions)}
    question = "How do " + " and ".join(f"<r{r}>" for r in range(args.regions)) + " move?"
    video = gar.prepare_video(images, regions, question).inputs
    measure(f"video, {args.frames} frames x {args.regions} region(s)", video, len(video.images))
    print(f"({args.new_tokens} new tokens; medians of {args.repeats} runs after one warm-up)")


if __name__ == "__main__":
    main()

"""Options shared by several commands, and small printing helpers (no garvideo logic here)."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from typing import Any

import click

from garvideo import defaults  # torch-free: --help reads every default from the one table

# Where --compile/--no-compile leaves its value (click's context meta) for load_pipeline.
COMPILE_KEY = "garvideo.compile"
# Where --compile-sam2/--no-compile-sam2 leaves its value, likewise.
SAM2_COMPILE_KEY = "garvideo.compile_sam2"
# Where --adapter leaves its value, likewise.
ADAPTER_KEY = "garvideo.adapter"

REGION_HELP = """\b
Regions (repeat the options for several regions or corrections):
  --box   [NAME=]x1,y1,x2,y2@WHEN    a box in pixels of the displayed frame
  --points '[NAME=]x,y;x,y;!x,y@WHEN' clicks; ! or ~ before a click = background
  --mask  [NAME=]FILE.png@WHEN        a mask image (non-zero pixels = region)
  --text  [NAME=]"PHRASE"[@WHEN]      the object named in words, found by a detector
WHEN is a frame index (@120) or a time (@4.5s, @1:02.5). Regions that share a
NAME are one object marked on several frames; unnamed ones are region1, region2...
A --text without @WHEN is searched for one frame per second; the K most confident
matches (--max-instances K) become NAME, NAME#2, ... and each is tracked.
The same regions as JSON (result files, batch manifests): see
"Regions as JSON" in README.md."""


class PositiveSeconds(click.ParamType):
    """A length of time in seconds (``10``, ``10s``, ``1:30``): a finite number above zero (nan, inf and 0 are
    refused here, before any work)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        from garvideo.errors import InvalidInputError
        from garvideo.timecode import parse_seconds

        try:
            seconds = float(value)
        except (TypeError, ValueError):
            try:
                seconds = parse_seconds(str(value))  # 10s, 1:30
            except InvalidInputError:
                self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or seconds <= 0:
            self.fail(f"{value!r} is not a positive, finite number of seconds", param, ctx)
        return seconds


THREADS_KEY = "garvideo.threads"  # where --threads leaves its value in the click context

_PAYBACK = defaults.COMPILE_PAYBACK_STEPS
COMPILE_HELP = (
    "Compile GAR's decode steps always / never. Default (neither): auto, compiling only where the warm-up pays "
    "back: in the long-running commands (batch, app, eval) on CUDA, else when the decode steps planned (prompt "
    "batches x --max-new-tokens) reach the measured payback (CUDA {cuda[cold]}, CPU {cpu[cold]}; {cuda[warm]} and "
    "{cpu[warm]} when the compile cache, ~/.cache/garvideo or $GARVIDEO_CACHE, holds this model's compiled "
    "step). The result's provenance says what ran and the warm-up spent."
).format(**_PAYBACK)


def _compile_setting(ctx: click.Context, param: click.Parameter, value: bool | None) -> str:
    """--compile -> on, --no-compile -> off, neither -> the default (auto), left for load_pipeline."""
    setting = defaults.COMPILE if value is None else ("on" if value else "off")
    ctx.meta[COMPILE_KEY] = setting
    return setting


def option_group(*options: Callable) -> Callable:
    """One decorator for several click options, in the order ``--help`` lists them."""

    def apply(func: Callable) -> Callable:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


region_options = option_group(
    click.option(
        "--box",
        "boxes",
        multiple=True,
        metavar="[NAME=]X1,Y1,X2,Y2@WHEN",
        help="Mark a region with a box (pixels) on a frame or at a time.",
    ),
    click.option(
        "--points",
        "points",
        multiple=True,
        metavar="'[NAME=]X,Y;!X,Y@WHEN'",
        help="Mark a region with clicks; '!' before a click makes it a background click.",
    ),
    click.option(
        "--mask",
        "masks",
        multiple=True,
        metavar="[NAME=]FILE.png@WHEN",
        help="Mark a region with a mask image the size of the frame.",
    ),
    click.option(
        "--text",
        "texts",
        multiple=True,
        metavar='[NAME=]"PHRASE"[@WHEN]',
        help='Mark a region by naming it (e.g. car="a red car"@4.5s); without @WHEN the video is searched.',
    ),
)


def model_options(gar: bool = True, sam2: bool = True) -> Callable:
    def wrap(func: Callable) -> Callable:
        options = []
        if gar:
            options.append(
                click.option(
                    "--model",
                    "model",
                    default=defaults.MODEL,
                    show_default=True,
                    metavar="ID|FOLDER",
                    help="GAR weights: a hub id or a local folder.",
                )
            )
        if sam2:
            options.append(
                click.option(
                    "--sam2",
                    "sam2",
                    default=defaults.SAM2,
                    show_default=True,
                    metavar="ID|FOLDER",
                    help="SAM2 weights: facebook/sam2.1-hiera-{tiny,small,base-plus,large}, "
                    "an alias (tiny, small, ...) or a local folder.",
                )
            )
            options.append(
                click.option(
                    "--compile-sam2/--no-compile-sam2",
                    default=None,
                    expose_value=False,  # read by load_pipeline, as --compile is
                    callback=lambda ctx, param, value: ctx.meta.__setitem__(SAM2_COMPILE_KEY, value),
                    help="Compile SAM2's image encoder and memory attention (torch.compile). Default: off.",
                )
            )
        if gar:
            options.append(
                click.option(
                    "--adapter",
                    metavar="DIR",
                    type=click.Path(exists=True, file_okay=False, path_type=str),
                    expose_value=False,  # read by load_pipeline, as --compile is
                    callback=lambda ctx, param, value: ctx.meta.__setitem__(ADAPTER_KEY, value),
                    help="A fine-tuned LoRA adapter for GAR: a run folder of `garvideo train` (or one of its "
                    "checkpoints).",
                )
            )
            options.append(
                click.option(
                    "--compile/--no-compile",
                    default=None,
                    expose_value=False,  # read by load_pipeline, so commands need no new parameter
                    callback=_compile_setting,
                    help=COMPILE_HELP,
                )
            )
        options += [
            click.option(
                "--device",
                default=defaults.DEVICE,
                show_default=True,
                help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N.",
            ),
            click.option(
                "--dtype",
                default=defaults.DTYPE,
                show_default=True,
                help="auto (bfloat16 on CUDA, SAM2 float32 under bfloat16 autocast; float32 on CPU), float32, "
                "bfloat16 or float16.",
            ),
            # Read by load_pipeline from the context, so the commands' signatures need not carry it.
            click.option(
                "--threads",
                type=click.IntRange(min=1),
                expose_value=False,
                callback=lambda ctx, _param, value: ctx.meta.__setitem__(THREADS_KEY, value),
                help="Torch CPU threads for every stage [default: 1 for tracking, all cores for GAR and the text detector].",
            ),
        ]
        return option_group(*options)(func)

    return wrap


# The detector and its thresholds (the detector loads only when a --text region is given).
detector_options = option_group(
    click.option(
        "--detector",
        default=defaults.DETECTOR,
        show_default=True,
        metavar="ID|FOLDER",
        help="Open-vocabulary detector for --text: a Grounding DINO hub id or a local folder.",
    ),
    click.option(
        "--box-threshold",
        default=defaults.BOX_THRESHOLD,
        show_default=True,
        type=float,
        help="A detected box counts when its score is above this.",
    ),
    click.option(
        "--text-threshold",
        default=defaults.TEXT_THRESHOLD,
        show_default=True,
        type=float,
        help="...and some word of the phrase scores above this.",
    ),
)
# How --text regions are found.
text_options = option_group(
    detector_options,
    click.option(
        "--max-instances",
        default=defaults.MAX_INSTANCES,
        show_default=True,
        type=int,
        metavar="K",
        help="The K most confident matches of a --text become regions NAME, NAME#2, ...",
    ),
    click.option(
        "--search-every",
        default=defaults.SEARCH_EVERY,
        show_default=True,
        type=float,
        metavar="SECONDS",
        help="A --text without @WHEN is looked for on one frame every SECONDS until found.",
    ),
    click.option(
        "--new-instances",
        is_flag=True,
        default=defaults.NEW_INSTANCES,
        expose_value=False,  # read by text_search, so the commands need no new parameter
        callback=lambda ctx, _param, value: _remember(ctx, NEW_INSTANCES_KEY, value),
        help="Once found, look for a --text without @WHEN again every --search-every seconds: what comes into view "
        "later becomes NAME#2, ... (up to --max-instances in all); a lost one found again keeps its name.",
    ),
    click.option(
        "--match-iou",
        type=float,
        default=defaults.MATCH_IOU,
        show_default=True,
        expose_value=False,
        callback=lambda ctx, _param, value: _remember(ctx, MATCH_IOU_KEY, value),
        help="With --new-instances: a box overlapping an instance's by at least this IoU is that instance.",
    ),
)
# Where --new-instances and --match-iou leave their values (click's context meta) for text_search.
NEW_INSTANCES_KEY = "garvideo.new_instances"
MATCH_IOU_KEY = "garvideo.match_iou"


def _remember(ctx: click.Context, key: str, value: Any) -> Any:
    """An option's value kept in the context for a helper that reads it later (the option's own value too)."""
    ctx.meta[key] = value
    return value


def text_search(box_threshold: float, text_threshold: float, max_instances: int, search_every: float, prompts=()):
    """The one TextSearch the text options make, checked here with the names text regions would take (before any
    model loads: a bad value is one error line); the command hands it on as it is (``search=``)."""
    from garvideo.pipeline import TextSearch, check_text_regions

    meta = getattr(click.get_current_context(silent=True), "meta", {})
    search = TextSearch(
        box_threshold=box_threshold,
        text_threshold=text_threshold,
        max_instances=max_instances,
        every=search_every,
        new_instances=bool(meta.get(NEW_INSTANCES_KEY, defaults.NEW_INSTANCES)),
        match_iou=meta.get(MATCH_IOU_KEY, defaults.MATCH_IOU),
    )
    check_text_regions(list(prompts), search)
    return search


def report_found(found, prompts=(), max_instances: int = defaults.MAX_INSTANCES) -> None:
    """Say where each text region was found, and the --box that marks it again without the detector
    (and when a phrase gave fewer matches than --max-instances allowed)."""
    for region in found:
        where = f"frame {region.frame} ({clock(region.time)})"
        searched = f", after searching {len(region.searched)} frames" if len(region.searched) > 1 else ""
        click.echo(
            f"{region.name}: found {region.text!r} on {where}{searched}, score {region.score:.2f}; "
            f"same region: --box '{region.box_option}'",
            err=True,
        )
    for prompt in prompts:
        if prompt.kind == "text" and max_instances > 1:
            count = sum(1 for r in found if r.name == prompt.name or r.name.startswith(prompt.name + "#"))
            if count < max_instances:
                click.echo(
                    f"{prompt.name}: {count} distinct match{'es' if count != 1 else ''} of {prompt.text!r} passed the "
                    f"thresholds (--max-instances {max_instances} allowed more)",
                    err=True,
                )


def range_options(func: Callable | None = None, *, scope: str = "") -> Callable:
    """--start, --end and --stride. ``scope`` ends the --start/--end help where a command reads several videos
    (batch: " in every video"); used bare (``@range_options``) or with it (``@range_options(scope=...)``)."""
    if func is None:
        return functools.partial(range_options, scope=scope)
    return option_group(
        click.option("--start", metavar="TIME", help=f"Only look from this time on{scope} (4.5, 4.5s or 1:02.5)."),
        click.option("--end", metavar="TIME", help=f"Only look until this time{scope}."),
        click.option(
            "--stride",
            default=defaults.STRIDE,
            show_default=True,
            type=click.IntRange(min=1),
            help="Track every N-th frame (faster on long videos).",
        ),
    )(func)


# How a description's timeline is cut (describe and batch).
timeline_options = option_group(
    click.option(
        "--window",
        default=defaults.WINDOW,
        type=PositiveSeconds(),
        metavar="SECONDS",
        help="Timeline window length (default: adaptive, at most 8 windows).",
    ),
    click.option(
        "--frames-per-window",
        default=defaults.FRAMES_PER_WINDOW,
        show_default=True,
        type=click.IntRange(min=1),
        help="Frames shown to GAR for each window.",
    ),
)


generation_options = option_group(
    click.option(
        "--frames",
        default=defaults.FRAMES,
        show_default=True,
        type=click.IntRange(min=1),
        help="Frames shown to GAR for an overall description or an answer.",
    ),
    click.option(
        "--tiling",
        type=click.Choice(["vanilla", "thumb+tile"]),
        default=defaults.TILING,
        show_default=True,
        help="Per frame: one 448 tile (vanilla) or a thumbnail plus tiles.",
    ),
    click.option(
        "--max-new-tokens",
        default=defaults.MAX_NEW_TOKENS,
        show_default=True,
        type=click.IntRange(min=1, max=defaults.MAX_NEW_TOKENS_LIMIT),
        help="Longest description or answer, in tokens.",
    ),
)


def quiet_option(func: Callable) -> Callable:
    return click.option("-q", "--quiet", is_flag=True, help="No progress bars.")(func)


def load_pipeline(
    model: str | None,
    sam2: str | None,
    device: str,
    dtype: str,
    quiet: bool,
    *,
    progress: bool | None = None,
    box_mode: str = "reference",
    detector: str | None = defaults.DETECTOR,
    long_running: bool = False,
):
    """The pipeline with the models a command needs (None leaves a model out).

    ``progress``: the default of the pipeline's own progress bars (default: unless ``quiet``); a call may
    still choose its own. ``box_mode``: GAR's RoI box. ``detector``: for text regions, loaded only if one is given.
    ``long_running``: the command serves many videos (batch, app, eval), which ``--compile auto`` weighs.
    """
    if sam2:
        check_sam2_name(sam2)
    from transformers.utils import logging as transformers_logging

    from garvideo.pipeline import Pipeline

    context = click.get_current_context(silent=True)
    compile = context.meta.get(COMPILE_KEY, defaults.COMPILE) if context is not None else defaults.COMPILE
    compile_sam2 = context.meta.get(SAM2_COMPILE_KEY) if context is not None else None
    adapter = context.meta.get(ADAPTER_KEY) if context is not None and model else None
    transformers_logging.disable_progress_bar()  # "Loading weights" bars; hub downloads keep theirs
    if not quiet:
        gar_name = f"{model} + adapter {adapter}" if model and adapter else model
        names = " and ".join(m for m in (gar_name, sam2) if m)
        if detector:
            names += f" (and {detector} when a text region needs it)"
        click.echo(f"loading {names} ...", err=True)
    return Pipeline.from_pretrained(
        model=model,
        sam2=sam2,
        device=device,
        dtype=dtype,
        box_mode=box_mode,
        progress=not quiet if progress is None else progress,
        detector=detector,
        compile=compile,
        compile_sam2=compile_sam2,
        threads=click.get_current_context().meta.get(THREADS_KEY),
        long_running=long_running,
        adapter=adapter,
    )


def check_sam2_name(name: str) -> None:
    """Refuse a bare word that is neither a SAM2 alias nor a folder, listing the aliases (before any model loads)."""
    import os

    from garvideo.errors import ModelNotFoundError
    from garvideo.tracking import SAM2_ALIASES

    if name in SAM2_ALIASES or "/" in name or os.sep in name or os.path.exists(os.path.expanduser(name)):
        return
    raise ModelNotFoundError(
        f"unknown SAM2 alias {name!r}: use one of {', '.join(SAM2_ALIASES)}, a hub id such as {defaults.SAM2} "
        f"or the path of a local folder"
    )


def parse_regions(boxes, points, masks, texts=()) -> list:
    from garvideo.tracking.marks import parse_region_prompts

    return parse_region_prompts(boxes=boxes, points=points, masks=masks, texts=texts)


def open_video_first(video: str, prompts=(), tracks=None, **checks):
    """The video, opened before any model loads, once for the checks and the work (closed when the command ends):
    a file that cannot be read as a video (a FIFO, a frame folder holding a link loop or a huge image) is reported
    before the wait, and so are regions or tracks that do not fit it (``checks``: the span and window keywords of
    ``garvideo.pipeline.check_inputs``)."""
    from garvideo.pipeline import check_inputs
    from garvideo.video import open_video

    reader = open_video(video)
    click.get_current_context().call_on_close(reader.close)
    check_inputs(reader, prompts, tracks, **checks)
    return reader


def check_outputs(outputs: dict[str, tuple[str, str | None]], inputs: dict[str, str | None] | None = None) -> None:
    """Refuse, before any model is loaded, an output that is an input or another output, and unwritable output
    paths. ``outputs``: ``{option: (what it is, path)}``; ``inputs``: ``{what it is: path}``. None and '-' (standard
    output) are skipped."""
    from garvideo.errors import InvalidInputError
    from garvideo.files import check_distinct, check_writable

    for option, (what, path) in outputs.items():
        if path == "-" and option != "--out":  # only the result document goes to standard output
            raise InvalidInputError(f"{option} - would write the {what} to a file named '-': give a file name")
    check_distinct({option: path for option, (_, path) in outputs.items()}, inputs)
    for what, path in outputs.values():
        if path and path != "-":
            check_writable(path, what)


def input_files(video: str | None = None, tracks_file: str | None = None, masks=()) -> dict[str, str | None]:
    """The files a command reads, by what they are (for :func:`check_outputs`)."""
    from garvideo.tracking.marks import mask_files

    return {"the video": video, "the --tracks file": tracks_file, **{f"--mask {m}": m for m in mask_files(masks)}}


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


class Outputs:
    """Writes a command's output files after the work; none is lost to a write that fails then.

    A file the file system refuses (the up-front check can be outrun) is saved
    beside it, in the working folder or the temporary folder; :meth:`finish`
    then raises one error saying where each went, after everything else is
    written and printed.
    """

    def __init__(self) -> None:
        self.problems: list[str] = []

    def write(self, path: str, write: Callable[[Any], Any], what: str) -> None:
        from garvideo.files import write_or_rescue

        problem = write_or_rescue(path, write, what)
        if problem:
            self.problems.append(problem)
        else:
            click.echo(f"wrote {path}", err=True)

    def json(self, path: str, document: Any, what: str = "result") -> None:
        from garvideo.files import atomic_write_json

        if path == "-":
            emit_json(document)
        else:
            self.write(path, lambda target: atomic_write_json(target, document), what)

    def text(self, path: str, text: str, what: str) -> None:
        from garvideo.files import atomic_write_text

        self.write(path, lambda target: atomic_write_text(target, text), what)

    def finish(self) -> None:
        from garvideo.files import OutputNotWrittenError

        if self.problems:
            raise OutputNotWrittenError("; ".join(self.problems))


def clock(seconds: float) -> str:
    from garvideo.timecode import format_clock

    return format_clock(seconds)


def reports_warnings(func: Callable) -> Callable:
    """Show library warnings (a damaged video) as one line each on stderr."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import warnings

        def show(message, category, filename, lineno, file=None, line=None):
            click.echo(f"garvideo: warning: {message}", err=True)

        previous = warnings.showwarning
        warnings.showwarning = show
        try:
            return func(*args, **kwargs)
        finally:
            warnings.showwarning = previous

    return wrapper

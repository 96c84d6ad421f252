"""Options shared by several commands, and small printing helpers (no garvideo logic here)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import click

from garvideo.tracking import DEFAULT_SAM2_MODEL as DEFAULT_SAM2  # torch-free import

# garvideo.model loads torch on import, which --help must not wait for; a test keeps this equal to
# garvideo.model.DEFAULT_MODEL_ID.
DEFAULT_GAR = "HaochenWang/GAR-1B"

REGION_HELP = """\b
Regions (repeat the options for several regions or corrections):
  --box   [NAME=]x1,y1,x2,y2@WHEN    a box in pixels of the displayed frame
  --points '[NAME=]x,y;x,y;!x,y@WHEN' clicks; ! or ~ before a click = background
  --mask  [NAME=]FILE.png@WHEN        a mask image (non-zero pixels = region)
WHEN is a frame index (@120) or a time (@4.5s, @1:02.5). Regions that share a
NAME are one object marked on several frames; unnamed ones are region1, region2..."""


_THREADS = "garvideo.threads"  # where --threads leaves its value in the click context


def region_options(func: Callable) -> Callable:
    for decorator in reversed(
        [
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
        ]
    ):
        func = decorator(func)
    return func


def model_options(gar: bool = True, sam2: bool = True) -> Callable:
    def wrap(func: Callable) -> Callable:
        options = []
        if gar:
            options.append(
                click.option(
                    "--model",
                    "gar_model",
                    default=DEFAULT_GAR,
                    show_default=True,
                    metavar="ID|FOLDER",
                    help="GAR weights: a hub id or a local folder.",
                )
            )
        if sam2:
            options.append(
                click.option(
                    "--sam2",
                    "sam2_model",
                    default=DEFAULT_SAM2,
                    show_default=True,
                    metavar="ID|FOLDER",
                    help="SAM2 weights: facebook/sam2.1-hiera-{tiny,small,base-plus,large}, "
                    "an alias (tiny, small, ...) or a local folder.",
                )
            )
        options += [
            click.option(
                "--device",
                default="auto",
                show_default=True,
                help="auto (CUDA when available, else CPU), cpu, cuda or cuda:N.",
            ),
            click.option(
                "--dtype",
                default="auto",
                show_default=True,
                help="auto (bfloat16 on CUDA, float32 on CPU), float32, bfloat16 or float16.",
            ),
            # Read by load_pipeline from the context, so the commands' signatures need not carry it.
            click.option(
                "--threads",
                type=click.IntRange(min=1),
                expose_value=False,
                callback=lambda ctx, _param, value: ctx.meta.__setitem__(_THREADS, value),
                help="Torch CPU threads for every stage [default: 1 for tracking, all cores for GAR].",
            ),
        ]
        for decorator in reversed(options):
            func = decorator(func)
        return func

    return wrap


def range_options(func: Callable) -> Callable:
    for decorator in reversed(
        [
            click.option("--start", metavar="TIME", help="Only look from this time on (4.5, 4.5s or 1:02.5)."),
            click.option("--end", metavar="TIME", help="Only look until this time."),
            click.option(
                "--stride",
                default=1,
                show_default=True,
                type=click.IntRange(min=1),
                help="Track every N-th frame (faster on long videos).",
            ),
        ]
    ):
        func = decorator(func)
    return func


def generation_options(func: Callable) -> Callable:
    for decorator in reversed(
        [
            click.option(
                "--frames",
                default=8,
                show_default=True,
                type=click.IntRange(min=1),
                help="Frames shown to GAR for an overall description or an answer.",
            ),
            click.option(
                "--tiling",
                type=click.Choice(["vanilla", "thumb+tile"]),
                default="vanilla",
                show_default=True,
                help="Per frame: one 448 tile (vanilla) or a thumbnail plus tiles.",
            ),
            click.option(
                "--max-new-tokens",
                default=512,
                show_default=True,
                type=click.IntRange(min=1),
                help="Longest answer, in tokens.",
            ),
        ]
    ):
        func = decorator(func)
    return func


def quiet_option(func: Callable) -> Callable:
    return click.option("-q", "--quiet", is_flag=True, help="No progress bars.")(func)


def load_pipeline(
    gar_model: str | None,
    sam2_model: str | None,
    device: str,
    dtype: str,
    quiet: bool,
    *,
    progress: bool | None = None,
    box_mode: str = "reference",
):
    """The pipeline with the models a command needs (None leaves a model out).

    ``progress``: the pipeline's own progress bars (default: unless ``quiet``); a command that
    shows one bar over many pipeline calls turns them off. ``box_mode``: GAR's RoI box.
    """
    from transformers.utils import logging as transformers_logging

    from garvideo.pipeline import Pipeline

    transformers_logging.disable_progress_bar()  # "Loading weights" bars; hub downloads keep theirs
    if not quiet:
        names = " and ".join(m for m in (gar_model, sam2_model) if m)
        click.echo(f"loading {names} ...", err=True)
    return Pipeline.from_pretrained(
        gar=gar_model,
        sam2=sam2_model,
        device=device,
        dtype=dtype,
        box_mode=box_mode,
        progress=not quiet if progress is None else progress,
        threads=click.get_current_context().meta.get(_THREADS),
    )


def parse_regions(boxes, points, masks) -> list:
    from garvideo.tracking import parse_region_prompts

    return parse_region_prompts(boxes=boxes, points=points, masks=masks)


def check_outputs(**paths: str | None) -> None:
    """Refuse unwritable output paths before any model is loaded (``name=path``; None and '-' are skipped)."""
    from garvideo.files import check_writable

    for what, path in paths.items():
        if path and path != "-":
            check_writable(path, what.replace("_", " "))


def emit_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


def write_json(path: str, document: Any) -> None:
    from garvideo.files import atomic_write_json

    if path == "-":
        emit_json(document)
    else:
        atomic_write_json(path, document)
        click.echo(f"wrote {path}", err=True)


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

"""``open_session``: a live session from a pipeline's loaded models (what ``Pipeline.live`` calls)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from .. import defaults
from ..errors import InvalidInputError
from ..model import CAPTION_INSTRUCTION, GenerationSettings, VideoPromptTemplate
from ..pipeline import PipelineError, RegionPrompt, TextSearch
from ..pipeline.prompting import Prompting, generation_settings
from ..tracking.live import LiveTracker
from ..video.live_source import LiveReader
from .describer import Describer, DescribeSettings
from .events import LiveEvent
from .outputs import LiveOutput
from .session import LiveSession, LiveSettings

if TYPE_CHECKING:
    from ..pipeline import Pipeline


def open_session(
    pipeline: Pipeline,
    source: str | os.PathLike[str],
    regions: Sequence[RegionPrompt] = (),
    *,
    window: float = defaults.LIVE_WINDOW,
    frames_per_window: int = defaults.FRAMES_PER_WINDOW,
    frames: int = defaults.FRAMES,
    track_fps: float | None = defaults.LIVE_TRACK_FPS,
    report_every: float = defaults.LIVE_REPORT_EVERY,
    reconnect_s: float = defaults.LIVE_RECONNECT_S,
    give_up_after_s: float = defaults.LIVE_GIVE_UP_AFTER_S,
    box_threshold: float = defaults.BOX_THRESHOLD,
    text_threshold: float = defaults.TEXT_THRESHOLD,
    max_instances: int = defaults.LIVE_MAX_INSTANCES,
    search_every: float = defaults.LIVE_SEARCH_EVERY,
    lost_after_s: float = defaults.LIVE_LOST_AFTER_S,
    match_iou: float = defaults.MATCH_IOU,
    describe: bool = True,
    tiling: str = defaults.TILING,
    max_new_tokens: int = defaults.MAX_NEW_TOKENS,
    instruction: str = CAPTION_INSTRUCTION,
    template: VideoPromptTemplate | None = None,
    generation: GenerationSettings | None = None,
    batch_size: int | None = None,
    history_s: float = defaults.LIVE_HISTORY_S,
    stream_text: bool = False,
    keep_all: bool = False,
    input_format: str | None = None,
    input_options: Mapping[str, str] | None = None,
    outputs: Sequence[LiveOutput] = (),
    on_event: Callable[[LiveEvent], None] | None = None,
) -> LiveSession:
    """Open ``source`` and start a :class:`LiveSession` on it with the pipeline's SAM2 (and GAR, and detector).

    ``regions`` are marked on the first frame taken (their own moment is not used; text regions are searched
    for from it on). The keywords are ``garvideo live``'s options: ``window`` seconds per description,
    ``frames_per_window`` frames GAR sees in each (``frames`` per answer), ``track_fps`` frames taken per
    second (None: as many as tracking keeps up with, the newest winning), ``report_every`` frame events per
    second at most, ``reconnect_s`` before the first reconnection of a dropped source, ``give_up_after_s``
    without a frame before the session ends, text regions searched again every ``search_every`` seconds (up
    to ``max_instances`` instances each; a detection overlapping an instance's box by ``match_iou`` is that
    instance), a region unseen for ``lost_after_s`` reported lost, ``describe`` False for tracking alone (no
    GAR needed), ``history_s`` how far back :meth:`LiveSession.ask` may look, ``stream_text`` GAR's texts
    reported as they are generated (``text`` events), ``keep_all`` never to drop a frame (pipes and files: the
    reader waits for tracking). ``input_format`` and ``input_options`` go to FFmpeg (a demuxer such as
    ``v4l2``; options such as ``rtsp_transport=tcp``). ``outputs`` (:mod:`garvideo.live.outputs`) and
    ``on_event`` receive every event.

    Raises :class:`~garvideo.errors.InvalidInputError` for bad settings or regions and
    :class:`~garvideo.errors.VideoError` for a source that cannot be opened, before anything runs.
    """
    if pipeline.tracker is None:
        raise PipelineError("this pipeline was built without a SAM2 tracker (sam2=None): live video needs one")
    search = TextSearch(box_threshold, text_threshold, max_instances, search_every, match_iou=match_iou)
    settings = LiveSettings(window, report_every, lost_after_s, history_s, search=search)
    prompting = Prompting(tiling, template, generation_settings(max_new_tokens, generation), instruction, batch_size)
    describer = _describer(pipeline, prompting, frames_per_window, frames, stream_text) if describe else None
    regions = list(regions)
    if any(isinstance(r, RegionPrompt) and r.kind == "text" for r in regions):
        pipeline.detector  # noqa: B018 - loads it now: a missing detector is an error before the source opens
    options = {"keep_all": keep_all, "track_fps": track_fps, "reconnect_s": reconnect_s}
    options |= {"give_up_after_s": give_up_after_s, "input_format": input_format, "options": input_options}
    reader = LiveReader(os.fspath(source), **options)
    try:
        tracker = LiveTracker(pipeline.tracker, size=(reader.height, reader.width))
        return LiveSession(
            reader,
            tracker,
            regions,
            settings=settings,
            describer=describer,
            detector=lambda: pipeline.detector,
            outputs=outputs,
            on_event=on_event,
            threads=pipeline.threads,
        )
    except BaseException:
        reader.close()
        raise


def _describer(
    pipeline: Pipeline,
    prompting: Prompting,
    frames_per_window: int,
    frames: int,
    stream_text: bool,
) -> Callable[[Callable[[LiveEvent], None]], Describer]:
    if pipeline.gar is None:
        raise PipelineError(
            "this pipeline was built without a GAR model (model=None): pass describe=False to track only, or "
            "load one with Pipeline.from_pretrained(model=...)"
        )
    for name, value in (("frames_per_window", frames_per_window), ("frames", frames)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name} must be a whole number >= 1, got {value!r}")
    settings = DescribeSettings(prompting, frames_per_window, frames, defaults.LIVE_MAX_MERGED_WINDOWS, stream_text)
    return lambda emit: Describer(pipeline, settings, emit, threads=pipeline.threads)

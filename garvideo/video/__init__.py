"""Reading videos: facts, exact frame index <-> time mapping, frame sampling, bounded decoding.

    from garvideo.video import open_video

    with open_video("clip.mp4") as video:
        print(video.info.to_dict())
        for frame in video.iter_frames(start=120, step=-1):   # backward from frame 120
            ...
        frames = video.read(video.sample_uniform(8, start=2.0, end=12.0))  # first and last included
        timeline = video.sample_windows(10.0, frames_per_window=4)  # the windows Pipeline.describe cuts

Spans, windows and frame spreading live in :mod:`garvideo.video.sampling`, the
one definition the pipeline uses too.

Frame ``i`` is the ``i``-th frame FFmpeg's decoder presents (``ffmpeg -i FILE -fps_mode
passthrough``), with its best-effort timestamp, however it is read. Files whose packets do not
tell FFmpeg's frames (packed B-frames, N-VOP placeholders, B-frames without presentation
times) are indexed by decoding them once when opened (:mod:`garvideo.video.decoded_index`).
PyAV is the default decoder; decord (optional extra) is used when asked for (``backend="decord"``,
or ``"auto"``: decord when installed and able to read the file frame-exactly)
and gives the same frames for the same indices. Frames are RGB uint8 arrays in
displayed orientation (rotation metadata applied); times are seconds since the
first frame.

``decode_ahead(video.iter_frames(...))`` decodes a few frames ahead in a background thread, so
decoding overlaps whatever the caller does with each frame (:mod:`garvideo.video.prefetch`).

A folder of images opens as a video too (``open_video("DAVIS/JPEGImages/480p/bear")``): its
image files sorted by name are the frames, at ``fps`` (default 30) frames per second; see
:mod:`garvideo.video.frame_folder`.
"""

from .facts import DecodeStats, Frame, FrameSelection, VideoDecodeWarning, VideoInfo, Window
from .frame_folder import DEFAULT_FOLDER_FPS, IMAGE_SUFFIXES, frame_files
from .prefetch import DEFAULT_AHEAD, DecodeAhead, decode_ahead
from .reader import VideoReader, default_max_buffered_frames, open_video, reading, video_info
from .sampling import (
    MAX_ADAPTIVE_WINDOWS,
    MAX_WINDOWS,
    NICE_WINDOW_LENGTHS,
    Span,
    adaptive_window_length,
    check_window_length,
    spread,
    time_span,
    window_bounds,
    window_length,
)
from .timeline import Timeline

__all__ = [
    "DEFAULT_AHEAD",
    "DEFAULT_FOLDER_FPS",
    "IMAGE_SUFFIXES",
    "MAX_ADAPTIVE_WINDOWS",
    "MAX_WINDOWS",
    "NICE_WINDOW_LENGTHS",
    "DecodeAhead",
    "DecodeStats",
    "Frame",
    "FrameSelection",
    "Span",
    "Timeline",
    "VideoDecodeWarning",
    "VideoInfo",
    "VideoReader",
    "Window",
    "adaptive_window_length",
    "check_window_length",
    "decode_ahead",
    "default_max_buffered_frames",
    "frame_files",
    "open_video",
    "reading",
    "spread",
    "time_span",
    "video_info",
    "window_bounds",
    "window_length",
]

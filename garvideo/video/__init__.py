"""Reading videos: facts, exact frame index <-> time mapping, frame sampling, bounded decoding.

    from garvideo.video import open_video

    with open_video("clip.mp4") as video:
        print(video.info.to_dict())
        for frame in video.iter_frames(start=120, step=-1):   # backward from frame 120
            ...
        frames = video.read(video.sample_uniform(8, start=2.0, end=12.0))
        timeline = video.sample_windows(10.0, frames_per_window=4)

PyAV is the default decoder; decord (optional extra) is used when asked for (``backend="decord"``,
or ``"auto"``: decord when installed and able to read the file)
and gives the same frames for the same indices. Frames are RGB uint8 arrays in
displayed orientation (rotation metadata applied); times are seconds since the
first frame.
"""

from .facts import DecodeStats, Frame, FrameSelection, VideoDecodeWarning, VideoInfo, Window
from .reader import VideoReader, default_max_buffered_frames, open_video, video_info
from .timeline import Timeline

__all__ = [
    "DecodeStats",
    "Frame",
    "FrameSelection",
    "Timeline",
    "VideoDecodeWarning",
    "VideoInfo",
    "VideoReader",
    "Window",
    "default_max_buffered_frames",
    "open_video",
    "video_info",
]

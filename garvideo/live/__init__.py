"""garvideo.live: live video, described as it comes.

A source (a camera, an RTSP/RTMP/SRT/UDP/HTTP stream, HLS, standard input, a file being written) is read frame
by frame, its regions tracked by SAM2 as frames come (marked, corrected and removed while it runs; text regions
searched for again and again, new instances getting new stable names), each finished window described by GAR in a
worker of its own, questions answered about the last seconds, everything reported as events.

    with pipe.live("rtsp://cam.local/stream", [RegionPrompt.from_text("person", "a person")], window=10) as session:
        for event in session:
            print(event.to_dict())

- :func:`open_session` (``Pipeline.live``): a running :class:`LiveSession`
- :mod:`garvideo.live.events`: what a session reports
- :mod:`garvideo.live.outputs`: :class:`EventLog`, :class:`RollingSubtitles`, :class:`SegmentRecorder`
"""

from .events import (
    EVENT_KINDS,
    EVENTS_SCHEMA,
    EVENTS_VERSION,
    Answered,
    Appeared,
    Behind,
    Found,
    FrameReport,
    Gap,
    LiveEvent,
    Lost,
    Problem,
    RegionReport,
    Removed,
    SegmentWritten,
    Started,
    Stopped,
    TextSoFar,
    WindowDescribed,
)
from .outputs import EventLog, LiveOutput, RollingSubtitles, SegmentRecorder
from .session import LiveSession, LiveSettings, LiveStats
from .start import open_session

__all__ = [
    "EVENTS_SCHEMA",
    "EVENTS_VERSION",
    "EVENT_KINDS",
    "Answered",
    "Appeared",
    "Behind",
    "EventLog",
    "Found",
    "FrameReport",
    "Gap",
    "LiveEvent",
    "LiveOutput",
    "LiveSession",
    "LiveSettings",
    "LiveStats",
    "Lost",
    "Problem",
    "RegionReport",
    "Removed",
    "RollingSubtitles",
    "SegmentRecorder",
    "SegmentWritten",
    "Started",
    "Stopped",
    "TextSoFar",
    "WindowDescribed",
    "open_session",
]

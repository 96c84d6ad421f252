"""The result document: one JSON object per run, with a versioned schema.

``garvideo describe``, ``ask`` and each item of ``batch`` write one::

    {
      "schema": "garvideo.result", "version": 1,
      "command": "describe" | "ask" | "batch",
      "created": "2026-11-26T15:04:09+00:00",
      "video": {"path", "width", "height", "fps", "num_frames", "duration", "codec", "rotation", ...},
      "regions": [
        {"name": "dog",
         "prompts": [{"name", "when": {"frame"} | {"time"}, "box" | "points" + "labels" | "mask"}],
         "track": {"frames_tracked", "frames_visible", "first_visible": {"frame", "time"} | null,
                   "last_visible": {"frame", "time"} | null},
         # after describe:
         "description": str, "visible_span": [t0, t1], "frames": [...], "times": [...],
         "timeline": [{"start", "end", "visible", "description" | null, "frames", "times"}]}
         # visible: true | false | null (null: no tracked frame falls in the window, nothing is known)
      ],
      "answers": [{"question", "regions", "options" | null, "answer", "letter" | null,
                   "choice" | null, "time_range" | null, "frames", "times"}],
      "provenance": {"garvideo", "gar": {"model", "revision", "device", "dtype"} | null,
                     "sam2": {...} | null, "settings": {"describe": {...}, "ask": {...}},
                     # a run with text regions: settings[run]["grounding"] =
                     #   {"detector": {"model", "revision", "device", "dtype"}, "box_threshold", "text_threshold",
                     #    "max_instances", "every", "found": [{"name", "text", "frame", "time", "box", "score",
                     #    "label", "frames_searched", "box_option"}]}
                     "timings": {"decode", "track", "encode", "generate", "total"}}
    }

Times are seconds since the first frame; frames are indices in display
order. The version goes up whenever a field changes meaning or disappears;
new fields may be added within a version.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from typing import Any

from ..pipeline import Answer, DescribeResult, Provenance, RegionPrompt, StageTimings, Track
from ..video import VideoInfo
from .subtitles import Cue

RESULT_SCHEMA = "garvideo.result"
RESULT_VERSION = 1


def track_summary(track: Track) -> dict[str, Any]:
    visible = track.visible_frames()
    point = lambda f: {"frame": f.index, "time": round(f.time, 6)}  # noqa: E731
    return {
        "frames_tracked": len(track.frames),
        "frames_visible": len(visible),
        "first_visible": point(visible[0]) if visible else None,
        "last_visible": point(visible[-1]) if visible else None,
    }


def track_sentence(track: Track) -> str:
    """How a track went, in words: ``24 frames tracked, 20 visible, visible 00:00:00.000 to 00:00:01.917``."""
    from ..timecode import format_clock

    summary = track_summary(track)
    first, last = summary["first_visible"], summary["last_visible"]
    seen = f"visible {format_clock(first['time'])} to {format_clock(last['time'])}" if first else "never visible"
    return f"{summary['frames_tracked']} frames tracked, {summary['frames_visible']} visible, {seen}"


def result_document(
    command: str,
    video: VideoInfo,
    tracks: Sequence[Track],
    prompts: Sequence[RegionPrompt] = (),
    description: DescribeResult | None = None,
    answers: Sequence[Answer] = (),
) -> dict[str, Any]:
    """Assemble the document of one run (see the module docstring for its fields)."""
    regions = []
    timelines = {t.name: t for t in description.regions} if description is not None else {}
    for track in tracks:
        entry: dict[str, Any] = {
            "name": track.name,
            "prompts": [p.to_dict() for p in prompts if p.name == track.name],
            "track": track_summary(track),
        }
        if track.name in timelines:
            timeline = timelines[track.name].to_dict()
            timeline.pop("name")
            entry.update(timeline)
        regions.append(entry)
    runs: list[tuple[str, Provenance]] = []
    if description is not None:
        runs.append(("describe", description.provenance))
    runs += [("ask", a.provenance) for a in answers if a.provenance is not None]
    return {
        "schema": RESULT_SCHEMA,
        "version": RESULT_VERSION,
        "command": command,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "video": video.to_dict(),
        "regions": regions,
        "answers": [_answer_entry(a) for a in answers],
        "provenance": _provenance(runs),
    }


def _answer_entry(answer: Answer) -> dict[str, Any]:
    entry = answer.to_dict()
    if answer.provenance is not None:
        entry["frames"] = list(answer.provenance.frames)
        entry["times"] = [round(t, 6) for t in answer.provenance.times]
    return entry


def _provenance(runs: Iterable[tuple[str, Provenance]]) -> dict[str, Any]:
    runs = list(runs)
    from .. import __version__

    out: dict[str, Any] = {"garvideo": __version__, "gar": None, "sam2": None, "settings": {}}
    timings = StageTimings()
    for kind, prov in runs:
        out["gar"] = out["gar"] or (prov.gar.to_dict() if prov.gar else None)
        out["sam2"] = out["sam2"] or (prov.sam2.to_dict() if prov.sam2 else None)
        out["settings"].setdefault(kind, prov.settings)
        timings = timings + prov.timings
    out["timings"] = timings.to_dict()
    return out


def timeline_cues(result: DescribeResult, with_names: bool | None = None) -> list[Cue]:
    """Subtitle cues of the timeline: one per described window (and region).

    Region names prefix the text when several regions are described
    (``with_names=None``) or when asked to.
    """
    names = len(result.regions) > 1 if with_names is None else with_names
    cues = []
    for timeline in result.regions:
        for window in timeline.windows:
            if window.visible and window.description:
                text = f"{timeline.name}: {window.description}" if names else window.description
                cues.append(Cue(window.start, window.end, text))
    return cues


_REQUIRED = {
    "": {
        "schema": str,
        "version": int,
        "command": str,
        "video": dict,
        "regions": list,
        "answers": list,
        "provenance": dict,
    },
    "video": {"width": int, "height": int, "fps": float, "num_frames": int, "duration": float, "codec": str},
    "region": {"name": str, "prompts": list, "track": dict},
    "timeline": {"start": float, "end": float, "frames": list, "times": list},
    "answer": {"question": str, "regions": list, "answer": str},
    "provenance": {"garvideo": str, "settings": dict, "timings": dict},
}


def validate_result_document(doc: Any) -> None:
    """Check that ``doc`` has the fields and types of a version-1 result; raise InvalidInputError if not."""
    from ..errors import InvalidInputError

    def need(obj: Any, kind: str, where: str) -> None:
        if not isinstance(obj, dict):
            raise InvalidInputError(f"{where or 'document'}: expected an object")
        for key, typ in _REQUIRED[kind].items():
            value = obj.get(key)
            ok = (
                isinstance(value, (int, float)) and not isinstance(value, bool)
                if typ is float
                else isinstance(value, typ)
            )
            if not ok:
                raise InvalidInputError(f"{where}.{key}: expected {typ.__name__}, got {value!r:.60}")

    need(doc, "", "")
    if doc["schema"] != RESULT_SCHEMA or doc["version"] != RESULT_VERSION:
        raise InvalidInputError(f"not a {RESULT_SCHEMA} version {RESULT_VERSION} document")
    need(doc["video"], "video", "video")
    need(doc["provenance"], "provenance", "provenance")
    for k, region in enumerate(doc["regions"]):
        need(region, "region", f"regions[{k}]")
        for w, window in enumerate(region.get("timeline", [])):
            need(window, "timeline", f"regions[{k}].timeline[{w}]")
            if "visible" not in window or not (window["visible"] is None or isinstance(window["visible"], bool)):
                raise InvalidInputError(f"regions[{k}].timeline[{w}].visible: expected true, false or null")
            if window["visible"] is None and window["frames"]:
                raise InvalidInputError(f"regions[{k}].timeline[{w}]: a window without tracked frames used frames")
            if bool(window["visible"]) != isinstance(window.get("description"), str):
                raise InvalidInputError(f"regions[{k}].timeline[{w}]: a visible window has a description, others null")
    for k, answer in enumerate(doc["answers"]):
        need(answer, "answer", f"answers[{k}]")

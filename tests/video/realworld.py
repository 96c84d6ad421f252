"""Small files of the kinds real-world videos come in, and FFmpeg's own frames for them (the reference).

Each file carries its frame number in its pixels (``garvideo.testing.clips.index_image``),
and the tests hold garvideo's frames against what the ``ffmpeg`` binary outputs with
``-fps_mode passthrough`` (pixels through a rawvideo rgb24 pipe) and what ``ffprobe``
reports as each frame's best-effort timestamp.

- :func:`packed_bframes_avi`: MPEG-4 Part 2 in AVI as DivX/Xvid wrote it with "packed
  bitstream": the P frame and the B frame shown before it share one packet, and the next
  packet is a tiny not-coded VOP (N-VOP) placeholder (UCF101, HMDB51 and many older sets).
- :func:`mpeg4_placeholder_avi`: MPEG-4 Part 2 AVI without B-frames where an encoder wrote
  N-VOP placeholders for dropped frames (the decoder outputs nothing for them).
- :func:`pts_equal_dts_mp4`: H.264 with B-frames in an MP4 whose packets' pts equal their
  dts (a muxer that dropped the composition offsets).
- :func:`dropped_entries_avi`: an AVI whose index holds many empty (dropped-frame) entries.
- :func:`bframes_avi`: H.264 with B-frames in AVI (no presentation times in the container).
- :func:`h264_bframes_ts`, :func:`mpeg2_ts`, :func:`remuxed_ts`, :func:`mpeg2_program_stream`: MPEG
  transport and program streams (broadcast, cameras, live sources; .ts, .mpg, .vob), whose demuxers
  seek by decode timestamps to any packet.
- :func:`duplicate_pts_mp4`: frames re-timed so that some share a timestamp (issue 21's ``setpts``).
- :func:`joined_ts`: two recordings whose clocks both start at 0, spliced end to end: timestamps
  repeat and go back at the join.
- :func:`rotated_45_mp4`: a display matrix of 45 degrees (not a multiple of 90).
- :func:`bframes_flv`: H.264 with B-frames in FLV (its header's duration counts from the first decode time).
- Files that start mid-GOP, as a capture of a live source or a cut does (the decoder drops the leading
  packets whose references are missing; FFmpeg's frame 0 is the first frame it outputs):
  :func:`mid_gop_ts` (``dd`` of a transport stream at a 188-byte packet inside a picture; with a long GOP,
  :func:`mid_gop_long_gop_ts`, its leading packets fail to decode),
  :func:`mid_gop_mpeg2_ts` (open-GOP MPEG-2, cut at any byte), :func:`open_gop_copy_cut_ts` (``-ss`` copy
  cut at an I picture whose leading B pictures refer to the GOP before), :func:`copy_cut` (``-c copy
  -copyinkf`` from a non-key point into MP4, Matroska or FLV) and :func:`edit_list_mp4` (an ``-ss`` copy cut
  that starts at the keyframe before and hides the packets up to the cut with an edit list).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from garvideo.testing import clips
from garvideo.testing.clips import index_image

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
#: Why the FFmpeg comparisons cannot run (None when they can).
NO_FFMPEG = None if FFMPEG and FFPROBE else "the ffmpeg and ffprobe binaries (FFmpeg's own output is the reference)"

_RATE = Fraction(1, 25)
_VOP_START = b"\x00\x00\x01\xb6"


def _frames(count: int, size: tuple[int, int]) -> Iterator[av.VideoFrame]:
    width, height = size
    for index in range(count):
        frame = av.VideoFrame.from_ndarray(index_image(index, width, height), format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        frame.time_base = _RATE
        yield frame


def _encode(codec: str, count: int, size: tuple[int, int], **settings) -> tuple[list[tuple[bytes, bool]], bytes | None]:
    """``count`` index frames encoded with ``codec``: (payload, keyframe) in decode order, and extradata."""
    context = av.CodecContext.create(codec, "w")
    context.width, context.height = size
    context.pix_fmt = "yuv420p"
    context.time_base = _RATE
    context.framerate = 1 / _RATE
    options = settings.pop("options", None)
    for name, value in settings.items():
        setattr(context, name, value)
    if options:
        context.options = options
    context.open()
    packets = [(bytes(p), p.is_keyframe) for frame in _frames(count, size) for p in context.encode(frame)]
    packets += [(bytes(p), p.is_keyframe) for p in context.encode(None)]
    return packets, context.extradata


def _write(
    path: Path,
    codec: str,
    size: tuple[int, int],
    packets: list[tuple[bytes, bool, int]],
    tag: str | None = None,
    extradata: bytes | None = None,
) -> Path:
    """Mux (payload, keyframe, timestamp) packets as they are; pts = dts = timestamp (in 1/25 s)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = _RATE
        if tag:
            stream.codec_context.codec_tag = tag
        if extradata:
            stream.codec_context.extradata = extradata
        for payload, keyframe, stamp in packets:
            packet = av.Packet(payload)
            packet.stream = stream
            packet.time_base = _RATE
            packet.pts = packet.dts = stamp
            packet.duration = 1
            packet.is_keyframe = keyframe
            container.mux(packet)
    return path


def _vop_type(payload: bytes) -> int:
    """MPEG-4 VOP coding type of the first VOP in a packet: 0 I, 1 P, 2 B."""
    return payload[payload.index(_VOP_START) + 4] >> 6


def _n_vop(slot: int, resolution: int = 25) -> bytes:
    """A not-coded P-VOP (vop_coded = 0), the placeholder DivX and Xvid write: 6-7 bytes."""
    bits = "01" + "0" + "1" + format(slot % resolution, f"0{max(1, (resolution - 1).bit_length())}b") + "1" + "0"
    bits += "0" + "1" * ((8 - (len(bits) + 1) % 8) % 8)  # MPEG-4 stuffing up to a byte boundary
    return _VOP_START + int(bits, 2).to_bytes(len(bits) // 8, "big")


def _mpeg4(count: int, size: tuple[int, int], bframes: int, gop: int) -> list[tuple[bytes, bool]]:
    return _encode("mpeg4", count, size, max_b_frames=bframes, gop_size=gop)[0]


def packed_bframes_avi(path: Path, num_frames: int = 90, size: tuple[int, int] = (96, 64), gop: int = 12) -> Path:
    """DivX-style packed B-frames: ``[P+B]`` then an N-VOP placeholder in the B frame's slot."""
    packets = _mpeg4(num_frames, size, bframes=1, gop=gop)
    first, keyframe = packets[0]
    at = first.index(_VOP_START)
    # The user data DivX writes after the VOL header; its trailing "p" announces packed B-frames.
    packets[0] = (first[:at] + b"\x00\x00\x01\xb2DivX503b1393p" + first[at:], keyframe)
    slots: list[tuple[bytes, bool, int]] = []
    position = 0
    while position < len(packets):
        payload, keyframe = packets[position]
        if position + 1 < len(packets) and _vop_type(packets[position + 1][0]) == 2:
            slots.append((payload + packets[position + 1][0], keyframe, len(slots)))
            slots.append((_n_vop(len(slots)), False, len(slots)))
            position += 2
        else:
            slots.append((payload, keyframe, len(slots)))
            position += 1
    return _write(path, "mpeg4", size, slots, tag="XVID")


def mpeg4_placeholder_avi(path: Path, num_frames: int = 60, size: tuple[int, int] = (96, 64), every: int = 4) -> Path:
    """Xvid without B-frames, an N-VOP (a dropped frame: no picture) after every ``every``-th frame.

    Not after the last frame: there FFmpeg 5.1 (Debian 12's binary) outputs nothing while the
    FFmpeg 8 inside PyAV's wheels repeats the last picture, so the two references would differ.
    """
    slots: list[tuple[bytes, bool, int]] = []
    for index, (payload, keyframe) in enumerate(_mpeg4(num_frames, size, bframes=0, gop=15)):
        slots.append((payload, keyframe, len(slots)))
        if index % every == every - 1 and index < num_frames - 1:
            slots.append((_n_vop(len(slots)), False, len(slots)))
    return _write(path, "mpeg4", size, slots, tag="XVID")


def _x264(num_frames: int, size: tuple[int, int], gop: int) -> tuple[list[tuple[bytes, bool]], bytes | None]:
    options = {"bf": "3", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "crf": "20"}
    return _encode("libx264", num_frames, size, options=options)


def pts_equal_dts_mp4(path: Path, num_frames: int = 120, size: tuple[int, int] = (96, 64), gop: int = 30) -> Path:
    """H.264 with B-frames, muxed with each packet's pts set to its dts (decode order)."""
    packets, extradata = _x264(num_frames, size, gop)
    slots = [(payload, keyframe, stamp) for stamp, (payload, keyframe) in enumerate(packets)]
    return _write(path, "h264", size, slots, extradata=extradata)


def bframes_avi(path: Path, num_frames: int = 90, size: tuple[int, int] = (96, 64), gop: int = 30) -> Path:
    """H.264 with B-frames in AVI: the container keeps decode times only."""
    packets, extradata = _x264(num_frames, size, gop)
    slots = [(payload, keyframe, stamp) for stamp, (payload, keyframe) in enumerate(packets)]
    return _write(path, "h264", size, slots, extradata=extradata)


def dropped_entries_avi(path: Path, num_frames: int = 68, size: tuple[int, int] = (96, 64)) -> Path:
    """Xvid AVI where capture dropped frames: 3 empty index entries after every other frame."""
    slots: list[tuple[bytes, bool, int]] = []
    stamp = 0
    for index, (payload, keyframe) in enumerate(_mpeg4(num_frames, size, bframes=0, gop=12)):
        slots.append((payload, keyframe, stamp))
        stamp += 1 + (3 if index % 2 else 0)  # the AVI muxer fills the gap with empty entries
    return _write(path, "mpeg4", size, slots, tag="XVID")


# -- MPEG streams, repeated and backward timestamps (issue 21) -----------------

#: The MPEG stream and timestamp clips: 2 s at 12 fps, 160x120, a keyframe every 8 frames.
_CLIP = {"num_frames": 24, "fps": 12, "size": (160, 120)}


def _ffmpeg(*arguments: str | Path) -> None:
    assert FFMPEG, NO_FFMPEG
    subprocess.run([FFMPEG, "-v", "error", "-y", *map(str, arguments)], check=True, capture_output=True)


def _indexed_mp4(path: Path, bframes: int = 2) -> Path:
    return clips.constant_rate_clip(path, gop=8, bframes=bframes, **_CLIP).path


def h264_bframes_ts(path: Path) -> Path:
    """H.264 with B-frames written straight into a transport stream."""
    return clips.constant_rate_clip(path.with_suffix(".ts"), gop=8, bframes=3, **_CLIP).path


def mpeg2_ts(path: Path) -> Path:
    """MPEG-2 with B-frames (open GOPs) in a transport stream, encoded by the ffmpeg binary."""
    source = _indexed_mp4(path.with_suffix(".source.mp4"))
    _ffmpeg("-i", source, "-c:v", "mpeg2video", "-bf", "2", "-g", "8", "-q:v", "2", "-f", "mpegts", path)
    return path


def mpeg2_program_stream(path: Path) -> Path:
    """MPEG-2 with B-frames in a program stream (.mpg, as DVD's .vob): pictures span several packets."""
    source = _indexed_mp4(path.with_suffix(".source.mp4"))
    _ffmpeg("-i", source, "-c:v", "mpeg2video", "-bf", "2", "-g", "8", "-q:v", "2", "-f", "mpeg", path)
    return path


def remuxed_ts(path: Path) -> Path:
    """An MP4 with B-frames copied into a transport stream (``-c copy``)."""
    _ffmpeg("-i", _indexed_mp4(path.with_suffix(".source.mp4"), bframes=3), "-c", "copy", "-f", "mpegts", path)
    return path


def bframes_flv(path: Path) -> Path:
    """H.264 with B-frames copied into FLV, whose header counts the duration from the first decode time, two
    frames before the first frame is shown (2.48 s for these 2.4 s)."""
    source = clips.constant_rate_clip(path.with_suffix(".source.mp4"), 60, 25, (160, 120), gop=25, bframes=3).path
    _ffmpeg("-i", source, "-c", "copy", path)
    return path


def duplicate_pts_mp4(path: Path) -> Path:
    """Issue 21's file: frames 0-11 re-timed 0.05 s apart in a 1/12 s clock, so some share a timestamp."""
    source = _indexed_mp4(path.with_suffix(".source.mp4"))
    retime = "setpts='if(lt(N,12),N*0.05/TB,(N*0.2)/TB)'"
    _ffmpeg("-i", source, "-vf", retime, "-fps_mode", "passthrough", "-c:v", "libx264", "-crf", "18", path)
    return path


def joined_ts(path: Path, half: int = 12, splice: bool = True) -> Path:
    """Two recordings of ``half`` frames, each with its clock starting at 0, spliced into one transport
    stream (continuity counters carried on: no gap for the demuxer to flag), as a clock reset gives.
    ``splice=False`` joins the files byte for byte (``cat a.ts b.ts``): the counters then jump at the join."""
    times = [Fraction(i, 12) for i in range(half)]
    parts = []
    for number in range(2):
        images = (index_image(i, *_CLIP["size"]) for i in range(number * half, (number + 1) * half))
        part = clips.write_frames(path.with_suffix(f".part{number}.ts"), images, times, gop=8, bframes=3)
        parts.append(part.path.read_bytes())
    path.write_bytes(splice_transport_streams(*parts) if splice else b"".join(parts))
    return path


# -- files that start mid-GOP (issue 21) ---------------------------------------

#: The sources cut: 3 s at 12 fps, 160x120, a keyframe every 8 frames.
_SOURCE = {**_CLIP, "num_frames": 36}


def _packet_positions(path: Path) -> list[tuple[int, bool]]:
    """(byte position, keyframe) of each video packet, in decode order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(packet.pos, packet.is_keyframe) for packet in container.demux(stream) if packet.size]


def _cut_bytes(source: Path, path: Path, after_keyframe: int, offset: int) -> Path:
    """``source`` from ``offset`` bytes into the packet ``after_keyframe`` packets after its first keyframe."""
    positions = _packet_positions(source)
    first = next(i for i, (_, keyframe) in enumerate(positions) if keyframe)
    path.write_bytes(source.read_bytes()[positions[first + after_keyframe][0] + offset :])
    return path


def mid_gop_ts(path: Path) -> Path:
    """H.264 with B-frames in a transport stream, cut as ``dd bs=188 skip=N`` does inside the first GOP: the
    first TS packet continues a picture begun before the cut, and the pictures up to the next keyframe (with
    the parameter sets it brings) cannot be decoded."""
    source = clips.constant_rate_clip(path.with_suffix(".source.ts"), gop=8, bframes=3, **_SOURCE).path
    return _cut_bytes(source, path, after_keyframe=3, offset=188)


def mid_gop_long_gop_ts(path: Path) -> Path:
    """As :func:`mid_gop_ts` with a keyframe every 8 s (x264's live presets go up to 10 s): FFmpeg's stream
    probe looks 7 s into a transport stream, so it finds no parameter sets and every packet before the
    keyframe fails to decode. 28 frames are left of 124 packets."""
    source = clips.constant_rate_clip(path.with_suffix(".source.mp4"), 124, 12, (160, 120), gop=96, bframes=3).path
    remuxed = path.with_suffix(".source.ts")
    _ffmpeg("-i", source, "-c", "copy", "-f", "mpegts", remuxed)
    return _cut_bytes(remuxed, path, after_keyframe=2, offset=188)


def mid_gop_mpeg2_ts(path: Path) -> Path:
    """Open-GOP MPEG-2 in a transport stream, cut at a byte that is no TS packet boundary (the demuxer
    resyncs), inside the first GOP."""
    source = clips.constant_rate_clip(path.with_suffix(".source.mp4"), gop=8, bframes=2, **_SOURCE).path
    encoded = path.with_suffix(".source.ts")
    _ffmpeg("-i", source, "-c:v", "mpeg2video", "-bf", "2", "-g", "8", "-q:v", "2", "-f", "mpegts", encoded)
    return _cut_bytes(encoded, path, after_keyframe=2, offset=1001)


def open_gop_copy_cut_ts(path: Path) -> Path:
    """``ffmpeg -ss 1 -i mpeg2.ts -c copy``: it starts at an I picture, whose leading B pictures (after it in
    decode order) refer to the GOP that was cut away."""
    source = clips.constant_rate_clip(path.with_suffix(".source.mp4"), gop=8, bframes=2, **_SOURCE).path
    encoded = path.with_suffix(".source.ts")
    _ffmpeg("-i", source, "-c:v", "mpeg2video", "-bf", "2", "-g", "8", "-q:v", "2", "-f", "mpegts", encoded)
    _ffmpeg("-ss", "1", "-i", encoded, "-c", "copy", "-f", "mpegts", path)
    return path


def copy_cut(path: Path) -> Path:
    """``ffmpeg -i x.mp4 -ss 0.25 -c copy -copyinkf`` into the container ``path`` names (MP4, Matroska, FLV):
    the file starts with the non-key packets from a quarter second on."""
    source = clips.constant_rate_clip(path.with_suffix(".source.mp4"), gop=8, bframes=3, **_SOURCE).path
    _ffmpeg("-i", source, "-ss", "0.25", "-c", "copy", "-copyinkf", path)
    return path


def edit_list_mp4(path: Path) -> Path:
    """``ffmpeg -ss 0.5 -i x.mp4 -c copy``: the copy starts at the keyframe before half a second, and an edit
    list hides the packets up to there (decoded as references, never shown)."""
    source = clips.constant_rate_clip(path.with_suffix(".source.mp4"), gop=8, bframes=3, **_SOURCE).path
    _ffmpeg("-ss", "0.5", "-i", source, "-c", "copy", path)
    return path


def splice_transport_streams(first: bytes, second: bytes) -> bytes:
    """``second`` after ``first``, its continuity counters carried on from ``first``'s (no packet seems lost)."""
    counters: dict[int, int] = {}

    def carried_on(data: bytes, rewrite: bool) -> bytes:
        out = bytearray(data)
        for at in range(0, len(out), 188):
            pid = ((out[at + 1] & 0x1F) << 8) | out[at + 2]
            if not out[at + 3] & 0x10:
                continue  # no payload: the counter does not advance
            if rewrite and pid in counters:
                out[at + 3] = (out[at + 3] & 0xF0) | ((counters[pid] + 1) % 16)
            counters[pid] = out[at + 3] & 0x0F
        return bytes(out)

    carried_on(first, rewrite=False)
    return first + carried_on(second, rewrite=True)


def rotated_45_mp4(path: Path, num_frames: int = 12, size: tuple[int, int] = (160, 120)) -> Path:
    """H.264 whose display matrix turns it 45 degrees counter-clockwise (``ffmpeg`` turns such frames
    with its ``rotate`` filter)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(45)
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(index_image(index, *size), format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# -- FFmpeg's frames: the reference ------------------------------------------


def ffmpeg_frames(path: Path) -> np.ndarray:
    """Every frame ``ffmpeg -i path -fps_mode passthrough`` outputs, as ``(n, h, w, 3)`` RGB."""
    assert FFMPEG and FFPROBE, NO_FFMPEG
    width, height = _ffprobe_size(path, "stream")
    if not width:  # the stream probe found no parameter sets (a transport stream that starts mid-GOP)
        width, height = _ffprobe_size(path, "frame")
    # (any rate of packets that fail to decode is FFmpeg's reading too: those of a file that starts mid-GOP)
    raw = subprocess.run(
        [FFMPEG, "-v", "error", "-max_error_rate", "1", "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough"]
        + ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def _ffprobe_size(path: Path, section: str) -> tuple[int, int]:
    """The first video stream's (or its first frame's) width and height as ``ffprobe`` reports them."""
    size = subprocess.run(
        [FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries", f"{section}=width,height"]
        + ["-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # (a transport stream lists its streams under each program too: the first line is enough)
    width, height = (int(v) for v in size.split()[0].split(",")[:2])
    return width, height


def ffprobe_packets(path: Path) -> int:
    """How many packets the first video stream holds (``ffprobe -count_packets``)."""
    assert FFPROBE, NO_FFMPEG
    text = subprocess.run(
        [FFPROBE, "-v", "error", "-select_streams", "v:0", "-count_packets"]
        + ["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(text.split()[0].strip(","))


def ffprobe_times(path: Path) -> list[float | None]:
    """Each frame's best-effort timestamp in seconds, as ``ffprobe -show_frames`` reports it (None: N/A)."""
    assert FFPROBE, NO_FFMPEG
    text = subprocess.run(
        [FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_frames"]
        + ["-show_entries", "frame=best_effort_timestamp_time", "-of", "default=nw=1", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = re.findall(r"^best_effort_timestamp_time=(\S+)$", text, re.MULTILINE)
    return [None if value == "N/A" else float(value) for value in found]

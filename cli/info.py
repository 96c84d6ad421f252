"""``garvideo info VIDEO``: what a video is (size, rotation, frame rate, frames, duration, codec)."""

from __future__ import annotations

import json

import click

from .common import reports_warnings


def _describe(info) -> list[tuple[str, str]]:
    size = f"{info.width}x{info.height}"
    if info.rotation:
        size += (
            f" as displayed (stored {info.coded_width}x{info.coded_height}, turned {info.rotation} degrees clockwise)"
        )
    frames = f"{info.num_frames}" + ("" if info.num_frames_exact else " (estimated: the stream has no timestamps)")
    fps = f"{info.fps:.3f}" + (" average, variable frame rate" if info.variable_frame_rate else "")
    codec = info.codec + (f" ({info.pixel_format})" if info.pixel_format else "")
    rows = [
        ("size", size),
        ("frames", frames),
        ("fps", fps),
        ("duration", f"{info.duration:.3f} s"),
        ("codec", codec),
        ("container", info.container),
        ("keyframes", str(info.keyframes)),
        ("audio", "yes" if info.has_audio else "no"),
    ]
    if info.bit_rate:
        rows.append(("bit rate", f"{info.bit_rate / 1000:.0f} kbit/s"))
    return rows


@click.command("info")
@click.argument("video", type=click.Path(dir_okay=True, path_type=str))
@click.option(
    "--fps",
    type=float,
    default=None,
    metavar="RATE",
    help="Frame rate of a frame folder, which carries none (default 30); video files carry their own.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the facts as one JSON object.")
@reports_warnings
def info_command(video: str, fps: float | None, as_json: bool) -> None:
    """Print a video's facts: displayed size, rotation, frame rate, frame count, duration, codec.

    VIDEO is a video file or a folder of frame images (read at --fps). The
    frame count and duration come from the video's packets, so they are
    exact for variable-frame-rate clips; a truncated file is reported with a
    warning on stderr.
    """
    from garvideo.video import video_info  # imported here: `garvideo --help` stays fast

    info = video_info(video, fps=fps)
    if as_json:
        click.echo(json.dumps(info.to_dict()))
        return
    click.echo(info.path)
    for label, value in _describe(info):
        click.echo(f"  {label:<10} {value}")

"""The overlay renderer: size, frame count and timestamps kept; masks, boxes and captions drawn where they belong."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from garvideo.errors import GarvideoError, InvalidInputError
from garvideo.outputs.overlay import (
    MAX_CAPTION_SHARE,
    PALETTE,
    OverlayError,
    region_colour,
    render_overlay,
)
from garvideo.outputs.subtitles import Cue
from garvideo.testing.clips import moving_object_clip, odd_size_clip, rotated_clip, variable_rate_clip
from garvideo.tracking import Track, TrackFrame
from garvideo.video import open_video

FPS = 12
FRAMES = 24


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """An object crossing the picture and leaving it half-way (frame 12); a striped square stays."""
    return moving_object_clip(
        tmp_path_factory.mktemp("overlay") / "leaving.mp4",
        num_frames=FRAMES,
        fps=FPS,
        leaves=True,
        second_object=True,
    )


def truth_tracks(clip, frames=None) -> list[Track]:
    frames = range(clip.num_frames) if frames is None else frames
    return [
        Track.from_masks(obj.name, {i: obj.masks[i] for i in frames}, times=clip.times, obj_id=k + 1)
        for k, obj in enumerate(clip.objects)
    ]


def decoded(path) -> list[np.ndarray]:
    with open_video(path) as reader:
        return [f.image.astype(np.float32) for f in reader.iter_frames()]


@pytest.fixture(scope="module")
def source_frames(clip):
    return decoded(clip.path)


@pytest.fixture(scope="module")
def drawn(clip, tmp_path_factory):
    """The clip with both ground-truth tracks drawn and no caption."""
    out = render_overlay(clip.path, tmp_path_factory.mktemp("drawn") / "drawn.mp4", truth_tracks(clip), progress=False)
    return decoded(out)


def shrink(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` eroded by ``pixels`` (so outlines and chroma bleeding at the edge are left out)."""
    out = mask.copy()
    for _ in range(pixels):
        out[1:-1, 1:-1] = out[1:-1, 1:-1] & out[:-2, 1:-1] & out[2:, 1:-1] & out[1:-1, :-2] & out[1:-1, 2:]
        out[[0, -1], :] = False
        out[:, [0, -1]] = False
    return out


def far_from(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Pixels more than ``pixels`` away (in x or y) from every pixel of ``mask``."""
    near = np.zeros_like(mask)
    ys, xs = np.nonzero(mask)
    if ys.size:
        near[max(0, ys.min() - pixels) : ys.max() + pixels + 1, max(0, xs.min() - pixels) : xs.max() + pixels + 1] = (
            True
        )
    return ~near


def toward(before: np.ndarray, after: np.ndarray, where: np.ndarray, colour) -> float:
    """How much closer to ``colour`` the pixels ``where`` got (mean RGB distance, before minus after)."""
    target = np.asarray(colour, dtype=np.float32)
    return float(
        np.linalg.norm(before[where] - target, axis=1).mean() - np.linalg.norm(after[where] - target, axis=1).mean()
    )


# ---------------------------------------------------------------------- the file


def test_output_keeps_size_frame_count_and_times(clip, tmp_path):
    out = render_overlay(clip.path, tmp_path / "sub" / "o.mp4", truth_tracks(clip), [Cue(0, 1, "hi")], progress=False)
    assert out == tmp_path / "sub" / "o.mp4"
    with open_video(clip.path) as source, open_video(out) as result:
        assert (result.width, result.height) == (source.width, source.height) == (clip.width, clip.height)
        assert result.num_frames == source.num_frames == FRAMES
        np.testing.assert_allclose(result.timeline.times, source.timeline.times, atol=1e-6)
        assert result.duration == pytest.approx(source.duration, abs=1e-3)
        assert result.info.codec in ("h264", "mpeg4")
    assert [p.name for p in out.parent.iterdir()] == ["o.mp4"]  # no temporary file left beside it


def test_odd_size_clip_keeps_its_size(tmp_path):
    truth = odd_size_clip(tmp_path / "odd.mp4", size=(97, 53), num_frames=10)
    mask = np.zeros((53, 97), bool)
    mask[10:31, 40:71] = True
    track = Track.from_masks("box", {i: mask for i in range(10)}, fps=15)
    out = render_overlay(truth.path, tmp_path / "odd.overlay.mp4", [track], [Cue(0, 1, "odd")], progress=False)
    with open_video(out) as result:
        assert (result.width, result.height, result.num_frames) == (97, 53, 10)
        frame = result.frame(4).image.astype(np.float32)
    with open_video(truth.path) as source:
        before = source.frame(4).image.astype(np.float32)
    assert toward(before, frame, shrink(mask, 3), PALETTE[0]) > 20


def test_fallback_codec_keeps_size_count_and_times(tmp_path):
    # MPEG-4 Part 2 is what builds without libx264 get; it takes odd sizes in 4:2:0.
    truth = odd_size_clip(tmp_path / "odd.mp4", size=(97, 53), num_frames=10)
    out = render_overlay(truth.path, tmp_path / "odd.mpeg4.mp4", codec="mpeg4", progress=False)
    with open_video(out) as result:
        assert (result.width, result.height, result.num_frames, result.info.codec) == (97, 53, 10, "mpeg4")
        np.testing.assert_allclose(result.timeline.times, truth.times, atol=1e-6)


def test_rotated_clip_is_written_upright_at_its_displayed_size(tmp_path):
    truth = rotated_clip(tmp_path / "rot.mp4", rotation=90, num_frames=12, size=(48, 64))
    out = render_overlay(truth.path, tmp_path / "rot.overlay.mp4", progress=False)
    with open_video(out) as result, open_video(truth.path) as source:
        assert (result.width, result.height, result.num_frames) == (48, 64, 12)
        assert result.info.rotation == 0
        # Nothing drawn: the output is the displayed picture itself, up to codec noise.
        difference = np.abs(result.frame(5).image.astype(np.float32) - source.frame(5).image.astype(np.float32))
        assert difference.mean() < 3


def test_variable_frame_rate_is_preserved(tmp_path):
    truth = variable_rate_clip(tmp_path / "vfr.mp4", num_frames=18)
    out = render_overlay(truth.path, tmp_path / "vfr.overlay.mp4", progress=False)
    with open_video(out) as result:
        assert result.num_frames == 18
        np.testing.assert_allclose(result.timeline.times, truth.times, atol=1e-6)
        assert result.info.variable_frame_rate
        assert result.duration == pytest.approx(truth.duration, abs=1e-3)


def test_an_open_reader_is_accepted_and_left_open(clip, tmp_path):
    with open_video(clip.path) as reader:
        render_overlay(reader, tmp_path / "o.mkv", progress=False)
        assert reader.frame(3).index == 3  # still usable
    with open_video(tmp_path / "o.mkv") as result:
        assert result.num_frames == FRAMES


def test_memory_stays_bounded_by_a_few_frames(tmp_path):
    # tracemalloc sees every drawn frame (a numpy copy of the decoded one): holding them all would show.
    long = moving_object_clip(tmp_path / "long.mp4", num_frames=160, fps=12)
    tracks = truth_tracks(long)
    whole_video = long.num_frames * long.width * long.height * 3
    render_overlay(long.path, tmp_path / "warm.mp4", tracks, [Cue(0, 100, "caption")], progress=False)  # caches
    tracemalloc.start()
    try:
        render_overlay(long.path, tmp_path / "o.mp4", tracks, [Cue(0, 100, "caption")], progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < whole_video / 8, f"peak {peak / 2**20:.1f} MiB for a {whole_video / 2**20:.1f} MiB video"


# ---------------------------------------------------------------------- regions


def test_mask_is_tinted_with_its_colour_and_far_pixels_are_unchanged(clip, source_frames, drawn):
    frame = 6
    for position, obj in enumerate(clip.objects):
        core = shrink(obj.masks[frame], 3)
        assert core.sum() > 30
        assert toward(source_frames[frame], drawn[frame], core, region_colour(position)) > 30, obj.name
    anywhere = clip.objects[0].masks[frame] | clip.objects[1].masks[frame]
    far = far_from(anywhere, 20)
    assert far.sum() > 2000
    assert np.abs(drawn[frame][far] - source_frames[frame][far]).mean() < 3


def test_fill_is_the_alpha_blend_of_frame_and_colour_within_one_level():
    """The tint inside a mask is ``frame * (1 - a) + colour * a`` per channel (rounding may differ by 1)."""
    from garvideo.outputs.drawing import FrameStyle, RegionPainter, draw_frame

    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (180, 320, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:180, 0:320]
    mask = ((xx - 150) / 90) ** 2 + ((yy - 100) / 50) ** 2 <= 1
    track = Track.from_masks("blob", {0: mask}, fps=1)
    for opacity in (0.0, 0.4, 0.75, 1.0):
        style = FrameStyle.for_frame(320, 180, opacity)
        canvas = draw_frame(image, 0, [RegionPainter(track, PALETTE[0])], None, style)
        inner = shrink(mask, style.line + 2)  # away from the outline drawn on the mask's edge
        inner[:40] = False  # and from the name label above the box
        expected = image[inner] * (1 - opacity) + np.asarray(PALETTE[0], np.float64) * opacity
        assert np.abs(canvas[inner].astype(np.float64) - expected).max() <= 1.0
        outside = far_from(mask, style.line + 2)
        outside[: np.nonzero(mask)[0].min()] = False  # the label sits above the box
        np.testing.assert_array_equal(canvas[outside], image[outside])  # nothing tinted outside the mask
    assert image.flags.writeable and not np.shares_memory(canvas, image)  # the decoded frame is left as it was


def test_each_region_has_its_own_colour(clip, source_frames, drawn):
    # The object's pixels move toward its colour, not toward the square's (and vice versa).
    frame = 4
    obj, square = (shrink(o.masks[frame], 3) for o in clip.objects)
    assert toward(source_frames[frame], drawn[frame], obj, PALETTE[0]) > toward(
        source_frames[frame], drawn[frame], obj, PALETTE[1]
    )
    assert toward(source_frames[frame], drawn[frame], square, PALETTE[1]) > toward(
        source_frames[frame], drawn[frame], square, PALETTE[0]
    )
    assert region_colour(len(PALETTE)) == PALETTE[0]


def test_box_outline_is_drawn_in_the_regions_colour(clip, source_frames, drawn):
    frame = 6
    x1, y1, x2, _ = clip.objects[0].boxes[frame]
    # The box's top edge, away from the ellipse (whose top touches the box only at its middle).
    edge = np.zeros((clip.height, clip.width), bool)
    edge[y1, x1 : x1 + (x2 - x1) // 4] = True
    assert toward(source_frames[frame], drawn[frame], edge, PALETTE[0]) > 40


def test_a_region_that_is_not_visible_draws_nothing(clip, source_frames, drawn):
    gone = [i for i, visible in enumerate(clip.objects[0].visible) if not visible]
    assert gone, "the clip's object should leave the picture"
    frame = gone[-1]
    square = clip.objects[1].masks[frame]
    away = far_from(square, 20)  # everywhere but the square's (still visible) drawing
    assert np.abs(drawn[frame][away] - source_frames[frame][away]).mean() < 3
    # ... while on a visible frame the same area holds the object's drawing.
    visible_frame = 6
    assert (
        np.abs(drawn[visible_frame] - source_frames[visible_frame])[
            far_from(clip.objects[1].masks[visible_frame], 20)
        ].mean()
        > 3
    )


def test_a_strided_track_is_drawn_within_half_its_stride(clip, source_frames, tmp_path):
    [obj, _] = truth_tracks(clip, frames=range(0, 9, 4))  # frames 0, 4, 8: stride 4, reach 2
    out = render_overlay(clip.path, tmp_path / "strided.mp4", [obj], progress=False)
    frames = decoded(out)
    entry_mask = shrink(clip.objects[0].masks[8], 3)
    # Frame 10 is 2 frames after the last tracked one: drawn with frame 8's mask.
    assert toward(source_frames[10], frames[10], entry_mask, PALETTE[0]) > 30
    # Frame 11 is 3 frames after it: beyond half the stride, nothing is drawn.
    assert np.abs(frames[11] - source_frames[11]).mean() < 3
    # Frame 6 lies between two tracked frames (tie: the earlier, frame 4).
    assert toward(source_frames[6], frames[6], shrink(clip.objects[0].masks[4], 3), PALETTE[0]) > 30


def test_masks_of_another_size_are_refused(clip, tmp_path):
    track = Track.from_masks("small", {0: np.ones((10, 10), bool)}, fps=FPS)
    with pytest.raises(InvalidInputError, match="10x10 masks"):
        render_overlay(clip.path, tmp_path / "o.mp4", [track], progress=False)
    assert not (tmp_path / "o.mp4").exists()


# ---------------------------------------------------------------------- captions


def bottom_rows_darkness(before: np.ndarray, after: np.ndarray, rows: int) -> float:
    """Mean brightness of the bottom ``rows`` rows after, as a share of before."""
    return float(after[-rows:].mean() / before[-rows:].mean())


def dark_band_height(before: np.ndarray, after: np.ndarray) -> int:
    """Rows from the first much darker row down to the bottom (the caption band; nothing else is drawn)."""
    # Per row, a low percentile of the pixels: caption text brightens many band pixels, rarely most of a row.
    ratio = np.percentile(after.mean(axis=2) / np.maximum(before.mean(axis=2), 1), 20, axis=1)
    dark = np.flatnonzero(ratio < 0.6)
    return int(after.shape[0] - dark[0]) if dark.size else 0


def test_a_caption_shows_only_during_its_cue(clip, source_frames, tmp_path):
    cue = Cue(0.5, 1.0, "the object moves right")  # frames 6..11 at 12 fps
    out = render_overlay(clip.path, tmp_path / "caption.mp4", captions=[cue], progress=False)
    frames = decoded(out)
    for index, (before, after) in enumerate(zip(source_frames, frames)):
        during = cue.start <= clip.times[index] < cue.end
        ratio = bottom_rows_darkness(before, after, 4)
        if during:
            assert ratio < 0.6, index
            band = dark_band_height(before, after)
            text = after[-band:].max(axis=2)
            assert (text > 200).sum() > 20, "white caption text should be drawn on the band"
        else:
            assert ratio == pytest.approx(1.0, abs=0.05), index
            assert np.abs(after - before).mean() < 3, index


def test_long_captions_wrap_and_stay_within_a_third_of_the_frame(clip, source_frames, tmp_path):
    short = Cue(0.0, 2.0, "short")
    long = Cue(0.0, 2.0, " ".join(["a long description that keeps going"] * 20))
    out_short = decoded(render_overlay(clip.path, tmp_path / "short.mp4", captions=[short], progress=False))
    out_long = decoded(render_overlay(clip.path, tmp_path / "long.mp4", captions=[long], progress=False))
    one_line = dark_band_height(source_frames[3], out_short[3])
    wrapped = dark_band_height(source_frames[3], out_long[3])
    assert one_line > 0
    assert wrapped > 1.5 * one_line  # several lines
    assert wrapped <= clip.height * MAX_CAPTION_SHARE + 1


def test_cues_at_the_same_time_are_stacked(clip, source_frames, tmp_path):
    first, second = Cue(0.0, 1.0, "object: moves"), Cue(0.5, 1.5, "square: slides")
    frames = decoded(render_overlay(clip.path, tmp_path / "two.mp4", captions=[first, second], progress=False))
    alone, together = 2, 8  # t = 0.17 s (first only) and t = 0.67 s (both)
    assert dark_band_height(source_frames[together], frames[together]) > 1.5 * dark_band_height(
        source_frames[alone], frames[alone]
    )


def test_non_ascii_captions_and_names_are_drawn(clip, tmp_path):
    mask = clip.objects[0].masks
    track = Track.from_masks("chien \u00e9t\u00e9 \u72ac", {i: mask[i] for i in range(4)}, fps=FPS)
    out = render_overlay(clip.path, tmp_path / "u.mp4", [track], [Cue(0, 1, "caf\u00e9 \u2014 \u72ac")], progress=False)
    with open_video(out) as result:
        assert result.num_frames == FRAMES
    # what the Hershey font is given: accents stripped, typographic dashes plain, the rest marked
    from garvideo.outputs.drawing import _ascii

    assert _ascii("caf\u00e9 \u2014 \u72ac") == "cafe - ?"
    assert _ascii("chien \u00e9t\u00e9") == "chien ete"


# ---------------------------------------------------------------------- failures


def test_failure_mid_render_leaves_no_file_and_keeps_an_older_one(clip, tmp_path):
    target = tmp_path / "o.mp4"
    target.write_bytes(b"an older overlay")
    with open_video(clip.path) as reader:
        frames = reader.iter_frames

        def failing(*args, **kwargs):
            for frame in frames(*args, **kwargs):
                if frame.index == 5:
                    raise RuntimeError("decoder died")
                yield frame

        reader.iter_frames = failing
        with pytest.raises(RuntimeError, match="decoder died"):
            render_overlay(reader, target, truth_tracks(clip), progress=False)
    assert target.read_bytes() == b"an older overlay"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]


def test_failure_mid_render_of_a_new_file_leaves_nothing(clip, tmp_path):
    # A track whose mask on frame 5 is damaged (as from a corrupt tracks file) fails when frame 5 is drawn.
    good = truth_tracks(clip)[0]
    broken = TrackFrame(
        index=5,
        time=clip.times[5],
        rle={"size": [clip.height, clip.width], "counts": "!!"},
        box=(0, 0, 5, 5),
        score=1.0,
    )
    track = Track(good.name, good.obj_id, tuple(f for f in good.frames if f.index != 5) + (broken,))
    with pytest.raises(InvalidInputError, match="malformed RLE"):
        render_overlay(clip.path, tmp_path / "new.mp4", [track], progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["o.avi", "o.txt", "o"])
def test_unsupported_suffix_is_a_clear_error(clip, tmp_path, name):
    with pytest.raises(OverlayError, match=r"\.mp4"):
        render_overlay(clip.path, tmp_path / name, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_folder_that_cannot_be_created_is_a_clear_error(clip, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(GarvideoError, match="cannot create the folder"):
        render_overlay(clip.path, blocker / "sub" / "o.mp4", progress=False)


def test_output_that_is_a_folder_or_the_input_is_refused(clip, tmp_path):
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(OverlayError, match="is a folder"):
        render_overlay(clip.path, tmp_path / "dir.mp4", progress=False)
    with pytest.raises(OverlayError, match="overwrite its own input"):
        render_overlay(clip.path, clip.path, progress=False)
    with open_video(clip.path) as reader, pytest.raises(OverlayError, match="overwrite its own input"):
        render_overlay(reader, Path(clip.path), progress=False)


def test_missing_video_and_unknown_codec_are_clear_errors(clip, tmp_path):
    with pytest.raises(GarvideoError):
        render_overlay(tmp_path / "missing.mp4", tmp_path / "o.mp4", progress=False)
    with pytest.raises(OverlayError, match="no video encoder"):
        render_overlay(clip.path, tmp_path / "o.mp4", codec="not-a-codec", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_can_be_turned_off(clip, tmp_path, capsys):
    render_overlay(clip.path, tmp_path / "quiet.mp4", progress=False)
    assert capsys.readouterr().err == ""
    render_overlay(clip.path, tmp_path / "loud.mp4", progress=True)
    assert "overlay" in capsys.readouterr().err

"""The generated test clips themselves: index code, ground truth of the moving-object clip."""

from __future__ import annotations

import numpy as np
import pytest

from garvideo.masks import mask_bbox
from garvideo.testing import clips
from garvideo.video import open_video


@pytest.mark.parametrize("size", [(64, 48), (97, 53), (1280, 720)])
def test_index_code_round_trip(size):
    for index in (0, 1, 2**clips.CODE_BITS - 1, 12345):
        assert clips.read_index(clips.index_image(index, *size)) == index


def test_index_code_reads_the_other_frame_as_a_different_index():
    assert clips.read_index(clips.index_image(5, 64, 48)) != 6
    with pytest.raises(ValueError):
        clips.index_image(2**clips.CODE_BITS, 64, 48)


def test_write_frames_rejects_bad_arguments(tmp_path):
    images = [clips.index_image(i, 64, 48) for i in range(3)]
    with pytest.raises(ValueError, match="increase"):
        clips.write_frames(tmp_path / "a.mp4", images, [0, 1, 1])
    with pytest.raises(ValueError, match="rotation"):
        clips.write_frames(tmp_path / "b.mp4", images, [0, 1, 2], rotation=45)


@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    folder = tmp_path_factory.mktemp("moving")
    return clips.moving_object_clip(folder / "moving.mp4", num_frames=24, leaves=True, second_object=True)


def test_moving_object_truth_is_consistent(moving):
    assert moving.num_frames == 24
    first, second = moving.objects
    assert first.masks.shape == (24, moving.height, moving.width)
    for masks, boxes, visible in (
        (first.masks, first.boxes, first.visible),
        (second.masks, second.boxes, second.visible),
    ):
        for mask, box, seen in zip(masks, boxes, visible):
            assert box == mask_bbox(mask)
            assert seen == bool(mask.any())
    # The object crosses to the right and is gone from the middle on.
    assert first.visible[:10] == (True,) * 10 and not any(first.visible[12:])
    centers = [np.nonzero(m)[1].mean() for m in first.masks[:10]]
    assert all(b > a for a, b in zip(centers, centers[1:]))
    # The second object never overlaps the first and moves the other way.
    assert not (first.masks & second.masks).any()
    assert all(second.visible)
    assert second.boxes[-1][0] < second.boxes[0][0]


def test_moving_object_pixels_follow_the_masks(moving):
    with open_video(moving.path, backend="pyav") as video:
        assert (video.width, video.height, video.num_frames) == (moving.width, moving.height, moving.num_frames)
        frames = video.read([0, 6, 20])
    for frame in frames:
        mask = moving.masks[frame.index]
        image = frame.image.astype(int)
        if mask.any():
            inner = image[mask]
            # The object is red-dominant; the background is not.
            assert (inner[:, 0] - inner[:, 2]).mean() > 60
            assert abs(frame.time - moving.times[frame.index]) < 1e-9
        redness = image[..., 0] - image[..., 2]
        assert redness[~mask & ~moving.objects[1].masks[frame.index]].mean() < 40


def test_moving_object_clip_is_deterministic(tmp_path):
    a = clips.moving_object_clip(tmp_path / "a.mp4", num_frames=6, seed=3)
    b = clips.moving_object_clip(tmp_path / "b.mp4", num_frames=6, seed=3)
    assert np.array_equal(a.masks, b.masks)
    assert a.path.read_bytes() == b.path.read_bytes()
    with pytest.raises(ValueError, match="even"):
        clips.moving_object_clip(tmp_path / "c.mp4", size=(161, 120))

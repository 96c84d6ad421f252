import numpy as np
import pytest

from garvideo import InvalidInputError
from garvideo.masks import decode_rle, encode_rle, mask_bbox, rle_area


def _random_masks():
    rng = np.random.default_rng(0)
    yield np.zeros((5, 7), bool)
    yield np.ones((4, 3), bool)
    yield rng.random((37, 53)) > 0.5
    m = np.zeros((120, 90), bool)
    m[10:80, 20:70] = True  # long runs exercise multi-character counts
    yield m
    yield rng.random((1, 1)) > 0.5


@pytest.mark.parametrize("mask", list(_random_masks()))
def test_rle_round_trip_and_matches_coco(mask):
    rle = encode_rle(mask)
    assert rle["size"] == list(mask.shape)
    np.testing.assert_array_equal(decode_rle(rle), mask)
    assert rle_area(rle) == int(mask.sum())
    mask_utils = pytest.importorskip("pycocotools.mask")
    coco = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert coco["counts"].decode("ascii") == rle["counts"]
    np.testing.assert_array_equal(mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()}), mask)


def test_decodes_real_benchmark_rle(shared_dir):
    import json

    items = json.loads((shared_dir / "data/gar-bench-vqa/GAR-Bench-VQA.json").read_text())
    rle = items[0]["mask_rles"][0]
    mask = decode_rle(rle)
    assert mask.shape == tuple(rle["size"])
    assert 0 < mask.sum() < mask.size
    assert encode_rle(mask)["counts"] == rle["counts"]


def test_uncompressed_counts():
    mask = decode_rle({"size": [2, 2], "counts": [1, 2, 1]})
    np.testing.assert_array_equal(mask, np.array([[False, True], [True, False]]))


@pytest.mark.parametrize(
    "rle",
    [
        {"size": [2, 2], "counts": [1, 2]},
        {"size": [2, 2]},
        {"size": [2, 2], "counts": "\x7f"},
        {"counts": "abc"},
    ],
)
def test_malformed_rle_is_a_clear_error(rle):
    with pytest.raises(InvalidInputError, match="malformed RLE"):
        decode_rle(rle)


def test_mask_bbox():
    m = np.zeros((10, 20), bool)
    assert mask_bbox(m) is None
    m[2:5, 3:9] = True
    assert mask_bbox(m) == (3, 2, 8, 4)


def test_mask_images_mean_the_same_region_everywhere(tmp_path):
    from PIL import Image

    from garvideo.masks import read_mask_image
    from garvideo.model.images import load_mask
    from garvideo.tracking import load_mask_image

    index = np.zeros((6, 8), np.uint8)
    index[1:4, 2:5] = 1
    palette = Image.fromarray(index, mode="P")
    palette.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)  # index 1 is drawn black
    palette.save(tmp_path / "p.png")
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[1:4, 2:5, 2] = 200  # blue only: dark as grey
    Image.fromarray(rgb).save(tmp_path / "c.png")
    for name in ("p.png", "c.png"):
        expected = read_mask_image(tmp_path / name)
        assert expected.sum() == 9
        np.testing.assert_array_equal(load_mask(tmp_path / name), expected)
        np.testing.assert_array_equal(load_mask_image(tmp_path / name), expected)
    with pytest.raises(InvalidInputError, match="mask image not found"):
        read_mask_image(tmp_path / "none.png")

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

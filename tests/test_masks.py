import numpy as np
import pytest
from pycocotools import mask as coco_mask

from garvideo import InvalidInputError
from garvideo.masks import decode_rle, encode_rle, mask_bbox, rle_area


def _reference_counts_string(mask: np.ndarray) -> str:
    """COCO's compressed counts written out from its definition (maskApi.c, rleToString), for comparison.

    Runs of the column-major mask starting with background; each run minus the
    run two places before (from the fourth on) in 5-bit groups, low first,
    0x20 marking that more follow, each group + 48 as a character.
    """
    flat = np.concatenate(([False], mask.ravel(order="F"), [not mask.ravel(order="F")[-1:].any()]))
    changes = np.flatnonzero(flat[1:] != flat[:-1])  # where each run ends, starting with background
    runs = np.diff(np.concatenate(([0], changes))).tolist()
    out = []
    for i, run in enumerate(runs):
        x = run - runs[i - 2] if i > 2 else run
        while True:
            group = x & 0x1F
            x >>= 5
            more = x != -1 if group & 0x10 else x != 0
            out.append(chr(group + (0x20 if more else 0) + 48))
            if not more:
                break
    return "".join(out)


def _random_masks():
    rng = np.random.default_rng(0)
    yield np.zeros((5, 7), bool)
    yield np.ones((4, 3), bool)
    yield rng.random((37, 53)) > 0.5
    m = np.zeros((120, 90), bool)
    m[10:80, 20:70] = True  # long runs exercise multi-character counts
    yield m
    yield rng.random((1, 1)) > 0.5
    big = np.zeros((720, 1280), bool)
    big[100:600, 200:1100] = rng.random((500, 900)) > 0.02  # counts past 2**20: differences of both signs
    yield big


@pytest.mark.parametrize("mask", list(_random_masks()), ids=lambda m: "x".join(map(str, m.shape)))
def test_rle_round_trip_and_matches_coco(mask):
    rle = encode_rle(mask)
    assert rle["size"] == list(mask.shape)
    assert rle["counts"] == _reference_counts_string(mask)
    decoded = decode_rle(rle)
    assert decoded.dtype == bool
    np.testing.assert_array_equal(decoded, mask)
    assert rle_area(rle) == int(mask.sum())
    np.testing.assert_array_equal(decode_rle({"size": rle["size"], "counts": rle["counts"].encode()}), mask)
    # the same pixels as pycocotools' own decoder, in the same (column-major) layout
    reference = coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    assert decoded.tobytes(order="A") == reference.view(bool).tobytes(order="A")
    assert decoded.flags.f_contiguous == reference.flags.f_contiguous


def test_non_canonical_strings_still_decode():
    # Zero-length runs inside (as a converter of list counts may write) cover the mask exactly: accepted.
    counts = "2002"  # runs 2, 0, 0, 2 on a 2x2 mask
    np.testing.assert_array_equal(decode_rle({"size": [2, 2], "counts": counts}), [[False, True], [False, True]])


def test_strings_with_negative_differences_and_long_runs_decode_as_pycocotools_does():
    rng = np.random.default_rng(3)
    for _ in range(20):
        height, width = (int(v) for v in rng.integers(1, 400, size=2))
        # runs of very different lengths: differences from the run two before of both signs, 1-6 characters
        runs = rng.choice([1, 3, 40, 700, 20000], size=200).tolist()
        runs[-1] = 0
        total = height * width
        cut = np.cumsum(runs)
        runs = [r for r, c in zip(runs, cut) if c < total]
        runs.append(total - sum(runs))
        compressed = coco_mask.frPyObjects({"size": [height, width], "counts": runs}, height, width)
        expected = coco_mask.decode(compressed).view(bool)
        decoded = decode_rle({"size": [height, width], "counts": compressed["counts"].decode()})
        np.testing.assert_array_equal(decoded, expected)
        assert rle_area({"size": [height, width], "counts": compressed["counts"]}) == int(expected.sum())


def test_runs_that_do_not_cover_the_mask_are_refused():
    # pycocotools would leave the pixels after too-short runs unset (memory noise): refused, always.
    short = encode_rle(np.ones((3, 3), bool))["counts"]  # 9 pixels
    with pytest.raises(InvalidInputError, match="runs cover 9 pixels, the size 6x6 needs 36"):
        decode_rle({"size": [6, 6], "counts": short})
    with pytest.raises(InvalidInputError, match="malformed RLE"):
        decode_rle({"size": [2, 2], "counts": short})  # runs beyond the mask
    with pytest.raises(InvalidInputError, match="ends inside a run"):
        decode_rle({"size": [2, 2], "counts": "P"})  # 'P' - 48 = 32: the continuation bit, then nothing


def test_masks_of_any_layout_and_type_encode_alike():
    rng = np.random.default_rng(5)
    mask = rng.random((40, 30)) > 0.6
    expected = _reference_counts_string(mask)
    for variant in (np.asfortranarray(mask), mask.astype(np.uint8) * 7, mask.astype(np.float32), mask[:, ::1]):
        assert encode_rle(variant)["counts"] == expected
    wide = np.zeros((50, 80), bool)
    wide[5:20, ::3] = True
    assert encode_rle(wide[:, ::2])["counts"] == _reference_counts_string(wide[:, ::2])  # a strided view


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
        {"size": [2, 2], "counts": "/"},  # below the alphabet
        {"size": [2, 2], "counts": "o" * 13 + "0"},  # a run of 14 characters: more pixels than any mask
        {"size": [2, 2], "counts": "caf\u00e9"},
        {"size": [2, 2], "counts": [1, "x"]},
        {"size": [2, 2], "counts": [5, -1]},
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
    with pytest.raises(InvalidInputError, match="cannot read the mask image .*: no such file"):
        read_mask_image(tmp_path / "none.png")


def test_a_huge_mask_size_is_refused_before_anything_is_made():
    import tracemalloc

    tracemalloc.start()
    for rle in ({"size": [45000, 45000], "counts": [2024999999, 1]}, {"size": [100000, 100000], "counts": "0"}):
        with pytest.raises(InvalidInputError, match="larger than the"):
            decode_rle(rle)
        with pytest.raises(InvalidInputError, match="larger than the"):
            rle_area(rle)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 50_000_000  # a 45000x45000 mask would have been 2 GB

import json

import numpy as np
import pytest
from click.testing import CliRunner
from garvideo_cli.main import app
from PIL import Image

from garvideo import InvalidInputError
from garvideo.batch import read_manifest
from garvideo.masks import encode_rle
from garvideo.testing.selftest import prepare_selftest
from garvideo.timecode import When
from garvideo.tracking import RegionPrompt
from garvideo.tracking.marks import parse_region_prompts


def _write(path, lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_lines_parse_with_paths_relative_to_the_folder_or_the_manifest(tmp_path):
    folder = tmp_path / "videos"
    (folder / "clips").mkdir(parents=True)
    (folder / "clips" / "a.mp4").write_bytes(b"")
    lists = tmp_path / "lists"
    lists.mkdir()
    Image.fromarray(np.eye(8, dtype=np.uint8) * 255).save(lists / "m.png")
    manifest = _write(
        lists / "r.jsonl",
        [
            {"video": "clips/a.mp4", "regions": [{"name": "dog", "when": {"frame": 12}, "box": [1, 2, 30, 40]}]},
            "",
            "# a comment",
            {
                "video": "clips/a.mp4",
                "regions": [
                    {"name": "clicks", "when": {"time": 4.5}, "points": [[5, 6], [7, 8]], "labels": [1, 0]},
                    {"name": "m", "when": {"frame": 0}, "mask": "m.png"},
                    {"name": "rle", "when": {"frame": 0}, "mask": encode_rle(np.eye(8, dtype=bool))},
                ],
                "question": "Is <clicks> near <m>?",
                "options": ["yes", "no"],
            },
        ],
    )
    first, second = read_manifest(manifest)
    assert (first.number, second.number) == (1, 4)
    request = first.parse(folder, lists)
    assert request.video == folder / "clips" / "a.mp4"
    (dog,) = request.regions
    assert dog.name == "dog" and dog.box == (1, 2, 30, 40) and dog.when == When(frame=12)
    request = second.parse(folder, lists)
    clicks, mask, rle = request.regions
    assert clicks == RegionPrompt.from_points("clicks", [(5, 6), (7, 8)], When(time=4.5), labels=[1, 0])
    # a mask image's path (read relative to the manifest here) and the RLE a result file writes give one mask
    assert mask == RegionPrompt.from_mask("m", np.eye(8, dtype=bool), 0) and np.array_equal(rle.mask, mask.mask)
    assert request.question.startswith("Is") and request.options == ("yes", "no")
    # keys are stable, readable and distinct
    assert first.key.startswith("a-") and first.key != second.key
    assert [line.key for line in read_manifest(manifest)] == [first.key, second.key]


_BOX = {"name": "dog", "when": {"frame": 0}, "box": [1, 2, 3, 4]}


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not valid JSON"),
        ({"regions": []}, "'video' must be a path"),
        ({"video": "missing.mp4", "regions": [_BOX]}, "not found"),
        ({"video": "a.mp4", "regions": []}, "non-empty list"),
        (
            {"video": "a.mp4", "regions": [{"name": "dog", "box": [1, 2, 3, 4]}]},
            "region 1: region 'dog' needs \"when\"",
        ),
        # the moment is in "when", as result files write it; the message says how to write it
        (
            {"video": "a.mp4", "regions": [_BOX, {"name": "cat", "box": [1, 2, 3, 4], "frame": 0}]},
            r'line 1: region 2: region \'cat\': the moment goes in "when": write "when": \{"frame": 0\}',
        ),
        ({"video": "a.mp4", "regions": [{"box": [1, 2, 3, 4], "when": {"frame": 0}}]}, 'needs a "name"'),
        ({"video": "a.mp4", "regions": [_BOX | {"box": [4, 2, 3, 4]}]}, "x1 < x2"),
        ({"video": "a.mp4", "regions": [_BOX | {"colour": "red"}]}, "unknown keys"),
        ({"video": "a.mp4", "regions": [_BOX], "options": ["a", "b"]}, "need a 'question'"),
        # hostile lines: bounded before anything is decoded, and one line's problem only
        ("[" * 100_000 + "]" * 100_000, "line 1 is nested 100000 levels deep: at most 32 are read"),
        ('{"video": "a.mp4", "regions": [' + "9" * 5000 + "]}", "line 1: a number of 5000 characters"),
        ('{"video": "a.mp4", "regions": [1e999]}', "the number 1e999 is too large"),
        (
            {"video": "a.mp4", "regions": [_BOX], "question": "<dog>?", "options": [str(k) for k in range(27)]},
            "line 1: at most 26 options",
        ),
        (
            {"video": "a.mp4", "regions": [_BOX | {"box": None, "mask": {"size": [60000, 60000], "counts": "0"}}]},
            "line 1: region 1: its mask is 60000x60000, larger than any video frame",
        ),
        (
            {"video": "a.mp4", "regions": [{"name": "m", "mask": "nope.png", "when": {"frame": 0}}]},
            "mask 'nope.png' not found",
        ),
        (
            {"video": "a.mp4", "regions": [{"name": "m", "mask": 3, "when": {"frame": 0}}]},
            "or the path of a mask image",
        ),
        (
            {
                "video": "a.mp4",
                "regions": [{"name": "dog", "box": [1, 2, 3, 4], "when": {"frame": 0}}],
                "question": "Is <cat> ok?",
            },
            r"line 1: the question names <cat>, which is not among the given regions \(dog\)",
        ),
        (
            {
                "video": "a.mp4",
                "regions": [{"name": "dog", "box": [1, 2, 3, 4], "when": {"frame": 0}}],
                "question": "Which is <dog>?",
                "options": ["<dog>", "<cow>"],
            },
            "the question names <cow>",
        ),
    ],
)
def test_a_bad_line_fails_alone_with_a_clear_reason(tmp_path, line, message):
    (tmp_path / "a.mp4").write_bytes(b"")
    manifest = _write(tmp_path / "r.jsonl", [line])
    (item,) = read_manifest(manifest)
    with pytest.raises(InvalidInputError, match=message):
        item.parse(tmp_path, tmp_path)


def test_a_huge_mask_is_refused_before_it_is_decoded_and_a_wrong_size_once_the_frame_is_known(tmp_path, monkeypatch):
    import garvideo.tracking.prompts

    def decoding(*_args):
        raise AssertionError("the mask was decoded")

    (tmp_path / "a.mp4").write_bytes(b"")
    mask = encode_rle(np.eye(8, dtype=bool))
    line = {"video": "a.mp4", "regions": [{"name": "m", "when": {"frame": 0}, "mask": mask}]}
    Image.fromarray(np.eye(8, dtype=np.uint8) * 255).save(tmp_path / "m.png")
    image = {"video": "a.mp4", "regions": [{"name": "m", "when": {"frame": 0}, "mask": "m.png"}]}
    rle_line, image_line = read_manifest(_write(tmp_path / "r.jsonl", [line, image]))
    monkeypatch.setattr(garvideo.tracking.prompts, "decode_rle", decoding)
    with pytest.raises(InvalidInputError, match="line 1: region 1: its mask is 8x8 but the video is 16x12"):
        rle_line.parse(tmp_path, tmp_path, frame_size=(12, 16))
    with pytest.raises(InvalidInputError, match="the mask image m.png is 8x8 but the video is 16x12"):
        image_line.parse(tmp_path, tmp_path, frame_size=(12, 16))


def test_a_byte_order_mark_is_no_part_of_the_first_line(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    manifest = tmp_path / "r.jsonl"
    manifest.write_text(json.dumps({"video": "a.mp4", "regions": [_BOX]}) + "\n", encoding="utf-8-sig")
    assert manifest.read_bytes().startswith(b"\xef\xbb\xbf")
    (line,) = read_manifest(manifest)
    assert line.parse(tmp_path, tmp_path).regions[0].name == "dog"


def test_the_lines_are_checked_up_front_and_a_manifest_without_a_good_one_is_one_error(tmp_path):
    from garvideo.batch.manifest import check_lines

    (tmp_path / "a.mp4").write_bytes(b"")
    good = {"video": "a.mp4", "regions": [_BOX]}
    lines = read_manifest(_write(tmp_path / "r.jsonl", ["{not json", good, "[" * 5000 + "]" * 5000]))
    reasons = check_lines(lines, tmp_path, tmp_path, "r.jsonl")
    assert reasons[1] is None and "not valid JSON" in reasons[0] and "nested 5000 levels" in reasons[2]
    with pytest.raises(InvalidInputError, match=r"no line of r.jsonl can be run \(line 1 is not valid JSON"):
        check_lines([lines[0], lines[2]], tmp_path, tmp_path, "r.jsonl")


def test_whole_file_problems(tmp_path):
    with pytest.raises(InvalidInputError, match="no regions file"):
        read_manifest(tmp_path / "none.jsonl")
    with pytest.raises(InvalidInputError, match="holds no items"):
        read_manifest(_write(tmp_path / "empty.jsonl", ["", "# nothing"]))
    same = {"video": "a.mp4", "regions": [_BOX]}
    with pytest.raises(InvalidInputError, match="line 2 repeats line 1"):
        read_manifest(_write(tmp_path / "twice.jsonl", [same, same]))


def test_a_question_about_text_regions_is_checked_once_they_are_found(tmp_path):
    # car#2 is the second match of the phrase, a name the line cannot know before the detector runs
    (tmp_path / "a.mp4").write_bytes(b"")
    line = {"video": "a.mp4", "regions": [{"name": "car", "text": "a red car"}], "question": "Is <car#2> red?"}
    (item,) = read_manifest(_write(tmp_path / "r.jsonl", [line]))
    assert item.parse(tmp_path, tmp_path).question == "Is <car#2> red?"


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    """Tiny models and a clip (the selftest's)."""
    return prepare_selftest(tmp_path_factory.mktemp("models"))


def test_a_result_files_regions_run_again_from_a_manifest_line(material, tmp_path):
    # Every kind of region, by frame and by time, written by `garvideo describe` into its result document...
    blob = np.zeros((120, 160), bool)  # the selftest clip's frame size
    blob[30:60, 40:90] = True
    Image.fromarray(blob.astype(np.uint8) * 255).save(tmp_path / "blob.png")
    given = {
        "boxes": [material.box, "thing=20,20,70,60@1.5s"],
        "points": ["clicks=50,40;!5,5@0.25s"],
        "masks": [f"blob={tmp_path / 'blob.png'}@2"],
    }
    options = [arg for key, option in (("boxes", "--box"), ("points", "--points"), ("masks", "--mask"))
               for value in given[key] for arg in (option, value)]  # fmt: skip
    out = tmp_path / "result.json"
    models = ["--model", material.gar, "--sam2", material.sam2, "--max-new-tokens", "2", "--frames", "2", "-q"]
    result = CliRunner().invoke(
        app, [str(a) for a in ["describe", material.clip, *options, "--out", out, *models]], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    copied = [prompt for region in doc["regions"] for prompt in region["prompts"]]
    assert {p["name"] for p in copied} == {"thing", "clicks", "blob"} and len(copied) == 4
    # ...and copied as they are into a manifest line, load to the prompts the command line was given.
    manifest = _write(tmp_path / "again.jsonl", [{"video": str(material.clip), "regions": copied}])
    (line,) = read_manifest(manifest)
    loaded = line.parse(tmp_path, tmp_path).regions
    expected = parse_region_prompts(**given)
    assert sorted(loaded, key=_order) == sorted(expected, key=_order)
    assert any(p.kind == "mask" for p in loaded) and any(p.when == When(time=0.25) for p in loaded)


def _order(prompt):
    return (prompt.name, str(prompt.when))


def test_an_empty_option_fails_its_line_before_any_work(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    line = {"video": "a.mp4", "regions": [_BOX], "question": "Is <dog> red?", "options": ["yes", " "]}
    (item,) = read_manifest(_write(tmp_path / "r.jsonl", [line]))
    with pytest.raises(InvalidInputError, match="^line 1: option 2 of 2 is empty"):
        item.parse(tmp_path, tmp_path)


def test_lines_are_read_one_at_a_time_within_a_bound(tmp_path, monkeypatch):
    # Issue 21's review: the whole file was read at once, a line of any length. Lines are read one by one, none
    # beyond MAX_LINE_BYTES (16 MiB; 100 bytes here, so that the test writes little).
    from garvideo.batch import manifest as module

    monkeypatch.setattr(module, "MAX_LINE_BYTES", 100)
    (tmp_path / "a.mp4").write_bytes(b"")
    short = json.dumps({"video": "a.mp4", "regions": [{"name": "d", "when": {"frame": 0}, "box": [1, 2, 3, 4]}]})
    long = json.dumps({"video": "a.mp4", "regions": [{"name": "d" * 40, "box": [1, 2, 3, 4]}]})
    assert len(short) <= 100 < len(long)
    path = tmp_path / "r.jsonl"
    path.write_bytes(f"{short}\r\n\r\n{long}\n".encode())
    with pytest.raises(
        InvalidInputError, match=r"r.jsonl: line 3 is longer than 100 bytes: a line is one video and its regions"
    ):
        read_manifest(path)
    path.write_bytes(f"{short}\r\n".encode() + b"x" * 10_000)  # a last line without an end, far over the bound
    with pytest.raises(InvalidInputError, match="line 2 is longer than"):
        read_manifest(path)
    path.write_bytes(f"{short}\r\n".encode() + b"\xff\xfe\n")
    with pytest.raises(InvalidInputError, match=r"r.jsonl is not a UTF-8 text file \(line 2\)"):
        read_manifest(path)
    path.write_bytes(f"{short}\r\n\n# a comment\n".encode())
    (line,) = read_manifest(path)
    assert (line.number, line.text) == (1, short) and line.parse(tmp_path, tmp_path).regions[0].name == "d"


def test_a_manifest_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path):
    from garvideo.testing import hostile

    with hostile.unblocking_fifo(tmp_path / "r.jsonl") as fifo:
        with pytest.raises(InvalidInputError, match=r"cannot read the regions file .*r.jsonl: it is a FIFO"):
            read_manifest(fifo)
    with pytest.raises(InvalidInputError, match="cannot read the regions file .*: it is a folder"):
        read_manifest(tmp_path)

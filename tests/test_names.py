"""Questions checked before any work (garvideo.names): what the command line, the manifest and the Python API share."""

from __future__ import annotations

import pytest

from garvideo import InvalidInputError
from garvideo.names import check_question
from garvideo.pipeline.prompting import Question


@pytest.mark.parametrize("options", [["", "no"], ["yes", "  "], ["a", "b", "\n"]])
def test_an_empty_option_is_refused_before_any_work(options):
    # Issue 21's review: `--option ""` reached GAR's own check, after the models loaded and the regions were tracked.
    empty = next(number for number, option in enumerate(options, 1) if not option.strip())
    message = rf"^option {empty} of {len(options)} is empty: every option of a multiple-choice question needs a text$"
    with pytest.raises(InvalidInputError, match=message):
        check_question("Is <a> red?", options)
    with pytest.raises(InvalidInputError, match=message):  # Pipeline.ask's first step, before the video is read
        Question.of("Is <a> red?", options, limit=5)
    assert check_question(" Is <a> red? ", ["yes", "no"], ["a"]) == "Is <a> red?"

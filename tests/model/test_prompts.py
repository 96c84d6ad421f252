"""Prompt wording: the reference templates character for character, the video template, answer parsing."""

import pytest

from garvideo.errors import InvalidInputError
from garvideo.model.prompts import (
    VideoPromptTemplate,
    caption_text,
    check_user_text,
    find_prompt_indices,
    label_options,
    multi_region_text,
    multiple_choice_question,
    parse_option_letter,
)


def test_caption_text_is_the_reference_wording():
    assert caption_text(1, "<C>") == (
        "There are some objects I am curious about: <Prompt1>;\n<Prompt1>: <C>Describe this masked region in detail."
    )


def test_multi_region_text_is_the_reference_wording():
    text = multi_region_text([0, 2], ["<A>", "<B>"], "Is <Prompt0> left of <Prompt2>?")
    assert text == (
        "There are some objects I am curious about: <Prompt0>; <Prompt2>; \n"
        "<Prompt0>: <A>\n<Prompt2>: <B>\n\nIs <Prompt0> left of <Prompt2>?"
    )


def test_multiple_choice_question_is_gar_bench_wording():
    text = multiple_choice_question("Which one is red?", ["A. <Prompt0>", "B. <Prompt1>"])
    assert text == (
        "Question: Which one is red?\nOptions:\nA. <Prompt0>\nB. <Prompt1>\n"
        "Answer with the correct option's letter directly."
    )
    assert label_options(["red", "blue", "green"]) == ["A. red", "B. blue", "C. green"]
    with pytest.raises(InvalidInputError):
        label_options(["only one"])


@pytest.mark.parametrize(
    "answer,letter",
    [
        ("B", "B"),
        ("b", "B"),
        ("B.", "B"),
        ("B)", "B"),
        ("(C)", "C"),
        ("(A).", "A"),
        (" C. green", "C"),
        ("C) green", "C"),
        ("D: blue", "D"),
        ("Answer: B", "B"),
        ("The answer is C.", "C"),
        ("a red ball", None),
        ("A red ball", None),  # the article, not option A
        ("A cup of coffee", None),
        ("C is right", None),
        ("E", None),
        ("", None),
        ("Blue", None),
    ],
)
def test_parse_option_letter_by_letter(answer, letter):
    assert parse_option_letter(answer, 4) == letter
    assert parse_option_letter(answer, ["red", "orange", "green", "purple"]) == letter


@pytest.mark.parametrize(
    "answer,letter",
    [
        ("A dog.", "B"),  # the whole answer is option B's text, even though it begins with "A"
        ("A dog", "B"),
        ("a CUP", "A"),
        ("B. a dog", "B"),
        ("Answer: a dog", "B"),
        ("A red ball", None),
        ("A dog runs", None),
        ("b", "B"),
    ],
)
def test_parse_option_letter_by_option_text(answer, letter):
    assert parse_option_letter(answer, ["a cup", "a dog"]) == letter


def test_parse_option_letter_refuses_a_string_of_options():
    with pytest.raises(InvalidInputError, match="not one string"):
        parse_option_letter("A", "ab")


def test_prompt_indices_are_ascending_and_distinct():
    # The reference iterates a set (order depends on hashing); garvideo sorts.
    assert find_prompt_indices("<Prompt2> and <Prompt0>, again <Prompt2>") == [0, 2]
    assert find_prompt_indices("no regions") == []


def test_special_tokens_in_user_text_are_refused():
    with pytest.raises(InvalidInputError, match="special token"):
        check_user_text("look at <|image|> here")
    check_user_text("<Prompt0> is fine, so is a < b > c")


def test_video_template_default_rendering():
    text = VideoPromptTemplate().render([0], [["<R2>"], ["<R3>"]], "How does <Prompt0> move?")
    assert text == (
        "There are some objects I am curious about: <Prompt0>;\nFrame 1: <R2>\nFrame 2: <R3>\nHow does <Prompt0> move?"
    )


def test_video_template_several_regions_and_absence():
    text = VideoPromptTemplate().render([0, 1], [["<R2>", "<R2>"], [None, "<R3>"]], "Q?", times=[0.0, 1.5])
    assert text == (
        "There are some objects I am curious about: <Prompt0>; <Prompt1>;\n"
        "Frame 1: <Prompt0>: <R2> <Prompt1>: <R2>\n"
        "Frame 2: <Prompt0>: not visible <Prompt1>: <R3>\n"
        "Q?"
    )


def test_video_template_override_and_bad_field():
    custom = VideoPromptTemplate(frame="At {time}: {regions}\n", not_visible="(gone)")
    text = custom.render([3], [["<X>"], [None]], "Q?", times=[0.5, 2.0])
    assert "At 0.50s: <X>\nAt 2.00s: (gone)\n" in text
    with pytest.raises(InvalidInputError, match="fields"):
        VideoPromptTemplate(frame="Frame {nmber}: {regions}\n").render([0], [["<X>"]], "Q?")

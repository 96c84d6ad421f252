"""Prompt wording: the reference GAR templates and garvideo's video template.

Region ``k`` of a prompt is written ``<Promptk>`` in text; its replayed
features sit in a run of placeholder tokens (``crop`` below). The image
templates are the reference's, character for character (the released
weights were trained and evaluated with them); the video template is
garvideo's own, documented on :class:`VideoPromptTemplate`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InvalidInputError
from ..names import check_option_count

OBJECTS_INTRO = "There are some objects I am curious about: "
CAPTION_INSTRUCTION = "Describe this masked region in detail."
MULTIPLE_CHOICE_INSTRUCTION = "Answer with the correct option's letter directly."
NO_PROMPT_TOKEN = "<NO_Prompt>"

_PROMPT_TOKEN_RE = re.compile(r"<Prompt(\d+)>")
_SPECIAL_TOKEN_RE = re.compile(r"<\|[^<>|]*\|>")


def prompt_token(index: int) -> str:
    """``<Promptk>``: how region ``k`` is named in prompt text."""
    return f"<Prompt{index}>"


def restore_region_names(text: str, names: Sequence[str], indices: Sequence[int]) -> str:
    """``<Promptk>`` -> ``<name>`` in one pass, so a name that itself reads ``Promptj`` is not replaced again."""
    by_index = {k: name for name, k in zip(names, indices)}

    def swap(match: re.Match) -> str:
        name = by_index.get(int(match.group(1)))
        return match.group(0) if name is None else f"<{name}>"

    return _PROMPT_TOKEN_RE.sub(swap, text)


def find_prompt_indices(text: str) -> list[int]:
    """Indices of the distinct ``<Promptk>`` tokens in ``text``, ascending.

    The reference iterates a ``set`` here, whose order depends on Python's
    string hashing (quirk Q3); ascending order is stable and equals what the
    reference produced for the published fixtures.
    """
    return sorted({int(m) for m in _PROMPT_TOKEN_RE.findall(text)})


def check_user_text(text: str, what: str = "question") -> None:
    """Refuse text that smuggles in control tokens (image or placeholder tokens)."""
    found = _SPECIAL_TOKEN_RE.search(text)
    if found:
        raise InvalidInputError(
            f"the {what} contains the special token {found.group(0)!r}: remove it, garvideo inserts image and"
            " region tokens itself"
        )


def question_text(question: str) -> str:
    """The question stripped; an empty one (or one with control tokens) is refused."""
    if not isinstance(question, str):
        raise InvalidInputError(f"the question must be text, got {type(question).__name__}")
    question = question.strip()
    if not question:
        raise InvalidInputError("the question is empty")
    check_user_text(question)
    return question


def caption_text(prompt_index: int, crop: str) -> str:
    """The reference single-region caption prompt (``SingleRegionCaptionDataset``)."""
    name = prompt_token(prompt_index)
    return f"{OBJECTS_INTRO}{name};\n{name}: {crop}{CAPTION_INSTRUCTION}"


def multi_region_text(prompt_indices: Sequence[int], crops: Sequence[str | None], question: str) -> str:
    """The reference several-regions prompt (``MultiRegionDataset``), regions in the given order.

    ``crops[i]`` is the placeholder run of region ``prompt_indices[i]``.
    """
    objects = "".join(f"{prompt_token(k)}; " for k in prompt_indices)
    lines = "".join(f"{prompt_token(k)}: {crop}\n" for k, crop in zip(prompt_indices, crops))
    return f"{OBJECTS_INTRO}{objects}\n{lines}\n{question}"


def multiple_choice_question(question: str, choices: Sequence[str]) -> str:
    """The reference multiple-choice wording (GAR-Bench ``--mode vqa``), choices verbatim.

    ``choices`` are inserted as given (GAR-Bench's already read ``"A. ..."``). The question is
    checked here: once wrapped, an empty question would no longer look empty.
    """
    text = f"Question: {question_text(question)}\nOptions:"
    for choice in choices:
        text += f"\n{choice}"
    return text + f"\n{MULTIPLE_CHOICE_INSTRUCTION}"


def option_letters(count: int) -> list[str]:
    check_option_count(count)
    return list(string.ascii_uppercase[:count])


def label_options(options: Sequence[str]) -> list[str]:
    """``["red", "blue"]`` -> ``["A. red", "B. blue"]`` (the GAR-Bench choice format)."""
    return [f"{letter}. {text}" for letter, text in zip(option_letters(len(options)), options)]


# "Answer:", "The answer is", ... before the option itself.
_ANSWER_PREFIX_RE = re.compile(r"^(?:the\s+)?(?:correct\s+)?(?:answer|option)(?:\s+is)?\s*:?\s*", re.IGNORECASE)
# A letter on its own: "B", "B.", "B)", "B:", "(B)", "(B).".
_BARE_LETTER_RE = re.compile(r"^(?:\(([A-Za-z])\)|([A-Za-z])[.):]?)[.:]?$")
# A letter used as a label before more text: "B. blue", "B) blue", "B: blue", "(B) blue".
_LABEL_LETTER_RE = re.compile(r"^(?:\(([A-Za-z])\)|([A-Za-z])[.):])\s+\S")


def parse_option_letter(text: str, options: Sequence[str] | int) -> str | None:
    """The option letter a model answered, or None if the answer names no option.

    ``options`` are the option texts in letter order (``["a cup", "a dog"]`` are A and B); an int
    only says how many there are, and then an answer can name an option only by its letter.
    In order:

    1. the whole answer (a trailing period dropped, case ignored) is an option's text or its
       ``"LETTER. text"`` label: ``"A dog."`` is B for the options above;
    2. a bare letter, alone or with ``.``, ``)``, ``:`` or parentheses: ``"B"``, ``"b"``, ``"(C)"``, ``"B."``;
    3. a letter followed by more text only when ``.``, ``)`` or ``:`` sets it off as a label:
       ``"B. a dog"``, ``"(B) a dog"``, whereas ``"A red ball"`` names no option.

    ``"Answer: B"`` and ``"The answer is B."`` are read as ``"B"`` (and the option text after
    such a prefix counts too). The reference scores GAR-Bench by exact match of the whole answer
    (its own scorer, :mod:`garvideo.eval`), which this agrees with whenever the model answers
    with the letter as instructed.
    """
    if isinstance(options, str):
        raise InvalidInputError("options must be a list of option texts (or their count), not one string")
    texts = None if isinstance(options, int) else [str(o).strip() for o in options]
    letters = option_letters(options if texts is None else len(texts))
    cleaned = text.strip()
    candidates = [cleaned]
    without_prefix = _ANSWER_PREFIX_RE.sub("", cleaned, count=1)
    if without_prefix != cleaned:
        candidates.append(without_prefix)
    if texts is not None:
        for candidate in candidates:
            answer = _normalised(candidate)
            for letter, option in zip(letters, texts):
                if answer in (_normalised(option), _normalised(f"{letter}. {option}")):
                    return letter
    for candidate in candidates:
        match = _BARE_LETTER_RE.match(candidate) or _LABEL_LETTER_RE.match(candidate)
        if match:
            letter = (match.group(1) or match.group(2)).upper()
            return letter if letter in letters else None
    return None


def _normalised(text: str) -> str:
    # Case and surrounding spaces ignored, one trailing period dropped, inner spaces collapsed.
    text = " ".join(text.split()).casefold()
    return text[:-1].rstrip() if text.endswith(".") else text


@dataclass(frozen=True)
class VideoPromptTemplate:
    """The wording of a video prompt: one format string per level, with named fields.

    The prompt is ``prompt`` with these fields:

    - ``{objects}``: the regions' ``<Promptk>`` names joined by ``object_separator``;
    - ``{frames}``: one ``frame`` line per sampled frame, in time order;
    - ``{question}``: the question or instruction.

    A ``frame`` line has ``{number}`` (1-based), ``{index}`` (0-based),
    ``{time}`` (``"4.50s"``, empty when unknown) and ``{regions}``: the frame's
    region entries joined by ``region_separator``. With one region the entry is
    ``only_region``, with several it is ``region``; both have ``{prompt}`` (the
    region's ``<Promptk>``) and ``{crop}``: the region's placeholder run, whose
    tokens are replaced by that region's RoI-aligned features on that frame.
    A region whose mask is empty on a frame gets no placeholder run there:
    ``{crop}`` becomes the text ``not_visible``.

    With the defaults, one region and the question ``How does <Prompt0> move
    across these frames?``, four frames render as::

        There are some objects I am curious about: <Prompt0>;
        Frame 1: <crop x256>
        Frame 2: <crop x256>
        Frame 3: <crop x256>
        Frame 4: <crop x256>
        How does <Prompt0> move across these frames?
    """

    prompt: str = "There are some objects I am curious about: {objects};\n{frames}{question}"
    frame: str = "Frame {number}: {regions}\n"
    region: str = "{prompt}: {crop}"
    only_region: str = "{crop}"
    object_separator: str = "; "
    region_separator: str = " "
    not_visible: str = "not visible"

    def render(
        self,
        prompt_indices: Sequence[int],
        crops: Sequence[Sequence[str | None]],
        question: str,
        times: Sequence[float | None] | None = None,
    ) -> str:
        """Fill the template. ``crops[f][r]`` is region ``r``'s run on frame ``f`` or None (not visible)."""
        names = [prompt_token(k) for k in prompt_indices]
        entry = self.only_region if len(names) == 1 else self.region
        lines = []
        for f, frame_crops in enumerate(crops):
            time = times[f] if times is not None else None
            entries = [
                _format(entry, "region", prompt=name, crop=crop if crop is not None else self.not_visible)
                for name, crop in zip(names, frame_crops)
            ]
            lines.append(
                _format(
                    self.frame,
                    "frame",
                    number=f + 1,
                    index=f,
                    time="" if time is None else f"{time:.2f}s",
                    regions=self.region_separator.join(entries),
                )
            )
        return _format(
            self.prompt, "prompt", objects=self.object_separator.join(names), frames="".join(lines), question=question
        )


def _format(template: str, what: str, **fields: object) -> str:
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidInputError(
            f"the video prompt template's {what!r} part {template!r} cannot be filled ({exc!r}); "
            f"its fields are {', '.join('{' + k + '}' for k in fields)}"
        ) from exc

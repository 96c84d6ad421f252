"""Running GAR on GAR-Bench-VQA: the reference's prompt and decoding, resumable, per-item failures.

>>> gar = GAR.from_pretrained("HaochenWang/GAR-1B")
>>> summary = run_gar_bench_vqa("GAR-Bench", gar, "gar_1b_vqa.json", mode="reference")
>>> print(gar_bench.format_report(summary.report))

What matches the reference (``evaluation/GAR-Bench/inference.py``): the prompt
(the several-regions object list, then the question, ``Options:``, one choice
per line and ``Answer with the correct option's letter directly.``, built by
:meth:`GARProcessor.prepare_reference_question`), greedy decoding with
``max_new_tokens`` 1024, the output text decoded as the reference decodes it
(:meth:`GARProcessor.decode_reference`) and the released model's numerics (GAR's
defaults: the reference RoI box and the doubled BOS). The reference ran in
bfloat16 on CUDA, which is garvideo's default there; on a CPU garvideo uses
float32 and the summary says so. Regions are listed in ascending order (the
reference's ``set()`` order varies; ascending is what it gave for the published runs'
fixtures).

The two modes differ where the reference has bugs, so that its published
figures can be reproduced exactly with the released weights (``mode="reference"``,
opt-in) while the default stays correct:

- Boxes (quirk Q2): the reference replays every region of a multi-region item
  from the box of the item's LAST mask (a stale loop variable). ``mode="reference"``
  does the same; ``mode="default"`` replays each region from its own mask's box.
- Items naming more than five regions (ten in GAR-Bench-VQA): in ``mode="reference"``
  they run as the reference runs them (the regions beyond ``<Prompt4>`` are listed
  in the prompt but neither marked on the prompt map nor replayed) and their
  predictions say so (``regions_not_marked_or_replayed``); in ``mode="default"``
  they are refused, as garvideo refuses more than five regions anywhere, and
  count as wrong. Items that cannot be run (missing image, malformed RLE, a
question naming a prompt without a mask) are recorded with an ``error`` and an
empty ``model_output`` and count as wrong; the run goes on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import defaults
from ..errors import InvalidInputError
from ..files import atomic_write_json
from ..model import GAR, GenerationSettings, TooManyRegionsError, find_prompt_indices, prompt_token
from . import gar_bench
from .items import decode_item_mask
from .work import EvalItem, EvalPlan, EvalSummary, finish, model_settings, prepare_out, run_items

MODES = ("default", "reference")
BENCHMARK = "GAR-Bench-VQA"
#: The reference's generation length (what a run's notes compare with; runs default to the table's
#: EVAL_MAX_NEW_TOKENS, held equal to it by tests/test_defaults.py).
REFERENCE_MAX_NEW_TOKENS = 1024
#: Field on predictions of items whose extra regions ran the reference's way.
UNMARKED_FIELD = "regions_not_marked_or_replayed"


def beyond_limit(named: Sequence[int], limit: int) -> list[int]:
    """The prompt indices among ``named`` that one GAR prompt cannot mark: ``<PromptK>`` with K >= ``limit``."""
    return [k for k in named if k >= limit]


def extra_region_count(item: Mapping[str, Any], limit: int) -> int:
    """How many regions the item's question and choices name beyond ``<Prompt{limit-1}>`` (0 for most items)."""
    try:
        named = find_prompt_indices(gar_bench.vqa_question(item))
    except (KeyError, TypeError):
        return 0
    return len(beyond_limit(named, limit))


def item_masks(item: Mapping[str, Any]) -> list:
    """The item's masks, ``masks[k]`` for ``<Promptk>``, decoded from COCO RLE (a malformed one names its prompt)."""
    rles = item.get("mask_rles")
    if not isinstance(rles, list) or not rles:
        raise InvalidInputError("malformed item: its mask_rles must be a non-empty list of RLE masks")
    return [decode_item_mask(rle, f"the mask of {prompt_token(k)}") for k, rle in enumerate(rles)]


def _check_fields(item: Mapping[str, Any]) -> None:
    missing = [k for k in ("image", "question", "choices", "mask_rles") if k not in item]
    if missing:
        raise InvalidInputError(f"malformed item: it has no {', '.join(missing)}")
    if not isinstance(item["choices"], list) or not all(isinstance(c, str) for c in item["choices"]):
        raise InvalidInputError("malformed item: choices must be a list of texts")


class _Runner:
    def __init__(self, gar: GAR, root: Path, mode: str, settings: GenerationSettings) -> None:
        self.gar, self.root, self.mode, self.settings = gar, root, mode, settings

    def __call__(self, entry: EvalItem) -> dict[str, Any]:
        item = entry.data
        _check_fields(item)
        image = self.root / str(item["image"])
        if not image.is_file():
            raise InvalidInputError(f"missing image: {item['image']} is not in {self.root}")
        question = gar_bench.vqa_question(item)
        named = find_prompt_indices(question)
        masks = item_masks(item)
        without_mask = [k for k in named if k >= len(masks)]
        if without_mask:
            raise InvalidInputError(
                f"a prompt without a mask: the question names {', '.join(prompt_token(k) for k in without_mask)} "
                f"but the item has only {len(masks)} masks"
            )
        limit = self.gar.max_regions
        extra = beyond_limit(named, limit)
        if extra and self.mode == "default":
            unmarked = ", ".join(prompt_token(k) for k in extra)
            raise TooManyRegionsError(
                f"more than {limit} regions: the question names {unmarked} but one GAR prompt marks only "
                f"{prompt_token(0)} to {prompt_token(limit - 1)}, and one multiple-choice question cannot be split "
                f"into groups; mode 'reference' (--mode reference) answers it as the reference did ({unmarked} "
                f"listed but neither marked nor replayed)"
            )
        reference = self.mode == "reference"
        inputs = self.gar.processor.prepare_reference_question(
            image,
            masks,
            question,
            extra_regions="reference" if reference else "error",
            boxes="reference" if reference else "own",
        )
        (result,) = self.gar.generate(inputs, self.settings)
        record: dict[str, Any] = {
            "model_output": self.gar.processor.decode_reference(result.token_ids),
            "new_tokens": len(result.token_ids),
            "finished": result.finished,
            "prompt_tokens": result.prompt_tokens,
            "encode_s": round(result.timings.encode_s, 4),
            "generate_s": round(result.timings.generate_s, 4),
        }
        if extra:
            record[UNMARKED_FIELD] = [prompt_token(k) for k in extra]
        return record


@dataclasses.dataclass(frozen=True)
class GarBenchPlan(EvalPlan):
    """A GAR-Bench-VQA run, checked before GAR is loaded (:func:`plan_gar_bench_vqa`)."""

    mode: str = "default"


def plan_gar_bench_vqa(
    data: str | Path,
    out: str | Path,
    *,
    mode: str = "default",
    subset: str | Path | Sequence[str] | None = None,
    limit: int | None = None,
) -> GarBenchPlan:
    """Check a GAR-Bench-VQA run without a model: the data, the subset and limit, the mode, ``out``.

    Every user mistake raises :class:`InvalidInputError` here, before minutes of model loading;
    ``out``'s work folder is created. Run the plan with :func:`run_gar_bench_plan`.
    """
    if mode not in MODES:
        raise InvalidInputError(f"unknown mode {mode!r}: use 'default' or 'reference'")
    root, annotation = gar_bench.find_data(data)
    items = gar_bench.load_items(annotation)
    chosen = gar_bench.select_items(items, gar_bench.read_subset(subset) if subset is not None else None, limit)
    subset_file = subset if isinstance(subset, (str, Path)) else None
    out = prepare_out(out, {"the benchmark file": annotation, "the --subset file": subset_file})
    return GarBenchPlan(BENCHMARK, root, tuple(items), tuple(chosen), out, mode=mode)


def run_gar_bench_plan(
    plan: GarBenchPlan, gar: GAR, *, generation: GenerationSettings | None = None, progress: bool = True
) -> EvalSummary:
    """Answer the plan's items with ``gar``, write the reference's prediction file and score it."""
    settings = generation or GenerationSettings(max_new_tokens=defaults.EVAL_MAX_NEW_TOKENS)
    info = gar.info
    run_settings = {
        "benchmark": BENCHMARK,
        **model_settings(info),
        "mode": plan.mode,
        "generation": dataclasses.asdict(settings),
    }
    runner = _Runner(gar, plan.root, plan.mode, settings)
    run = run_items(plan.entries(ignore=("model_output",)), plan.out, runner, run_settings, progress)

    predictions = []
    for outcome in run.outcomes:
        record = {k: v for k, v in outcome.item.data.items() if k != "model_output"}
        if outcome.result is not None:
            record["model_output"] = outcome.result["model_output"]
            if UNMARKED_FIELD in outcome.result:
                record[UNMARKED_FIELD] = outcome.result[UNMARKED_FIELD]
        else:
            record["model_output"] = ""  # a string, so the reference's own scorer reads the file too
            record["error"] = outcome.error
        predictions.append(record)
    atomic_write_json(plan.out, predictions, indent=4)

    limit_regions = gar.max_regions
    extra_items = [o for o in run.outcomes if extra_region_count(o.item.data, limit_regions)]
    ran_reference_way = [o for o in extra_items if o.result is not None and UNMARKED_FIELD in o.result]
    notes = []
    if plan.mode == "reference":
        notes.append(
            "mode 'reference': multi-region items replay every region from the box of the item's last mask, "
            "as the reference's stale loop variable did (quirk Q2); --mode default uses each region's own box"
        )
    if extra_items:
        if plan.mode == "reference":
            notes.append(
                f"{len(extra_items)} items name more than {limit_regions} regions; {len(ran_reference_way)} of them "
                f"were answered as the reference does (regions beyond <Prompt{limit_regions - 1}> listed but not "
                f"marked or replayed; field {UNMARKED_FIELD!r}), the others failed for other reasons"
            )
        else:
            notes.append(
                f"{len(extra_items)} items name more than {limit_regions} regions: refused in the default mode "
                f"and counted as wrong (--mode reference answers them as the reference did)"
            )
    if info.dtype != "bfloat16" or not info.device.startswith("cuda"):
        notes.append(
            f"the reference ran in bfloat16 on CUDA; this run used {info.dtype} on {info.device}, "
            f"so answers can differ slightly"
        )
    if settings.max_new_tokens != REFERENCE_MAX_NEW_TOKENS or settings.do_sample:
        notes.append(
            f"decoding differs from the reference (greedy, {REFERENCE_MAX_NEW_TOKENS} new tokens): "
            f"{'sampling' if settings.do_sample else 'greedy'}, {settings.max_new_tokens} new tokens"
        )
    return finish(
        plan,
        run,
        report=gar_bench.score(predictions),
        settings=run_settings,
        notes=notes,
        counts={
            "more_than_max_regions": len(extra_items),
            "answered_reference_way": len(ran_reference_way),
        },
    )


def run_gar_bench_vqa(
    data: str | Path,
    gar: GAR,
    out: str | Path,
    *,
    mode: str = "default",
    generation: GenerationSettings | None = None,
    subset: str | Path | Sequence[str] | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> EvalSummary:
    """Answer GAR-Bench-VQA items with ``gar`` and write the reference's prediction file to ``out``.

    ``data`` is the folder holding ``GAR-Bench-VQA.json`` and ``images/``. ``mode`` is
    ``"default"`` or ``"reference"`` (items with more than five regions, see the module
    docstring). ``generation`` (decoding settings) defaults to the reference's (greedy, 1024 new tokens).
    ``subset`` (a file such as ``subset_with_images.txt``, or entries: image paths or
    item indices) and ``limit`` (the first N) restrict the items. Resumable: a re-run
    with the same ``out`` reuses the results in ``out``'s work folder. Returns the
    counts and the score (:func:`garvideo.eval.gar_bench.score` over the written items).
    :func:`plan_gar_bench_vqa` and :func:`run_gar_bench_plan` are its two halves, for
    callers that check their inputs before loading ``gar``.
    """
    plan = plan_gar_bench_vqa(data, out, mode=mode, subset=subset, limit=limit)
    return run_gar_bench_plan(plan, gar, generation=generation, progress=progress)

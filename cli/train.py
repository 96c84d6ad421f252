"""``garvideo train``: fine-tune GAR on one's own data (LoRA), check a dataset, merge an adapter."""

from __future__ import annotations

import json

import click

from garvideo import defaults  # torch-free

from .batch import ray_cluster_options, ray_settings
from .common import check_outputs, option_group, quiet_option

DATA_HELP = """\b
DATA is JSON lines, one example per line (paths relative to the file):
  {"image": "a.jpg", "regions": [{"name": "item", "mask": "a_mask.png"}], "caption": "..."}
  {"video": "clip.mp4", "regions": [{"name": "dog", "when": {"frame": 0}, "box": [x1, y1, x2, y2]}],
   "caption": "..."}                        (regions tracked with SAM2, as describe tracks them)
  {"video": "clip.mp4", "tracks": "clip_tracks.json", "caption": "..."}
  {"image"|"video": ..., "regions": [...], "question": "What is <dog> doing?", "answer": "...",
   "options": ["...", "..."]}               (options optional; the answer is one of them or its letter)
or COCO region captions (images + RLE/polygon masks + "caption") or VideoRefer-700K's annotation JSON.
Several GPUs: torchrun --nproc-per-node 8 -m garvideo_cli.main train ... (or accelerate launch), or on a
Ray cluster --ray [ADDRESS] (one Ray Train worker per GPU; paths shared by every node).
An adapter is used with --adapter RUN on describe, ask, batch, serve, eval and app; `garvideo train merge RUN
--out DIR` writes a standalone checkpoint (`garvideo train merge --help`)."""


class _Train(click.Command):
    """``garvideo train DATA ...`` trains; ``garvideo train merge ...`` is the merge command."""

    def make_context(self, info_name, args, parent=None, **extra):
        if args and args[0] == "merge":  # the one subcommand (a data file named merge: ./merge)
            return merge_command.make_context(f"{info_name} merge", list(args[1:]), parent=parent, **extra)
        return super().make_context(info_name, args, parent, **extra)


_lora_options = option_group(
    click.option(
        "--rank", default=defaults.TRAIN_RANK, show_default=True, type=click.IntRange(min=1), help="LoRA rank."
    ),
    click.option(
        "--alpha",
        default=defaults.TRAIN_ALPHA,
        show_default=True,
        type=float,
        help="LoRA alpha (update scale alpha/rank).",
    ),
    click.option(
        "--lora-dropout",
        default=defaults.TRAIN_LORA_DROPOUT,
        show_default=True,
        type=float,
        help="Dropout on the LoRA branch.",
    ),
    click.option(
        "--target-modules",
        default=defaults.TRAIN_TARGET_MODULES,
        show_default=True,
        metavar="NAMES",
        help="The language model's linear layers that get LoRA, separated by commas.",
    ),
    click.option(
        "--train-vision",
        is_flag=True,
        help="Also train the vision side: LoRA on the vision tower's blocks, the projector outright (default: frozen;"
        " the mask embedding is always trained).",
    ),
)

_optimizer_options = option_group(
    click.option("--lr", default=defaults.TRAIN_LR, show_default=True, type=float, help="Peak learning rate (AdamW)."),
    click.option(
        "--weight-decay", default=defaults.TRAIN_WEIGHT_DECAY, show_default=True, type=float, help="AdamW weight decay."
    ),
    click.option(
        "--epochs",
        default=defaults.TRAIN_EPOCHS,
        show_default=True,
        type=click.IntRange(min=1),
        help="Passes over DATA.",
    ),
    click.option(
        "--batch-size",
        default=defaults.TRAIN_BATCH_SIZE,
        show_default=True,
        type=click.IntRange(min=1),
        help="Examples per micro-batch (per GPU).",
    ),
    click.option(
        "--grad-accum",
        default=defaults.TRAIN_GRAD_ACCUM,
        show_default=True,
        type=click.IntRange(min=1),
        help="Micro-batches per optimizer step (the step's batch: batch size x this x GPUs).",
    ),
    click.option(
        "--warmup",
        default=defaults.TRAIN_WARMUP,
        show_default=True,
        type=float,
        help="Share of the steps with a linear warm-up of the learning rate; then it decays (cosine) to 0.",
    ),
    click.option(
        "--max-grad-norm",
        default=defaults.TRAIN_MAX_GRAD_NORM,
        show_default=True,
        type=float,
        help="Clip gradients to this norm (0: never).",
    ),
    click.option(
        "--max-steps", type=click.IntRange(min=1), metavar="N", help="Stop after N optimizer steps (a quick run)."
    ),
    click.option(
        "--gradient-checkpointing/--no-gradient-checkpointing",
        default=True,
        show_default=True,
        help="Recompute activations in the backward pass: much less memory, about a third more time.",
    ),
    click.option(
        "--seed",
        default=defaults.TRAIN_SEED,
        show_default=True,
        type=click.IntRange(min=0),
        help="Seed of the adapter, the data order and dropout.",
    ),
)

_run_options = option_group(
    click.option(
        "--length-group",
        default=defaults.TRAIN_LENGTH_GROUP,
        show_default=True,
        type=click.IntRange(min=1),
        metavar="N",
        help="Batches hold examples of similar length: sorted within windows of N batches (1: no sorting).",
    ),
    click.option(
        "--save-every",
        default=defaults.TRAIN_SAVE_EVERY,
        show_default=True,
        type=click.IntRange(min=1),
        metavar="N",
        help="A checkpoint every N steps (and at each epoch's end).",
    ),
    click.option(
        "--keep",
        default=defaults.TRAIN_KEEP,
        show_default=True,
        type=click.IntRange(min=1),
        metavar="K",
        help="Keep the last K checkpoints.",
    ),
    click.option(
        "--log-every",
        default=defaults.TRAIN_LOG_EVERY,
        show_default=True,
        type=click.IntRange(min=1),
        metavar="N",
        help="A metrics line every N steps.",
    ),
    click.option(
        "--eval-every",
        type=click.IntRange(min=1),
        metavar="N",
        help="Evaluate --eval every N steps [default: at each epoch's end].",
    ),
    click.option(
        "--resume",
        is_flag=True,
        help="Continue the run in --out from its last checkpoint (same data order, optimizer, schedule).",
    ),
)

_data_options = option_group(
    click.option(
        "--eval",
        "eval_data",
        metavar="FILE",
        type=click.Path(path_type=str),
        help="Held-out data (same formats): loss and multiple-choice accuracy.",
    ),
    click.option(
        "--format",
        "data_format",
        type=click.Choice(["auto", "garvideo", "coco", "videorefer"]),
        default="auto",
        show_default=True,
        help="DATA's format (auto: .jsonl is garvideo's, a JSON file COCO's or VideoRefer's by its shape).",
    ),
    click.option(
        "--root",
        metavar="DIR",
        type=click.Path(exists=True, file_okay=False, path_type=str),
        help="Where the examples' files are [default: beside DATA].",
    ),
    click.option(
        "--frames",
        default=defaults.FRAMES,
        show_default=True,
        type=click.IntRange(min=1),
        help="Frames of a video example, as describe and ask show them.",
    ),
    click.option(
        "--tiling",
        type=click.Choice(["vanilla", "thumb+tile"]),
        default=defaults.TILING,
        show_default=True,
        help="Per video frame: one tile or a thumbnail plus tiles.",
    ),
)

# Ray Train (checked by batch's ray_settings, the Ray runtime joined or started as `garvideo batch --ray` does).
_ray_options = ray_cluster_options(
    "Train with Ray Train's workers, one per GPU (DATA, --out and the models at the same paths on every node)",
    "training processes (default: one per GPU of the cluster; 1 without GPUs)",
)

_model_options = option_group(
    click.option(
        "--model",
        default=defaults.MODEL,
        show_default=True,
        metavar="ID|FOLDER",
        help="The GAR checkpoint to fine-tune.",
    ),
    click.option(
        "--sam2",
        default=defaults.SAM2,
        show_default=True,
        metavar="ID|FOLDER",
        help="SAM2, for video examples whose regions are tracked.",
    ),
    click.option(
        "--device",
        default=defaults.DEVICE,
        show_default=True,
        help="auto (CUDA when available; under torchrun the rank's GPU), cpu, cuda or cuda:N.",
    ),
    click.option(
        "--dtype",
        default=defaults.DTYPE,
        show_default=True,
        help="auto (bfloat16 on CUDA with float32 trained weights; float32 on CPU), float32, bfloat16.",
    ),
)


@click.command("train", cls=_Train, epilog=DATA_HELP)
@click.argument("data", type=click.Path(path_type=str))
@click.option("--out", metavar="DIR", help="The run folder: adapter, checkpoints, metrics.jsonl, TensorBoard logs.")
@click.option(
    "--check", is_flag=True, help="Only check DATA (and --eval): counts, lengths and token statistics; no training."
)
@_data_options
@_model_options
@_lora_options
@_optimizer_options
@_run_options
@_ray_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary (or --check's report) as JSON.")
@quiet_option
def train_command(data, out, check, eval_data, data_format, root, resume, as_json, quiet, **settings):
    """Fine-tune GAR on DATA into the run folder --out (the final adapter, checkpoints, metrics).

    \b
    The examples become exactly the prompts describe and ask send; the loss is on the answers' tokens. LoRA on
    the language model (--rank, --alpha, --target-modules), the mask embedding trained, the vision tower frozen
    unless --train-vision. bfloat16 on CUDA (float32 trained weights), gradient checkpointing, a warm-up then
    cosine learning rate, batches of similar length. A checkpoint every --save-every steps, written atomically;
    --resume continues a killed run exactly. metrics.jsonl and TensorBoard logs in --out.
    """
    from garvideo.train import TrainConfig
    from garvideo.train.data import DatasetError

    ray = ray_settings(
        *(settings.pop(k) for k in ("ray_address", "workers", "cpus_per_worker", "gpus_per_worker")), None
    )
    config = TrainConfig(**settings)  # a bad value is one error line before anything loads
    _no_loading_bars()
    if check:
        _check(data, eval_data, data_format, root, config, as_json, quiet)
        return
    if not out:
        raise click.UsageError("give the run folder with --out DIR (or --check to only check DATA)")
    check_outputs({"--out": ("run folder", f"{out}/run.json")}, {"the data": data, "the --eval data": eval_data})
    from garvideo.train import train

    given = dict(eval_data=eval_data, resume=resume, data_format=data_format, root=root)
    try:
        if ray is not None:
            from garvideo.train.on_ray import train_on_ray

            summary = train_on_ray(data, out, config, ray, **given)
        else:
            summary = train(data, out, config, progress=not quiet, **given)
    except DatasetError as exc:
        print_error_lines(exc.problems)
        raise SystemExit(2) from None
    if summary.rank != 0:
        return  # under torchrun every process trains; the first one reports
    if as_json:
        click.echo(json.dumps(summary.to_dict()))
        return
    loss = f", loss {summary.first_loss:.4f} -> {summary.last_loss:.4f}" if summary.first_loss is not None else ""
    click.echo(f"trained {summary.steps} of {summary.total_steps} steps on {summary.examples} examples{loss}")
    if summary.evaluation is not None:
        result = summary.evaluation.to_dict()
        accuracy = f", accuracy {result['eval_accuracy']}%" if "eval_accuracy" in result else ""
        click.echo(f"held-out loss {result['eval_loss']:.4f}{accuracy}")
    click.echo(f"adapter: {summary.out} (use it with --adapter {summary.out})")


def _check(data, eval_data, data_format, root, config, as_json, quiet) -> None:
    from garvideo.pipeline import Pipeline
    from garvideo.train import ExampleBuilder, check_dataset, read_dataset
    from garvideo.train.data import DatasetError

    try:
        datasets = [read_dataset(path, data_format, root) for path in (data, eval_data) if path]
        if not quiet:
            click.echo(f"loading {config.model} (its processor builds the prompts) ...", err=True)
        pipeline = Pipeline.from_pretrained(config.model, None, device="cpu", dtype=config.dtype, progress=False)
        builder = ExampleBuilder(pipeline, config.frames, config.tiling)
        reports = [check_dataset(dataset, builder, progress=not quiet) for dataset in datasets]
    except DatasetError as exc:
        print_error_lines(exc.problems)
        raise SystemExit(2) from None
    if as_json:
        click.echo(json.dumps([report.to_dict() for report in reports]))
    else:
        click.echo("\n".join(report.describe() for report in reports))


def print_error_lines(problems) -> None:
    """One ``garvideo: error:`` line per problem (every bad example of a dataset)."""
    from .main import print_error

    for problem in problems:
        print_error(problem)


@click.command("merge")
@click.argument("adapter", type=click.Path(exists=True, file_okay=False, path_type=str))
@click.option("--out", required=True, metavar="DIR", help="The new checkpoint's folder (must not exist yet).")
@click.option("--model", metavar="ID|FOLDER", help="The base checkpoint [default: the one the adapter was trained on].")
@click.option("--dtype", help="Precision of the saved weights [default: the base checkpoint's].")
@quiet_option
def merge_command(adapter, out, model, dtype, quiet) -> None:
    """Fold ADAPTER (a run folder or checkpoint of `garvideo train`) into its base: a standalone checkpoint.

    The checkpoint has the released layout: `--model DIR` loads it as it loads GAR-1B, and it computes what
    the base with --adapter computes. Its config.json records the adapter and the base it was merged from.
    """
    from garvideo.train import merge

    _no_loading_bars()
    if not quiet:
        click.echo(f"merging {adapter} ...", err=True)
    click.echo(f"wrote {merge(adapter, out, model=model, dtype=dtype)}")


def _no_loading_bars() -> None:
    """transformers' "Loading weights" bars (hub downloads keep theirs), as load_pipeline turns them off."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

"""Every default a user can change, in one torch-free table.

The command line, the pipeline's signatures, batch options, the web app, the live session, the service
and training all read their defaults here; ``tests/test_defaults.py`` fails when one of them differs.
Importing this module loads nothing heavy (``garvideo --help`` reads it).
"""

from __future__ import annotations

#: GAR checkpoint (hub id or folder).
MODEL = "HaochenWang/GAR-1B"
#: SAM2 checkpoint (hub id, alias or folder).
SAM2 = "facebook/sam2.1-hiera-tiny"
#: Open-vocabulary detector for text regions.
DETECTOR = "IDEA-Research/grounding-dino-tiny"
#: ``auto``: CUDA when present, else the CPU.
DEVICE = "auto"
#: ``auto``: bfloat16 on CUDA (SAM2 as float32 weights under bfloat16 autocast), float32 on a CPU.
DTYPE = "auto"

#: Track every N-th frame.
STRIDE = 1
#: Frames GAR sees for an overall description or an answer.
FRAMES = 8
#: Frames GAR sees for each timeline window.
FRAMES_PER_WINDOW = 4
#: Timeline window length in seconds; None: adaptive, at most 8 round windows.
WINDOW: float | None = None
#: Per frame one 448 tile (``vanilla``) or a thumbnail and tiles (``thumb+tile``).
TILING = "vanilla"
#: The longest description or answer, in tokens.
MAX_NEW_TOKENS = 512
#: The most ``max_new_tokens`` anyone may ask for (a bigger number only allocates a cache nobody fills).
MAX_NEW_TOKENS_LIMIT = 4096

#: Text regions: Grounding DINO's box score threshold.
BOX_THRESHOLD = 0.35
#: Text regions: Grounding DINO's per-word threshold.
TEXT_THRESHOLD = 0.25
#: Text regions: how many distinct matches of a phrase become regions (car, car#2, ...).
MAX_INSTANCES = 1
#: The most instances one phrase may become (Grounding DINO proposes 900 boxes; names are made for each).
MAX_INSTANCES_LIMIT = 100
#: Text regions without a moment: seconds between searched frames.
SEARCH_EVERY = 1.0
#: Text regions: keep searching through the whole range once found, for instances that come into view later.
NEW_INSTANCES = False
#: Text regions searched again (live, or with new_instances): a detection overlapping a region's box by at least
#: this IoU is that region (seen, or found again when lost), not a new instance.
MATCH_IOU = 0.3

#: ``garvideo batch --describe``: ``auto`` describes the lines without a question, ``always`` every line.
BATCH_DESCRIBE = "auto"

#: The benchmarks (``garvideo eval``) run their protocols' settings, not the front-ends' defaults: the longest
#: answer in tokens (the GAR reference's evaluation, greedy) ...
EVAL_MAX_NEW_TOKENS = 1024
#: ... and the frames GAR sees per VideoRefer-Bench item (VideoRefer's own scripts sample 16; GAR's paper does
#: not say).
VIDEOREFER_FRAMES = 16

#: The web app (``garvideo app``): the address it listens on (this machine only), its port, the largest
#: upload it takes, and how long an idle session keeps its files.
APP_HOST = "127.0.0.1"
APP_PORT = 7860
APP_MAX_UPLOAD_MB = 2048.0
APP_SESSION_HOURS = 1.0

# -- live video (garvideo live, Pipeline.live) ---------------------------------------------------------------

#: Seconds of stream time each description covers.
LIVE_WINDOW = 10.0
#: Frames taken per second of stream time; None: as many as tracking keeps up with (the newest wins).
LIVE_TRACK_FPS: float | None = None
#: ``frame`` events per second, at most.
LIVE_REPORT_EVERY = 1.0
#: Seconds before the first reconnection of a dropped source (doubling up to LIVE_RECONNECT_MAX_S).
LIVE_RECONNECT_S = 1.0
#: The longest wait between two reconnection attempts.
LIVE_RECONNECT_MAX_S = 10.0
#: Seconds without a frame after which the session ends as if stopped.
LIVE_GIVE_UP_AFTER_S = 30.0
#: Seconds allowed to open a source.
LIVE_OPEN_TIMEOUT_S = 10.0
#: Seconds a source may stay silent before it counts as dropped (and is reconnected).
LIVE_STALL_S = 5.0
#: A file changed this recently is still being written: it is followed until it stops growing this long.
LIVE_GROWING_FILE_S = 2.0
#: Text regions: seconds of stream time between searches for new (and lost) instances.
LIVE_SEARCH_EVERY = 2.0
#: Text regions: how many instances of one phrase may be tracked at once (car, car#2, ...).
LIVE_MAX_INSTANCES = 4
#: Seconds of stream time a region must stay unseen before it is reported lost.
LIVE_LOST_AFTER_S = 1.0
#: Length of each recorded overlay segment, in seconds of stream time.
LIVE_SEGMENT_S = 60.0
#: How far back ``ask(last=...)`` may look, in seconds of stream time.
LIVE_HISTORY_S = 60.0
#: How far back a question looks when not told (``ask(last=...)``, the web app's Live tab).
LIVE_ASK_LAST_S = 30.0
#: Decoded frames kept for descriptions and questions, in bytes; beyond it older frames are thinned out.
LIVE_HISTORY_BYTES = 512 * 1024 * 1024
#: Windows GAR may merge into one description when it falls behind; beyond that the oldest are skipped.
LIVE_MAX_MERGED_WINDOWS = 3
#: Marks (prompted frames) each tracked object remembers: its first and its latest ones.
LIVE_MAX_MARKS = 8
#: Tracking more than this many seconds behind capture (or dropping frames) is reported as ``behind``.
LIVE_BEHIND_S = 1.0
#: Events a session keeps for a reader that iterates or polls them (the oldest go first beyond it).
LIVE_EVENT_BUFFER = 1000

# garvideo serve (the service)
#: Address the service listens on (this machine only).
SERVE_HOST = "127.0.0.1"
#: Port the service listens on.
SERVE_PORT = 8000
#: Folder of the job store (SQLite), uploads and results.
SERVE_STATE = "garvideo-state"
#: Largest upload (or fetched URL), in MB.
SERVE_MAX_UPLOAD_MB = 2048.0
#: Finished jobs are deleted this many hours after they end.
SERVE_KEEP_HOURS = 168.0
#: Jobs run at once per device (or per Ray worker): one tracks while another describes.
SERVE_JOBS = 2
#: Jobs of one client run at once; its others wait their turn.
SERVE_MAX_RUNNING_PER_KEY = 2
#: Jobs of one client waiting; a submission beyond gets 429 with Retry-After.
SERVE_MAX_QUEUED_PER_KEY = 100
#: Jobs waiting in all; a submission beyond gets 503 with Retry-After.
SERVE_MAX_QUEUED = 10000

# ---- garvideo train (fine-tuning; README, "Fine-tuning")
#: LoRA rank of the language model's adapter.
TRAIN_RANK = 16
#: LoRA alpha (the adapter's update is scaled by alpha / rank).
TRAIN_ALPHA = 32
#: Dropout on the LoRA branch.
TRAIN_LORA_DROPOUT = 0.05
#: The language model's linear layers that get LoRA (comma-separated names).
TRAIN_TARGET_MODULES = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
#: Peak learning rate (AdamW).
TRAIN_LR = 1e-4
#: AdamW weight decay.
TRAIN_WEIGHT_DECAY = 0.0
#: Passes over the training data.
TRAIN_EPOCHS = 3
#: Examples per micro-batch (per GPU).
TRAIN_BATCH_SIZE = 4
#: Micro-batches whose gradients make one optimizer step.
TRAIN_GRAD_ACCUM = 1
#: Share of the optimizer steps spent warming the learning rate up (linear), before the cosine decay.
TRAIN_WARMUP = 0.03
#: Gradients are clipped to this norm (0: no clipping).
TRAIN_MAX_GRAD_NORM = 1.0
#: A checkpoint every N optimizer steps (and at the end of every epoch).
TRAIN_SAVE_EVERY = 200
#: The last K checkpoints are kept.
TRAIN_KEEP = 3
#: A line in metrics.jsonl (and TensorBoard) every N optimizer steps.
TRAIN_LOG_EVERY = 10
#: Held-out evaluation every N optimizer steps (None: at the end of every epoch).
TRAIN_EVAL_EVERY: int | None = None
#: Seed of the adapter's initialisation, the data order and dropout.
TRAIN_SEED = 0
#: Examples are grouped into batches of similar length from windows of this many batches.
TRAIN_LENGTH_GROUP = 50

#: GAR's decode steps compiled: ``auto`` (only where the warm-up is paid back: see COMPILE_PAYBACK_STEPS),
#: ``on``, ``off``, or a kind of COMPILE_KIND's (the API also takes True and False).
COMPILE = "auto"
#: What ``on`` (and ``auto``, where it compiles) runs on CUDA: ``inductor`` (torch.compile; its kernels replayed as
#: CUDA graphs) or ``cuda-graphs`` (the eager step captured as CUDA graphs, no inductor; captured in about a
#: second). ``bash bench/gpu.sh`` measures both beside eager and prints the one to choose; a CPU uses inductor.
COMPILE_KIND = "inductor"
#: ``auto`` compiles once the decode steps a call plans (its prompt batches x max_new_tokens; in a long-running
#: process with the steps it already decoded) reach the warm-up's payback: the warm-up's seconds over the seconds a
#: compiled step saves, with compiled work for the model in the compile cache (warm) or not (cold). CPU: measured
#: on the tiny GAR (bench/RESULTS.md, "decoding and batching": 35 s cold, 8 s warm, 7.2 ms saved a step). CUDA:
#: from issue 27's H200 figures (11 ms eager, 3.6 ms compiled a step) and an assumed 60 s cold, 10 s warm warm-up,
#: until ``bash bench/gpu.sh`` measures them.
COMPILE_PAYBACK_STEPS = {"cpu": {"cold": 5000, "warm": 1100}, "cuda": {"cold": 8000, "warm": 1400}}

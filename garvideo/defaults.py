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
#: Text regions without a moment: seconds between searched frames.
SEARCH_EVERY = 1.0

#: ``garvideo batch --describe``: ``auto`` describes the lines without a question, ``always`` every line.
BATCH_DESCRIBE = "auto"

#: The web app (``garvideo app``): the address it listens on (this machine only), its port, the largest
#: upload it takes, and how long an idle session keeps its files.
APP_HOST = "127.0.0.1"
APP_PORT = 7860
APP_MAX_UPLOAD_MB = 2048.0
APP_SESSION_HOURS = 1.0

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

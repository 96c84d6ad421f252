#!/usr/bin/env bash
# Every GPU benchmark of garvideo in one call, for a lent GPU machine (one short lease).
#
# The GPU image has torch, transformers, timm, opencv and tqdm but no PyAV; carry its wheel:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl av
# and, for the service step, the serve extra with its dependencies (the same line without --no-deps):
#   ... -d .whl fastapi uvicorn python-multipart httpx
# then run, with `.whl` carried:  bash bench/gpu.sh
# Results: bench/RESULTS.md gains the GPU blocks (card named); logs and a copy go to $OUT when set.
# DEVICE=cpu QUICK=1 bash bench/gpu.sh runs the same steps small on a CPU, to check the script.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=.:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
PY=${PYTHON:-python3}
$PY -c "import torch; print('device:', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
# One budget for every step (the lease is short): a step gets what is left and is stopped when it runs out; the
# GPU steps run in the order of what matters most (decoding, tracking fps, the end-to-end describe).
if [ -n "${QUICK:-}" ]; then BUDGET=${BUDGET:-3600}; else BUDGET=${BUDGET:-480}; fi
status=0
step() {  # name, command...: run under the budget left, keep the log, go on after a failure
    local name=$1; shift
    local left=$((BUDGET - SECONDS))
    if [ "$left" -lt 20 ]; then
        echo "!! $name skipped: the ${BUDGET} s budget is spent"; status=1; return
    fi
    echo "== $name (${left} s of the budget left): $*"
    timeout -k 10 "$left" "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "!! $name stopped: the ${BUDGET} s budget ran out"; status=1
    elif [ "$rc" -ne 0 ]; then
        echo "!! $name failed (exit $rc)"; status=1
    fi
}
if [ -n "${QUICK:-}" ]; then
    step model $PY bench/model.py --device "$DEVICE" --frames 4 --new-tokens 4 --repeats 1
    step model-decode $PY bench/model.py --decode --device "$DEVICE" --frames 4 --new-tokens 4 --repeats 1
    # the detector step below, small: the tiny model, one frame
    step detector $PY bench/grounding.py --device "$DEVICE" --models tiny --frames 1 --seconds 1
    step track $PY bench/track.py --device "$DEVICE" --models tiny --lengths 10 20
    step prefetch $PY bench/prefetch.py --device "$DEVICE" --frames 20 --repeats 1 --cache "$OUT/clips"
    # the tracking-fps step below, small: tiny model, 6 frames; compiled with dynamo's eager backend (no codegen)
    step track-objects $PY bench/track_objects.py --device "$DEVICE" --models tiny --size 320x180 --frames 6 \
        --objects 1 4 --variants batched --compile both --compile-backend eager
    step pipeline $PY bench/pipeline.py --device "$DEVICE" --frames 12 --new-tokens 4 --repeats 1
    # the long-video steps below, small: tiny models, 3 s clips, one and two objects
    step long $PY bench/long.py --device "$DEVICE" --minutes 0.05 --objects 1 2 --new-tokens 4 \
        --results "$OUT/long" --clips "$OUT/clips"
    step long-report $PY bench/long.py --results "$OUT/long" --report
    # the live step below, small: tiny models, a 6 s stream, 2 s windows
    step live $PY bench/live.py --device "$DEVICE" --seconds 6 --objects 1 2 --window 2 --new-tokens 4 \
        --clips "$OUT/clips"
    # the service: 3 describe jobs through the API vs through garvideo serve, one and two at a time
    step serve $PY bench/serve.py --device "$DEVICE" --jobs 3 --frames 12 --slots 1 2 --repeats 1
    # the fine-tuning step below, small: tiny GAR, 2 frames per example, one batch size
    step train $PY bench/train.py --device "$DEVICE" --frames 2 --batch-sizes 1 --repeats 1
else
    # issue 27 first. GAR-1B shapes: the first call and decode ms/token of eager, compiled cold and warm (each in its
    # own process, the warm one reading the cold one's compile cache) and CUDA graphs without inductor, the payback
    # steps and the compiled kind to choose (garvideo/defaults.py); then generate vs the static loop in one process
    step model-decode $PY bench/model.py --decode --full-size --device "$DEVICE" --frames 16 --new-tokens 128 \
        --repeats 2 --write
    # text regions: grounding-dino-tiny's shapes and the tiny detector at 720p beside transformers' pipeline
    step detector $PY bench/grounding.py --device "$DEVICE" --models tiny gdino-tiny --frames 5 --seconds 5 --write
    # SAM2.1-tiny shapes at 720p: frames/s plain vs compiled (image encoder + memory attention under bfloat16
    # autocast), 1 and 4 objects batched; the compile time is in the warm-up column
    step track-objects-720p $PY bench/track_objects.py --device "$DEVICE" --models hiera-tiny --size 1280x720 \
        --frames 60 --objects 1 4 --variants batched --compile both --rounds 2 --write
    # the end-to-end describe of a 60 s 720p clip (track, tracks JSON, describe with GAR-1B shapes, overlay);
    # bench/long.py's report projects one hour from it into bench/RESULTS.md (## Long videos, a block naming the card)
    step describe-720p $PY bench/long.py --full-size --device "$DEVICE" --minutes 1 --fps 30 --size 1280x720 \
        --new-tokens 64 --results "$OUT/long" --clips "$OUT/clips" --write
    # decode-ahead: SAM2.1-tiny shapes tracking a 720p clip, frames decoded in the tracker's thread vs ahead
    step prefetch-720p $PY bench/prefetch.py --full-size --device "$DEVICE" --frames 150 --repeats 2 \
        --cache "$OUT/clips" --write
    step pipeline-full $PY bench/pipeline.py --full-size --device "$DEVICE" --frames 64 --gar-frames 16 \
        --new-tokens 128 --repeats 3 --warmup 1 --write
    # fine-tuning GAR-1B shapes (LoRA, bfloat16 + float32 trained weights): step time, tokens/s, peak memory for
    # batches of 1, 4 and 8 video examples of 16 frames, with and without gradient checkpointing
    step train-1b $PY bench/train.py --full-size --device "$DEVICE" --frames 16 --batch-sizes 1 4 8 --repeats 3 --write
    step track $PY bench/track.py --device "$DEVICE" --models tiny hiera-tiny --lengths 100 1000 --write
    # SAM2.1-tiny shapes at 720p, 1 and 4 objects (15 s clips, tracking only)
    step track-720p $PY bench/long.py --full-size --device "$DEVICE" --minutes 0.25 --fps 30 --size 1280x720 \
        --objects 1 4 --track-only --results "$OUT/long" --clips "$OUT/clips"
    # the Long videos block again, now with the tracking-only rows (it is built from every run in --results)
    step long-report $PY bench/long.py --results "$OUT/long" --write
    # live video: SAM2.1-tiny and GAR-1B shapes on a 720p 30 fps stream, 1 and 4 regions (goal on an H100: at
    # least 30 fps tracked, each 10 s window described within 2 s of its end)
    step live-720p $PY bench/live.py --full-size --device "$DEVICE" --size 1280x720 --fps 30 --seconds 30 \
        --objects 1 4 --window 10 --new-tokens 64 --clips "$OUT/clips" --write
    # the service with GAR-1B shapes: 8 describe jobs through the Python API, then through garvideo serve from 8
    # clients at once, 1, 2 and 4 jobs at a time (tracking of one overlapping describing of another)
    step serve-full $PY bench/serve.py --full-size --device "$DEVICE" --jobs 8 --frames 48 --size 640x360 \
        --new-tokens 64 --slots 1 2 4 --repeats 1 --write
    step model-full $PY bench/model.py --full-size --device "$DEVICE" --frames 16
    step pipeline-tiny $PY bench/pipeline.py --device "$DEVICE" --write
fi
cp bench/RESULTS.md "$OUT/RESULTS.md"
exit $status

"""One GAR shared by concurrent jobs: calls waiting together are generated together, with the answers each
call gets alone; a cancelled job's call stops hearing without stopping the others'; seeded sampling is never
merged. The GAR thread is held busy by a first call until the others wait (no timing involved)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from garvideo.model import GenerationSettings
from garvideo.serve.models import SharedGAR
from garvideo.testing.waiting import wait_until
from garvideo.video import open_video

GREEDY = GenerationSettings(max_new_tokens=4)


@pytest.fixture(scope="module")
def prompts(pipeline, material):
    """Four prompts of one length (numbers of two digits): the CPU batches such prompts together."""
    with open_video(material.root / "clips" / "moving.mp4") as video:
        frames = [f.image for f in video.read([0, 12])]
    x1, y1, x2, y2 = material.box
    mask = np.zeros(frames[0].shape[:2], dtype=bool)
    mask[y1:y2, x1:x2] = True
    return [
        pipeline.gar.prepare_video(frames, {"thing": [mask, mask]}, f"Is <thing> number {n}?") for n in range(10, 14)
    ]


class Held:
    """A first call that keeps the GAR thread busy (in its first token's callback) until released."""

    def __init__(self, shared: SharedGAR, prompt) -> None:
        self.inside, self.release = threading.Event(), threading.Event()

        def hold(index, text, done):
            self.inside.set()
            self.release.wait(60)

        self.thread = threading.Thread(target=shared.answer, args=([prompt], GREEDY), kwargs={"on_text": hold})
        self.thread.start()
        assert self.inside.wait(60)


def answer_in_thread(shared, prompt, results, key, settings=GREEDY, on_text=None):
    def run():
        try:
            results[key] = shared.answer([prompt], settings, on_text=on_text)[0].text
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            results[key] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_waiting_calls_share_one_run_and_get_their_own_answers(pipeline, prompts):
    shared = SharedGAR(pipeline.gar)
    try:
        held = Held(shared, prompts[0])
        results: dict = {}

        def stop(index, text, done):
            raise KeyboardInterrupt("cancelled")  # as a cancelled job's listener raises

        threads = [answer_in_thread(shared, p, results, n) for n, p in enumerate(prompts[1:3], start=1)]
        threads.append(answer_in_thread(shared, prompts[3], results, 3, on_text=stop))
        assert wait_until(lambda: shared._calls.qsize() == 3, timeout=60, every=0.01)
        held.release.set()
        for thread in [held.thread, *threads]:
            thread.join(60)
        assert shared.merged_calls == 3  # the three waiting calls, in one run
        alone = [pipeline.gar.answer([p], GREEDY)[0].text for p in prompts[1:3]]
        assert [results[1], results[2]] == alone
        assert isinstance(results[3], KeyboardInterrupt)  # the cancelled one ends with its own exception
    finally:
        shared.close()


def test_seeded_sampling_runs_alone(pipeline, prompts):
    shared = SharedGAR(pipeline.gar)
    try:
        held = Held(shared, prompts[0])
        seeded = GenerationSettings(max_new_tokens=4, do_sample=True, seed=7)
        results: dict = {}
        threads = [answer_in_thread(shared, p, results, n, seeded) for n, p in enumerate(prompts[1:3])]
        assert wait_until(lambda: shared._calls.qsize() == 2, timeout=60, every=0.01)
        held.release.set()
        for thread in [held.thread, *threads]:
            thread.join(60)
        assert shared.merged_calls == 0
        assert results[0] == pipeline.gar.answer([prompts[1]], seeded)[0].text  # the seed's own draw
    finally:
        shared.close()

"""Compiled decoding: the `auto` decision, the compile cache's keys and folders, CUDA-graph buffers, and falling back."""

from __future__ import annotations

import json
import os
import warnings

import pytest
import torch

from garvideo import defaults
from garvideo.compile_cache import CompileCache, CompileCacheWarning, CompileKey, cache_root, config_hash
from garvideo.errors import InvalidInputError
from garvideo.model import GAR, GenerationSettings
from garvideo.model.compiling import compile_setting, decide
from garvideo.model.decoding import CompileFailedWarning, DecodeOptions, StaticDecoder

CPU_COLD = defaults.COMPILE_PAYBACK_STEPS["cpu"]["cold"]
CPU_WARM = defaults.COMPILE_PAYBACK_STEPS["cpu"]["warm"]
CUDA_COLD = defaults.COMPILE_PAYBACK_STEPS["cuda"]["cold"]


def test_settings_read_as_one_of_five_and_a_mistake_is_one_line():
    assert [compile_setting(v) for v in (True, False, None, "AUTO", "cuda-graphs")] == [
        "on",
        "off",
        defaults.COMPILE,
        "auto",
        "cuda-graphs",
    ]
    with pytest.raises(InvalidInputError, match="compile must be one of auto, on, off, inductor, cuda-graphs"):
        compile_setting("fast")
    with pytest.raises(InvalidInputError, match="compile must be one of"):
        compile_setting(1)


def test_forced_settings_ignore_the_work_planned():
    assert decide("off", "cuda", planned_steps=10**6, long_running=True).kind == "eager"
    assert decide("on", "cpu", planned_steps=1).kind == "inductor"
    assert decide("on", "cuda", planned_steps=1).kind == defaults.COMPILE_KIND
    assert decide("cuda-graphs", "cuda", planned_steps=1).kind == "cuda-graphs"
    assert decide("inductor", "cuda", planned_steps=1).reason == "compile inductor"


def test_auto_compiles_a_one_shot_call_only_when_its_steps_pay_the_warm_up_back():
    short = decide("auto", "cpu", planned_steps=CPU_COLD - 1)
    assert not short.compiled and f"fewer than the {CPU_COLD}" in short.reason and "cold" in short.reason
    assert decide("auto", "cpu", planned_steps=CPU_COLD).compiled
    # a warm compile cache pays back sooner
    assert decide("auto", "cpu", planned_steps=CPU_WARM, warm=True).compiled
    assert not decide("auto", "cpu", planned_steps=CPU_WARM - 1, warm=True).compiled
    # a one-shot process plans its work: what an API caller ran before does not count unless it runs long
    assert not decide("auto", "cpu", planned_steps=10, done_steps=CPU_COLD).compiled
    assert not decide("auto", "cuda", planned_steps=CUDA_COLD - 1).compiled
    assert decide("auto", "cuda", planned_steps=CUDA_COLD).kind == defaults.COMPILE_KIND


def test_auto_in_a_long_running_process_compiles_at_once_on_cuda_and_when_earned_on_a_cpu():
    assert decide("auto", "cuda", planned_steps=1, long_running=True).compiled
    assert not decide("auto", "cpu", planned_steps=1, long_running=True).compiled
    earned = decide("auto", "cpu", planned_steps=10, done_steps=CPU_COLD - 10, long_running=True)
    assert earned.compiled and f"run before ({CPU_COLD - 10})" in earned.reason
    kept = decide("auto", "cpu", planned_steps=1, compiled_before=True)
    assert kept.compiled and "earlier in this process" in kept.reason
    assert not decide("auto", "mps", planned_steps=10**6, long_running=True).compiled  # nothing measured there


def _key(**changes) -> CompileKey:
    fields = dict(what="step", model="folder", config="abc", dtype="float32", device="cpu AVX2", torch="2.0")
    return CompileKey(**{**fields, **changes})


def test_every_part_of_the_key_changes_the_folder(tmp_path):
    folders = {CompileCache(_key(), tmp_path).folder}
    for field, value in [("what", "other"), ("model", "a/b@1"), ("config", "def"), ("dtype", "bfloat16")]:
        folders.add(CompileCache(_key(**{field: value}), tmp_path).folder)
    for field, value in [("device", "cuda sm90 NVIDIA H200"), ("torch", "2.1"), ("garvideo", "9.9")]:
        folders.add(CompileCache(_key(**{field: value}), tmp_path).folder)
    assert len(folders) == 8 and all(f.parent == tmp_path / "compile" for f in folders)


def test_a_folder_is_named_by_its_config_and_a_hub_id_by_id_and_revision(tmp_path):
    config = {"text_config": {"hidden_size": 64, "_name_or_path": "/a"}, "transformers_version": "5.17"}
    moved = {"text_config": {"hidden_size": 64, "_name_or_path": "/b"}, "transformers_version": "5.25"}
    wider = {"text_config": {"hidden_size": 128, "_name_or_path": "/a"}}
    assert config_hash(config) == config_hash(moved) != config_hash(wider)
    folder = CompileKey.for_model("step", str(tmp_path), None, config, torch.float32, "cpu")
    assert folder.model == "folder" and folder.dtype == "float32" and folder.device.startswith("cpu ")
    assert folder.torch == torch.__version__
    hub = CompileKey.for_model("step", "HaochenWang/GAR-1B", "abc123", config, torch.bfloat16, "cpu")
    assert hub.model == "HaochenWang/GAR-1B@abc123" and hub.dtype == "bfloat16"


def test_the_cache_folder_is_garvideo_cache_or_home(monkeypatch, tmp_path):
    monkeypatch.setenv("GARVIDEO_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv("GARVIDEO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "garvideo"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "garvideo"


def test_compiling_points_torch_at_the_folder_and_ready_makes_it_warm(tmp_path):
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    before = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    cache = CompileCache(_key(), tmp_path)
    assert not cache.warm
    with cache.compiling():
        assert cache_dir() == str(cache.folder / "inductor")
    assert os.environ.get("TORCHINDUCTOR_CACHE_DIR") == before
    assert json.loads((cache.folder / "key.json").read_text())["config"] == "abc" and not cache.warm
    cache.mark_ready()
    assert cache.warm and CompileCache(_key(), tmp_path).warm


@pytest.mark.parametrize("stored", ['{"what": "another key"}', "not json {"], ids=["foreign", "corrupt"])
def test_a_foreign_or_corrupt_folder_is_emptied_with_a_warning_not_an_error(tmp_path, stored):
    cache = CompileCache(_key(), tmp_path)
    (cache.folder / "inductor").mkdir(parents=True)
    (cache.folder / "inductor" / "entry").write_text("left by someone else")
    (cache.folder / "key.json").write_text(stored)
    (cache.folder / "ready").write_text("1")
    assert not cache.warm
    with pytest.warns(CompileCacheWarning, match="ignoring the compile cache .* emptied, so compiling starts afresh"):
        with cache.compiling():
            pass
    assert not (cache.folder / "inductor" / "entry").exists() and not cache.warm
    assert json.loads((cache.folder / "key.json").read_text())["what"] == "step"


def test_an_unwritable_cache_is_warned_about_and_compiling_goes_on(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    cache = CompileCache(_key(), blocker)
    with pytest.warns(CompileCacheWarning, match="cannot be written"):
        with cache.compiling():
            ran = True
    assert ran and not cache.warm


def _embeds(mllm, batch: int, length: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    embeds = torch.randn(batch, length, mllm.config.text_config.hidden_size, generator=generator)
    attention = torch.ones(batch, length, dtype=torch.long)
    attention[0, : length // 5] = 0  # left padding in the first row
    return embeds, attention


def test_graphed_steps_read_their_inputs_from_buffers_refilled_every_step_and_call(gar):
    """The cuda-graphs kind's static buffers, exercised on the CPU (where the step re-runs on them): two calls of
    other prompts on one kept cache give the eager tokens and logits."""
    mllm = gar.model.mllm
    graphed, eager = StaticDecoder(mllm, compile="cuda-graphs"), StaticDecoder(mllm)
    options = DecodeOptions(max_new_tokens=7, eos_token_id=-1, pad_token_id=0, output_logits=True)
    for length, seed in ((40, 0), (65, 1)):
        embeds, attention = _embeds(mllm, 2, length, seed)
        expected, expected_logits = eager.decode(embeds, attention, options)
        tokens, logits = graphed.decode(embeds, attention, options)
        assert torch.equal(tokens, expected)
        torch.testing.assert_close(logits, expected_logits, atol=1e-5, rtol=0)
    (kept,) = graphed._caches.values()
    assert kept.graphed is not None and kept.warmed and graphed.warmup_s > 0 and graphed.failure is None


def test_a_step_that_fails_to_compile_is_warned_about_and_decodes_eagerly(gar):
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no C++ compiler here")

    mllm = gar.model.mllm
    failing = StaticDecoder(mllm, compile=True, compile_options={"backend": broken_backend})
    options = DecodeOptions(max_new_tokens=5, eos_token_id=-1, pad_token_id=0)
    embeds, attention = _embeds(mllm, 1, 30, 2)
    expected, _ = StaticDecoder(mllm).decode(embeds, attention, options)
    torch._dynamo.reset()
    try:
        with pytest.warns(CompileFailedWarning, match=r"compiling GAR's decode step \(inductor\) failed"):
            tokens, _ = failing.decode(embeds, attention, options)
    finally:
        torch._dynamo.reset()
    assert torch.equal(tokens, expected) and failing.kind == "eager" and "no C++ compiler" in failing.failure
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: later calls are eager without a word
        assert torch.equal(failing.decode(embeds, attention, options)[0], expected)


def test_gar_records_what_auto_decided_and_refuses_graphs_without_cuda(gar, tiny_checkpoint, scene):
    image, masks = scene
    inputs = gar.processor.prepare_caption(image, masks["blue"])
    gar.generate(inputs, GenerationSettings(max_new_tokens=3))
    record = gar.info.compile_record
    assert (record.setting, record.kind, record.warmup_s, record.cache) == ("auto", "eager", 0.0, None)
    assert record.reason.startswith("auto: 3 decode steps planned, fewer than") and not gar.info.compiled
    gar.generate(inputs, GenerationSettings(max_new_tokens=3, decoder="generate"))
    assert "transformers' generate" in gar.info.compile_record.reason
    with pytest.raises(InvalidInputError, match="cuda-graphs' needs a CUDA device"):
        GAR.from_pretrained(tiny_checkpoint, device="cpu", compile="cuda-graphs")
    with pytest.raises(InvalidInputError, match="compile must be one of"):
        gar.compile = "sometimes"

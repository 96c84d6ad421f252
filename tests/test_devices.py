import pytest
import torch

from garvideo import InvalidInputError
from garvideo.devices import resolve_device, resolve_dtype


def test_auto_device_and_dtype(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype(None, torch.device("cuda")) == torch.bfloat16


def test_auto_takes_the_local_rank_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert resolve_device("auto") == torch.device("cuda:2")
    monkeypatch.setenv("LOCAL_RANK", "7")  # more workers than GPUs: leave it to CUDA_VISIBLE_DEVICES
    assert resolve_device("auto") == torch.device("cuda")


def test_explicit_choices_are_checked(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InvalidInputError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(InvalidInputError, match="unknown device"):
        resolve_device("gpu-please")
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    assert resolve_dtype("fp16", torch.device("cpu")) == torch.float16
    with pytest.raises(InvalidInputError, match="unknown dtype"):
        resolve_dtype("int3", torch.device("cpu"))


def test_stage_threads_one_for_tracking_every_core_for_gar(monkeypatch):
    from garvideo.devices import cpu_cores, stage_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert stage_threads("track", torch.device("cpu")) == 1
    assert stage_threads("gar", torch.device("cpu")) == cpu_cores() >= 1
    assert stage_threads("gar", "cpu", threads=3) == stage_threads("track", "cpu", threads=3) == 3  # --threads wins
    assert stage_threads("track", torch.device("cuda:1")) is None  # GPU stages leave torch's threads alone
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's environment is their choice
    assert stage_threads("gar", "cpu") is None
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InvalidInputError, match="threads must be a whole number"):
            stage_threads("gar", "cpu", threads=bad)
    # more than the system could start is refused with its own message, not a thread error deep in decoding
    from garvideo.devices import max_threads

    assert stage_threads("gar", "cpu", threads=max_threads()) == max_threads() >= 8
    with pytest.raises(InvalidInputError, match=f"threads must be at most {max_threads()}"):
        stage_threads("gar", "cpu", threads=100_000)


def test_torch_threads_sets_and_restores():
    from garvideo.devices import torch_threads

    before = torch.get_num_threads()
    other = 2 if before == 1 else 1
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(other):
        raise RuntimeError("a failing stage")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before

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

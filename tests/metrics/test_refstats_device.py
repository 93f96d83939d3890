"""Reference statistics do not take training's GPU speed settings (TF32, cuDNN autotuning) and are cached per
device type (issue 31). The switches are process flags, so their handling is checked here without a GPU."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.metrics import refstats as rs
from genlab.metrics.features.base import full_float32
from genlab.training import perf

from .conftest import make_random_extractor


@pytest.fixture
def gpu_flags():
    """What training on a GPU leaves on for the whole process (perf.apply_process_settings), put back after."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (matmul.fp32_precision, cudnn.conv.fp32_precision, cudnn.benchmark)
    perf.apply_process_settings(perf.Runtime(device="cuda", tf32=True, cudnn_benchmark=True,
                                             threads=torch.get_num_threads()))
    yield matmul, cudnn
    matmul.fp32_precision, cudnn.conv.fp32_precision, cudnn.benchmark = saved


def flags(matmul, cudnn) -> tuple:
    return matmul.fp32_precision, cudnn.conv.fp32_precision, cudnn.benchmark


def test_features_are_extracted_in_ieee_float32_whatever_training_left_on(gpu_flags):
    training = flags(*gpu_flags)
    assert training == ("tf32", "tf32", True)  # the precondition: training's settings are on
    with full_float32(torch.device("cuda")):
        assert flags(*gpu_flags) == ("ieee", "ieee", False)
    assert flags(*gpu_flags) == training  # put back for training
    with full_float32(torch.device("cpu")):
        assert flags(*gpu_flags) == training  # the CPU has no such switches: nothing touched


def test_the_cache_is_kept_per_device_type(real_data):
    ext = make_random_extractor(seed=0)
    first, desc = rs.reference_stats(real_data, ext)
    path = rs.refstats_path(rs.reference_identity(real_data)[0], ext)
    payload = torch.load(path, weights_only=True)
    assert payload["key"]["device"] == "cpu" and path.name.endswith(f"{ext.hash}.pt")
    payload["key"]["device"] = "cuda"  # as if a GPU had written the CPU's file
    payload["stats"]["mu"] += 5.0
    torch.save(payload, path)
    again, desc = rs.reference_stats(real_data, ext)
    assert desc["cached"] is False and np.abs(again.mu - first.mu).max() < 1e-6  # recomputed, not reused
    payload = torch.load(path, weights_only=True)
    del payload["key"]["device"]  # a file from before the device was recorded: the CPU's, still valid
    torch.save(payload, path)
    assert rs.reference_stats(real_data, ext)[1]["cached"] is True

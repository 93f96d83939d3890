"""Silent corruption is caught: a flipped bit inside a checkpoint's weights, a checkpoint holding NaN weights, a
damaged noise file, a tampered export, caches that do not fit; and sizes, files and records that would crash or
exhaust the machine are refused with one line (tests/test_deletion.py covers what may be deleted)."""
from __future__ import annotations

import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import genlab
from genlab.data import DataWarning, load_dataset
from genlab.errors import RunError
from genlab.recipe import load_config
from genlab.rundir import RunDir
from genlab.training.checkpoint import CorruptCheckpoint, load_checkpoint, resume_checkpoint, save_checkpoint

from .conftest import tiny_overrides


def flip_a_bit_in_the_weights(path: Path) -> None:
    """Flip one bit in the middle of the largest tensor stored in a torch zip file; the zip stays readable (its
    CRC is not updated, which torch.load does not check)."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(path, "r+b") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", f.read(4))
        at = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
        f.seek(at)
        byte = f.read(1)[0]
        f.seek(at)
        f.write(bytes([byte ^ 0x10]))


@pytest.fixture
def run(gan_run, tmp_path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(gan_run, dest)
    return dest


def test_a_flipped_bit_in_a_checkpoint_is_caught_and_resume_takes_the_older_one(run):
    files = RunDir.of(run).checkpoint_files()
    assert len(files) >= 2
    load_checkpoint(files[-1])  # loads before the flip
    flip_a_bit_in_the_weights(files[-1])
    torch.load(files[-1], weights_only=True)  # torch itself does not notice
    with pytest.raises(CorruptCheckpoint, match="do not match the checksum") as e:
        load_checkpoint(files[-1])
    assert str(files[-2]) in str(e.value)
    with pytest.raises(RunError, match="corrupt"):
        genlab.load_run(run)  # sampling names the older checkpoint instead of drawing from damaged weights
    said = []
    assert resume_checkpoint(run, said.append) == files[-2]
    assert "corrupt" in said[0] and files[-1].with_name(files[-1].name + ".corrupt").is_file()


def test_a_checkpoint_holding_nan_weights_is_treated_as_corrupt(run):
    files = RunDir.of(run).checkpoint_files()
    ckpt = load_checkpoint(files[-1])
    name = next(k for k, v in ckpt["nets"]["G"].items() if v.is_floating_point())
    ckpt["nets"]["G"][name][0] = float("nan")
    save_checkpoint(files[-1], ckpt)  # a sound file (its checksum fits) with NaN inside
    with pytest.raises(CorruptCheckpoint, match=f"non-finite weights in nets.G.{name}"):
        load_checkpoint(files[-1])
    assert resume_checkpoint(run, lambda *_: None) == files[-2]


def test_a_damaged_noise_file_is_one_line(run):
    flip_a_bit_in_the_weights(run / "noise.pt")
    with pytest.raises(RunError, match="does not match the checksum"):
        RunDir.of(run).load_noise()


# ------------------------------------------------------------------------------------------ caches
def test_a_prepared_split_that_does_not_fit_is_decoded_again(tiny_fmnist):
    from genlab.data import prepared_file

    cfg = load_config(None, tiny_overrides(tiny_fmnist)).data
    first = load_dataset(cfg)
    path = prepared_file(cfg)
    payload = torch.load(path, weights_only=True)
    payload["images"] = payload["images"][:, :, :20, :20].contiguous()  # the wrong size, a sound file
    payload.pop("digest")
    torch.save(payload, path)
    with pytest.warns(DataWarning, match="does not fit"):
        again = load_dataset(cfg)
    assert torch.equal(again.images, first.images)
    assert load_dataset(cfg).images.shape == first.images.shape  # the file was written anew: no second warning


def test_cached_reference_statistics_holding_nan_are_computed_again(tiny_fmnist):
    from genlab.metrics import refstats as rs
    from genlab.metrics.stats import FeatureWarning

    from .metrics.conftest import make_random_extractor

    ext = make_random_extractor(seed=0)
    data = load_dataset(load_config(None, tiny_overrides(tiny_fmnist)).data)
    good, _ = rs.reference_stats(data, ext)
    path = rs.refstats_path(rs.reference_identity(data)[0], ext)
    payload = torch.load(path, weights_only=True)
    payload["stats"]["mu"][0] = float("nan")
    payload["digest"] = genlab.io.content_digest(payload["stats"])  # as if NaN had been written
    torch.save(payload, path)
    with pytest.warns(FeatureWarning, match="non-finite values in the mean"):
        stats, desc = rs.reference_stats(data, ext)
    assert desc["cached"] is False and np.array_equal(stats.mu, good.mu)

"""Silent corruption is caught: a flipped bit inside a checkpoint's weights, a checkpoint holding NaN weights, a
damaged noise file, a tampered export, caches that do not fit; and sizes, files and records that would crash or
exhaust the machine are refused with one line (tests/test_deletion.py covers what may be deleted)."""
from __future__ import annotations

import json
import shutil
import struct
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from genlab.checkpoint import CorruptCheckpoint, load_checkpoint, resume_checkpoint, save_checkpoint
from genlab.data import DataWarning, load_dataset
from genlab.errors import ConfigError, DataError, RunError
from genlab.recipe import load_config
from genlab.rundir import RunDir

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


def test_a_tampered_export_is_refused_before_anything_is_allocated(run, tmp_path):
    out = genlab.export_generator(run, tmp_path / "export")
    meta = json.loads((out / "generator.json").read_text())
    meta["config"]["model"]["hidden_dim"] = 10_000_000  # would allocate terabytes before the shapes were checked
    (out / "generator.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match="do not fit"):
        genlab.load_generator(out)
    out2 = genlab.export_generator(run, tmp_path / "export2")
    flip_a_bit_in_the_weights_of_safetensors(out2 / "generator.safetensors")
    with pytest.raises(RunError, match="does not match the checksum"):
        genlab.load_generator(out2)


def flip_a_bit_in_the_weights_of_safetensors(path: Path) -> None:
    data = bytearray(path.read_bytes())
    header = struct.unpack("<Q", data[:8])[0]
    data[8 + header + (len(data) - 8 - header) // 2] ^= 0x10
    path.write_bytes(bytes(data))


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


# ------------------------------------------------------------------------------------------ sizes and files
def test_sizes_that_cannot_fit_are_refused_with_the_estimate(tiny_fmnist, tmp_path):
    from genlab.training.loop import train

    for override, words in (("model.hidden_dim=10000000", "model.hidden_dim=10000000"),
                            ("log.num_samples=100000000", "log.num_samples=100000000")):
        cfg = load_config(None, tiny_overrides(tiny_fmnist, override))
        with pytest.raises(ConfigError) as e:
            train(cfg, tmp_path / "r", log=lambda *_: None)
        assert words in str(e.value) and "needs about" in str(e.value) and "available" in str(e.value)
        assert not (tmp_path / "r").exists()
    for override in ("train.g_opt.lr=inf", "train.d_opt.weight_decay=inf", "train.g_opt.lr=nan"):
        with pytest.raises(ConfigError, match="a finite number"):
            load_config(None, tiny_overrides(tiny_fmnist, override))


def big_png(path: Path, side: int = 12_000) -> Path:
    """A real, valid grey PNG of side x side pixels that is small on disk (streamed: no big buffer here)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp, row, parts = zlib.compressobj(9), b"\x00" * (side + 1), []
    for _ in range(side):
        parts.append(comp.compress(row))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts))
                     + chunk(b"IEND", b""))
    return path


def test_huge_images_and_dangling_links_are_skipped_not_fatal(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.new("L", (16, 16), 40 * i).save(folder / f"ok_{i}.png")
    big = big_png(folder / "huge.png")
    assert big.stat().st_size < 1_000_000
    (folder / "gone.png").symlink_to(tmp_path / "deleted.png")
    cfg = load_config(None, ["data.name=image-folder", f"data.root={folder}", "data.resolution=28",
                             "data.channels=1"]).data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset(cfg)
    said = " ".join(str(w.message) for w in caught if issubclass(w.category, DataWarning))
    assert len(data) == 3 and "huge.png" in said and "12000x12000" in said and "gone.png" in said
    with pytest.raises(DataError, match="12000x12000"):
        from genlab.data.images import decode_image

        decode_image(big, 8, 1)


def test_a_null_line_in_the_records_does_not_break_resume(run):
    rd = RunDir.of(run)
    with rd.metrics.open("a") as f:
        f.write("null\n[1, 2]\n{\"step\": \"x\"}\n")
    assert all(isinstance(r, dict) for r in rd.read_records())
    rd.truncate_records(10**9)
    assert "null" not in rd.metrics.read_text()

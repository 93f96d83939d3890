"""The W&B tracker offline (WANDB_MODE=offline: no network, no account): the run folder W&B writes is read back,
its transaction log (run-<id>.wandb) record by record with W&B's own protobuf messages."""
from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from wandb.proto import wandb_internal_pb2 as pb

from genlab.rundir import RunDir

from .conftest import EVAL

#: the .wandb file: a 7-byte header (":W&B", magic 0xBEE1, version), then LevelDB-log framing: 32 KiB blocks of
#: chunks, each with a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last) and a Record
BLOCK, HEADER = 32768, 7


def wandb_records(path: Path) -> Iterator[pb.Record]:
    data = path.read_bytes()
    ident, magic, _version = struct.unpack("<4sHB", data[:HEADER])
    assert (ident, magic) == (b":W&B", 0xBEE1), (ident, magic)
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # the block's tail is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if kind == 0:  # zero padding up to the block's end
            pos += left
            continue
        pending += data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def read_offline_run(folder: Path) -> dict:
    """One offline run folder -> its config, history rows, summary updates, artifacts and exit code."""
    [log] = folder.glob("run-*.wandb")
    out: dict = {"config": {}, "history": [], "summary": {}, "artifacts": [], "exit_code": None}
    for r in wandb_records(log):
        kind = r.WhichOneof("record_type")
        if kind in ("run", "config"):
            updates = r.run.config.update if kind == "run" else r.config.update
            out["config"].update({u.key: json.loads(u.value_json) for u in updates})
        elif kind == "history":
            out["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item})
        elif kind == "summary":
            out["summary"].update({u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in r.summary.update})
        elif kind == "artifact":
            paths = sorted(c.path for c in r.artifact.manifest.contents)
            out["artifacts"].append((r.artifact.name, r.artifact.type, paths))
        elif kind == "exit":
            out["exit_code"] = r.exit.exit_code
    return out


@pytest.fixture
def offline(tmp_path, monkeypatch) -> Path:
    """W&B offline, its settings, cache and staging folders inside tmp_path (nothing in $HOME)."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    return tmp_path / "runs"


def test_an_offline_run_holds_everything_and_a_resume_keeps_its_id(offline, tiny_train, eval_cache):
    run_dir = offline / "gan"
    lines: list[str] = []
    tiny_train(run_dir, "log.trackers=[wandb]", "log.experiment=genlab-tests", *EVAL, lines=lines)
    run_id = RunDir.of(run_dir).read_tracker_ids()["wandb"]["id"]
    run = tiny_train(run_dir, "train.epochs=2", resume=True, lines=lines)
    assert run.step == 4 and RunDir.of(run_dir).read_tracker_ids()["wandb"]["id"] == run_id
    # one offline folder per part, both with the run's id (`wandb sync` joins them), beside the run folder
    parts = sorted((offline / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(parts) == 2, sorted(p.name for p in (offline / "wandb").iterdir())
    assert sum(f"wandb: offline run {run_id} in " in line for line in lines) == 2
    first, second = (read_offline_run(p) for p in parts)

    # the resolved config, updated by the resume
    assert first["config"]["model"]["name"] == "dcgan" and first["config"]["log"]["trackers"] == ["wandb"]
    assert first["config"]["train"]["epochs"] == 1 and second["config"]["train"]["epochs"] == 2

    # every record at its step, each evaluation with its protocol, the grids
    records = RunDir.of(run_dir).read_records()
    rows = first["history"] + second["history"]
    for key in ("loss_G", "D(G(z))", "lr/D", "time/images_per_s", "fid"):
        logged = [(row["_step"], row[key]) for row in rows if key in row]
        assert logged == [(r["step"], r[key]) for r in records if key in r], key
    evals = [r for r in records if r.get("kind") == "eval"]
    assert [r["step"] for r in evals] == [2, 4]
    for part, r in zip(parts, evals):
        saved = json.loads((part / "files" / "evaluations" / f"step_{r['step']:09d}.json").read_text())
        assert saved == r and saved["protocol"]["extractor"] == "classifier"
    assert second["summary"]["eval_protocol"] == evals[-1]["protocol"]
    images = [(row["_step"], row["samples/path"]) for row in rows if "samples/path" in row]
    assert [s for s, _ in images] == [2, 4]
    assert all((part / "files" / path).is_file() for part, (_, path) in zip(parts, images))

    # the final export and eval.json as a model artifact; the status
    for part in (first, second):
        [(name, kind, paths)] = part["artifacts"]
        assert name == f"generator-{run_id}" and kind == "model"
        assert paths == ["eval.json", "export/.genlab-export", "export/generator.json", "export/generator.safetensors"]
        assert part["summary"]["genlab_status"] == "finished" and part["exit_code"] == 0

"""Helpers for the reporting tests (a module of its own: conftest files are not importable by name)."""
from __future__ import annotations

from pathlib import Path


def with_eval(src: Path, dst: Path, fids: list[float], extra: dict | None = None) -> Path:
    """A copy of a run with evaluation records (one per epoch) and an eval.json, as the metrics package writes."""
    import json
    import shutil

    shutil.copytree(src, dst)
    with (dst / "metrics.jsonl").open("a") as f:
        for i, fid in enumerate(fids, start=1):
            f.write(json.dumps({"kind": "eval", "step": 4 * i, "epoch": i, "fid": fid, "kid": fid / 1000,
                                "precision": 0.1 * i}) + "\n")
    (dst / "eval.json").write_text(json.dumps({"fid": fids[-1], "kid": fids[-1] / 1000, "precision": 0.1 * len(fids),
                                               **(extra or {}),
                                               "protocol": {"features": "classifier", "num_samples": 64}}))
    return dst

"""How easy the code is to follow, in numbers (issue 25's "house" measurements; nothing here asserts).

1. Modules visited: the genlab modules whose code runs while ``genlab train`` trains a tiny run to its checkpoint,
   and while ``genlab eval`` of that run writes eval.json (in-process, through ``genlab.cli.main``; a profile hook
   notes the file of every Python function called).
2. The largest functions of ``src/genlab``: by lines and by parameters.

Usage: python scripts/house_metrics.py [--top 8]   (run it with PYTHONPATH pointing at another tree to compare)
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
import tempfile
from pathlib import Path

import genlab

SRC = Path(genlab.__file__).resolve().parent


def visited(argv: list[str]) -> list[str]:
    """genlab modules (paths under src/genlab) whose functions ran during ``genlab ARGV``."""
    from genlab.cli import app

    seen: set[str] = set()

    def hook(frame, event, arg):
        if event == "call":
            f = frame.f_code.co_filename
            if f.startswith(str(SRC)):
                seen.add(f)

    sys.setprofile(hook)
    try:
        app(argv, standalone_mode=False)
    finally:
        sys.setprofile(None)
    return sorted(str(Path(f).relative_to(SRC.parent)) for f in seen)


def largest(top: int) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    by_lines, by_params = [], []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{path.relative_to(SRC.parent)}:{node.name}"
                a = node.args
                params = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + bool(a.vararg) + bool(a.kwarg)
                params -= bool(a.args and a.args[0].arg in ("self", "cls"))
                by_lines.append((node.end_lineno - node.lineno + 1, name))
                by_params.append((params, name))
    return sorted(by_lines, reverse=True)[:top], sorted(by_params, reverse=True)[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--data-root", default=None, help="Fashion-MNIST IDX files (default: genlab's own search)")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        run = str(Path(tmp) / "run")
        data = [f"data.root={a.data_root}"] if a.data_root else []
        train = visited(["train", "fashion_mnist_fast", "--run-dir", run, "train.max_steps=2", "train.epochs=1",
                         "data.limit=256", "log.progress=false", "log.tensorboard=false", *data])
        ev = visited(["eval", run, "--metrics", "fid", "--features", "classifier", "--num-samples", "64"])
    print(f"genlab train to its checkpoint: {len(train)} genlab modules")
    print(f"genlab eval to eval.json:       {len(ev)} genlab modules")
    lines, params = largest(a.top)
    print("\nlargest functions by lines:")
    for n, name in lines:
        print(f"  {n:4d}  {name}")
    print("largest functions by parameters:")
    for n, name in params:
        print(f"  {n:4d}  {name}")


if __name__ == "__main__":
    main()

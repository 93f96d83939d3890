"""Mutation testing (mutmut) of the modules where a silent mistake costs users most, each against its own fast tests.

``make mutate`` runs every module below; ``python scripts/mutate.py rundir io`` runs some. Each module gets its own
scratch copy of the repository under ``build/mutate/<name>/`` (src/, tests/, configs/, pyproject.toml and a
setup.cfg holding that module's mutmut options), so runs never touch the work tree. mutmut keeps its results in
``build/mutate/<name>/mutants/``: a later run continues where the last one stopped; ``--retest`` tests again
only the mutants not killed yet (the quick way to see what new tests kill); ``--fresh`` starts over. At the end
it prints, per module, the mutants killed and those that survived, and writes the same table to
``build/mutate/summary.md`` (and ``build/mutate/<name>/summary.md``); ``cd build/mutate/<name> && mutmut show
NAME`` shows one mutant's diff.

The tests run in-process (mutmut forks a warm pytest per mutant), so tests that only drive the ``genlab``
executable in a subprocess cannot see a mutant: they are left out of a module's selection, as are the slow ones
whose checks a faster test in the selection already makes.

``--sample N``: test only every N-th mutant of each module (chosen by a stable hash of the mutant's name, so the
same ones every time), for modules whose full run is too long on a small machine.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "mutate"
COPY = ("src", "tests", "configs", "pyproject.toml")

#: name -> (the module's file, the pytest arguments that select its tests)
MODULES: dict[str, tuple[str, list[str]]] = {
    "checkpoint": ("src/genlab/training/checkpoint.py", [
        "tests/training/test_checkpoint.py", "-k", "not genlab_sample_reports"]),  # those run the executable
    "state": ("src/genlab/training/state.py", ["tests/training/test_state.py"]),
    "rundir": ("src/genlab/rundir.py", [
        "tests/test_rundir.py", "-k", "not second_process and not fails_before_its_first_step"]),  # subprocesses
    "resume": ("src/genlab/resume.py", ["tests/test_resume.py"]),
    "fid": ("src/genlab/metrics/fid.py", ["tests/metrics/test_fid.py"]),
    "kid": ("src/genlab/metrics/kid.py", ["tests/metrics/test_kid.py"]),
    "prdc": ("src/genlab/metrics/prdc.py", ["tests/metrics/test_prdc.py"]),
    "io": ("src/genlab/io.py", ["tests/test_io.py"]),
}


def setup_cfg(module: str, tests: list[str]) -> str:
    lines = ["[mutmut]", "source_paths = src/", f"only_mutate = {module}",
             "pytest_add_cli_args =", "    -n", "    0", "    -p", "    no:cacheprovider",
             "pytest_add_cli_args_test_selection ="] + [f"    {a}" for a in tests]
    return "\n".join(lines) + "\n"


def prepare(name: str, fresh: bool = False) -> Path:
    """The module's scratch copy, refreshed from the work tree (mutmut regenerates mutants of changed files).
    ``fresh``: forget earlier results (mutmut keeps a survivor's verdict until its function changes, even when
    the tests did)."""
    module, tests = MODULES[name]
    work = OUT / name
    if fresh and (work / "mutants").is_dir():
        shutil.rmtree(work / "mutants")
    work.mkdir(parents=True, exist_ok=True)
    for item in COPY:
        src, dst = ROOT / item, work / item
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dst)
    (work / "setup.cfg").write_text(setup_cfg(module, tests))
    # mutmut copies tests/ into mutants/ only once: refresh it, so edited tests are the ones that run
    if (work / "mutants" / "tests").is_dir():
        shutil.rmtree(work / "mutants" / "tests")
    return work


def mutmut(work: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([str(exe), *args], cwd=work, env=env, text=True, capture_output=True)


def results(work: Path) -> dict[str, str]:
    """mutant name -> status (killed, survived, timeout, no tests, ...) of every mutant of the module."""
    r = mutmut(work, "results", "--all", "true")
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r"\s*(\S+__mutmut_\d+): (.+)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def sampled(names: list[str], every: int) -> list[str]:
    return [n for n in names if int(hashlib.sha1(n.encode()).hexdigest(), 16) % every == 0]


def run(name: str, sample: int, children: int, fresh: bool = False, retest: bool = False) -> dict[str, str]:
    work = prepare(name, fresh)
    names: list[str] = []
    if sample > 1:
        names = sorted(results(work))
        if not names:  # generate the mutants (and the per-test stats): a run whose filter matches none of them
            mutmut(work, "run", "--max-children", str(children), "__no_such_mutant__")
            names = sorted(results(work))
        if not names:
            raise SystemExit(f"mutate {name}: mutmut produced no mutants; see {work}")
        names = sampled(names, sample)
    chosen = set(names)  # the sample (empty: every mutant)
    if retest:  # the mutants not killed yet, named: mutmut tests a named mutant again with the current tests
        names = sorted(k for k, v in results(work).items() if v != "killed" and (not chosen or k in chosen))
        if not names:
            return {k: v for k, v in results(work).items() if not chosen or k in chosen}
    r = mutmut(work, "run", "--max-children", str(children), *names)
    if r.returncode != 0:
        raise SystemExit(f"mutate {name}: mutmut run failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    return {k: v for k, v in results(work).items() if not chosen or k in chosen}


def summary(all_results: dict[str, dict[str, str]], sample: int) -> str:
    rows = ["| module | mutants | killed | survived | other |", "|---|---:|---:|---:|---|"]
    for name, res in all_results.items():
        killed = sum(v == "killed" for v in res.values())
        survived = sorted(k for k, v in res.items() if v == "survived")
        other: dict[str, int] = {}
        for v in res.values():
            if v not in ("killed", "survived"):
                other[v] = other.get(v, 0) + 1
        rows.append(f"| {MODULES[name][0]} | {len(res)} | {killed} | {len(survived)} | "
                    f"{', '.join(f'{k} {n}' for k, n in sorted(other.items())) or '-'} |")
    note = f"\nA sample: 1 in {sample} mutants, chosen by a stable hash of the name.\n" if sample > 1 else ""
    lists = []
    for name, res in all_results.items():
        survived = sorted(k for k, v in res.items() if v == "survived")
        if survived:
            lists.append(f"\n{name} survivors:\n" + "\n".join(f"- {k}" for k in survived))
    return "\n".join(rows) + "\n" + note + "\n".join(lists) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help=f"modules to mutate: {', '.join(MODULES)} (default: all)")
    ap.add_argument("--sample", type=int, default=1, help="test every N-th mutant (stable choice; default all)")
    ap.add_argument("--fresh", action="store_true", help="test every mutant again (after the tests changed)")
    ap.add_argument("--retest", action="store_true",
                    help="test again only the mutants not killed yet (after new tests; killed ones stay killed)")
    ap.add_argument("--max-children", type=int, default=1, help="mutants tested at a time (default 1)")
    args = ap.parse_args()
    if shutil.which("mutmut", path=str(Path(sys.executable).parent)) is None:
        raise SystemExit("mutate: mutmut is not installed in this Python: `make mutate` installs it")
    unknown = sorted(set(args.modules) - set(MODULES))
    if unknown:
        raise SystemExit(f"mutate: unknown module(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    all_results = {}
    for name in args.modules or list(MODULES):
        print(f"mutate {name}: {MODULES[name][0]} against {' '.join(MODULES[name][1])}", flush=True)
        all_results[name] = run(name, args.sample, args.max_children, args.fresh, args.retest)
        text = summary({name: all_results[name]}, args.sample)
        (OUT / name / "summary.md").write_text(text)
        print(text, flush=True)
    text = summary(all_results, args.sample)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

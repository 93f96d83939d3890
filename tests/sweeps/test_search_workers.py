"""`genlab search` as real processes: two workers sharing a SQLite study, two commands sharing a PostgreSQL study
(the many-machines way), a worker killed with SIGKILL mid-trial and the same command run again, and an unreachable
database refused in one line."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXE = Path(sys.executable).with_name("genlab")


def write_search(folder: Path, name: str, recipe: str = "tiny.yaml", trials: int = 3, extra: str = "") -> Path:
    p = folder / f"{name}.yaml"
    p.write_text(f"name: {name}\nbase: {recipe}\n"
                 "space: {train.g_opt.lr: {low: 1.0e-5, high: 1.0e-3, log: true}}\n"
                 f"trials: {trials}\nsampler: random\npruner: none\n{extra}")
    return p


def genlab(args: list[str], env: dict, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def load(storage: str, name: str):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def check_study(trials, out: Path, finished: int) -> None:
    """Every trial number once, ``finished`` complete trials, each with its own finished run folder."""
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(numbers)))
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(done) == finished, [(t.number, t.state.name) for t in trials]
    for t in done:
        run = out / t.user_attrs["folder"] / "seed=0"
        assert json.loads((run / "status.json").read_text())["state"] == "finished"
        evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in line]
        assert [e["epoch"] for e in evals] == [1, 2]  # trained once: no epoch evaluated twice
        assert t.value == pytest.approx(evals[-1]["fid"])


def test_two_workers_share_a_sqlite_study(search_world):
    folder, env = search_world["folder"], search_world["env"]
    write_search(folder, "two")
    out = folder / "two_out"
    r = genlab(["search", "two.yaml", "--out", str(out), "--workers", "2"], env, folder)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "local: 2 process(es) at a time, 1 thread(s) each" in r.stdout and "worker-0 done" in r.stdout
    trials = load(f"sqlite:///{out / 'study.db'}", "two")
    check_study(trials, out, 3)
    logs = {k: (out / "logs" / f"worker-{k}.log").read_text() for k in (0, 1)}
    ran = {k: {int(line.split()[1]) for line in log.splitlines() if line.startswith("trial ") and " complete:" in line}
           for k, log in logs.items()}
    assert all("search two: 1 key(s)" in log for log in logs.values())  # both workers joined the study
    assert ran[0] | ran[1] == {0, 1, 2} and not ran[0] & ran[1]  # every trial run by exactly one worker
    pids = {t.user_attrs["worker"]["pid"] for t in trials}
    assert len(pids) == len([k for k in ran if ran[k]])
    assert "3/3 trials finished (3 complete, 0 pruned, 0 failed)" in r.stdout.replace("\n", " ")


def test_two_commands_share_a_postgresql_study(search_world, postgres_url):
    folder, env = search_world["folder"], search_world["env"]
    write_search(folder, "pg")
    out = folder / "pg_out"
    cmd = [str(EXE), "search", "pg.yaml", "--out", str(out), "--storage", postgres_url]
    procs = [subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    trials = load(postgres_url, "pg")
    check_study(trials, out, 3)
    assert not (out / "study.db").exists()
    manifest = json.loads((out / "search.json").read_text())
    assert manifest["storage"].startswith("postgresql://postgres@/genlab")
    ran = [{int(line.split()[1]) for line in o.splitlines() if line.startswith("trial ") and " complete:" in line}
           for o in outputs]
    assert ran[0] | ran[1] == {0, 1, 2} and not ran[0] & ran[1]


def wait_for(path_glob: Path, proc: subprocess.Popen, timeout: float = 240) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = sorted(path_glob.parent.glob(path_glob.name))
        if found:
            return found[0]
        assert proc.poll() is None, "the worker ended before it got there"
        time.sleep(0.05)
    raise AssertionError(f"{path_glob} did not appear in {timeout} s")


def test_a_killed_worker_s_trial_is_failed_then_retried_from_its_checkpoint(search_world):
    folder, env = search_world["folder"], search_world["env"]
    write_search(folder, "kill", recipe="slow.yaml", trials=2)
    out = folder / "kill_out"
    args = ["search", "kill.yaml", "--out", str(out)]
    proc = subprocess.Popen([str(EXE), *args], cwd=folder, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        # trial 0 complete, trial 1 past its checkpoint at epoch 2 of 4: kill the worker there
        wait_for(out / "trials" / "0001" / "seed=0" / "checkpoints" / "step_000000004.pt", proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    storage = f"sqlite:///{out / 'study.db'}"
    before = {t.number: t.state.name for t in load(storage, "kill")}
    assert before == {0: "COMPLETE", 1: "RUNNING"}  # killed mid-trial: the study still thinks it runs
    done0 = out / "trials" / "0000" / "seed=0" / "metrics.jsonl"
    stamp = done0.stat().st_mtime_ns
    r = genlab(args, env, folder)
    assert r.returncode == 0, r.stderr[-3000:]
    text = " ".join(r.stdout.split())
    assert "trial 1: its worker on this machine has ended mid-trial; marked failed, retried" in text
    assert "trial 2 (retry of trial 1)" in text
    assert "resuming from" in text and "trials/0001/seed=0/checkpoints/step_0000000" in text
    trials = load(storage, "kill")
    state = {t.number: t.state.name for t in trials}
    assert state == {0: "COMPLETE", 1: "FAIL", 2: "COMPLETE"}  # no number used twice, trial 0 not run again
    assert trials[1].user_attrs["error"].endswith("ended mid-trial (killed)")
    assert trials[2].system_attrs["retry_history"] == [1] and trials[2].params == trials[1].params
    assert trials[2].user_attrs["folder"] == "trials/0001" and not (out / "trials" / "0002").exists()
    assert done0.stat().st_mtime_ns == stamp
    run = out / "trials" / "0001" / "seed=0"
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in line]
    assert [e["epoch"] for e in evals] == [1, 2, 3, 4]  # continued: the epochs before the kill kept, none twice
    assert trials[2].value == pytest.approx(evals[-1]["fid"])
    assert "| 1 | failed |" in (out / "trials.md").read_text()


def test_an_unreachable_database_is_one_line_before_anything_is_made(search_world, tmp_path):
    folder, env = search_world["folder"], search_world["env"]
    write_search(folder, "nodb")
    out = tmp_path / "nodb_out"
    r = genlab(["search", "nodb.yaml", "--out", str(out), "--storage", "postgresql://genlab@127.0.0.1:9/nothing"],
               env, folder, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot open the study storage postgresql://genlab@"), lines
    assert "check that the database server is running" in lines[0] and "Traceback" not in r.stderr
    assert not out.exists() and r.stdout == ""
    assert os.listdir(tmp_path) == []

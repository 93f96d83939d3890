"""Two gloo ranks with a wall-clock budget and every learning-rate schedule: the ranks read one clock (rank 0's,
agreed at log windows), so they set the same rates, stop at the same step and keep identical weights (issue 31).

Rank 1's clock is made to run 3x fast: real ranks' clocks drift apart by milliseconds, which made the failure
depend on timing ("the weights of G, D differ between ranks after step 280"); the skew makes it certain."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from genlab.training.schedule import SCHEDULES

WORKER = r'''
import json, sys, time, types, warnings
from genlab.recipe import load_config
from genlab.training import ddp, distributed, loop

out, root = sys.argv[1], sys.argv[2]
ctx = distributed.setup("cpu")
if ctx.rank == 1:  # a clock that runs 3x fast on this rank only
    t0 = time.perf_counter()
    loop.time = types.SimpleNamespace(perf_counter=lambda: t0 + 3 * (time.perf_counter() - t0))
result = {}
for kind in sys.argv[3:]:
    cfg = load_config(None, [f"data.root={root}", "data.verify=false", "data.name=fashion-mnist",
                             "data.resolution=28", "data.limit=64", "model.name=dcgan", "model.hidden_dim=4",
                             "model.latent_dim=4", "train.batch_size=16", "train.epochs=1000", "train.device=cpu",
                             "train.channels_last=false", "train.minutes=0.01", f"train.lr_schedule={kind}",
                             "log.every_steps=2", "log.progress=false", "log.tensorboard=false",
                             "log.sample_every=0", "eval.every=0"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny IDX files are not Fashion-MNIST's published ones
        t = loop.train(cfg, f"{out}/{kind}", log=lambda *_: None)
    result[kind] = {"step": t.state.step, "lrs": t.lrs(), "out_of_time": t.out_of_time,
                    "digests": ddp.weight_digest(t.state.nets), "base": cfg.train.g_opt.lr}
json.dump(result, open(f"{out}/rank{ctx.rank}.json", "w"))
ctx.close()
'''


def test_two_ranks_share_one_clock_for_the_budget_and_every_schedule(tiny_fmnist, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(tmp_path), str(tiny_fmnist), *SCHEDULES]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{k}.json").read_text()) for k in (0, 1))
    assert set(r0) == set(SCHEDULES)
    for kind in SCHEDULES:
        a, b = r0[kind], r1[kind]
        assert a["out_of_time"] and b["out_of_time"], kind  # the budget, not the epochs, ended the run
        assert a["step"] == b["step"] and a["step"] > 0, kind
        assert a["lrs"] == b["lrs"] and a["digests"] == b["digests"], kind
        if kind != "constant":  # the schedule followed the clock: the rate decayed
            assert a["lrs"]["G"] < a["base"], (kind, a["lrs"])

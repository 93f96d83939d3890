"""Several processes, one run: torchrun + DDP on gloo (CPU), sharding, single writer, exact resume, gathers."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from genlab.data.base import ImageData
from genlab.errors import ConfigError, RunError
from genlab.metrics import SINGLE_PROCESS
from genlab.recipe import load_config
from genlab.resume import resume_config
from genlab.rundir import RunDir
from genlab.training import ddp, distributed
from genlab.training.loop import Trainer, prepare_run, train

EPOCHS = 3


def overrides(root: Path, epochs: int = EPOCHS) -> list[str]:
    return [f"data.root={root}", "data.verify=false", "data.name=fashion-mnist", "data.resolution=28", "data.limit=128",
            "model.name=dcgan", "model.hidden_dim=8", "model.latent_dim=8", "model.dropout_d=0.2",
            "train.batch_size=32", f"train.epochs={epochs}", "log.every_steps=1", "log.progress=false",
            "log.keep_checkpoints=10", "train.device=cpu"]


def torchrun(args: list[str], env_extra: dict, script: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **env_extra}
    target = script or ["-m", "genlab", *args]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *target]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


#: `genlab ARGS...` on one rank, then the digests of the weights this rank ended training with (the trainer that
#: genlab.training.loop.train returns to the CLI)
TRAIN_AND_DIGEST = r'''
import json, sys
from pathlib import Path
from genlab.cli import main
from genlab.training import ddp, loop

out = Path(sys.argv[1])
finished = []
train = loop.train


def train_and_keep(*args, **kwargs):
    trainer = train(*args, **kwargs)
    finished.append(trainer)
    return trainer


loop.train = train_and_keep  # the CLI imports it from the module when the command runs
sys.argv = ["genlab", *sys.argv[2:]]
main()
(trainer,) = finished
out.mkdir(parents=True, exist_ok=True)
(out / f"rank{trainer.dist.rank}.json").write_text(json.dumps(
    {"rank": trainer.dist.rank, "step": trainer.state.step, "digests": ddp.weight_digest(trainer.state.nets)}))
'''


def digests(folder: Path) -> list[dict]:
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in (0, 1)]


def checkpoint_digest(run: Path) -> dict:
    from genlab.sampling import load_run

    return ddp.weight_digest(load_run(run).nets)


def records(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in RunDir.of(run).read_records()]


@pytest.fixture(scope="module")
def ddp_cache(classifier_cache_28, tmp_path_factory) -> dict:
    """GENLAB_CACHE_DIR for the ranks: a copy of the cache with the tiny dataset's classifier extractor."""
    dest = tmp_path_factory.mktemp("ddpcache")
    shutil.copytree(classifier_cache_28, dest, dirs_exist_ok=True)
    return {"GENLAB_CACHE_DIR": str(dest)}


#: the training eval hook under DDP: classifier FID + coverage at epoch 2 and at the end, sampled across ranks
EVAL = ["eval.every=2", "eval.metrics=[fid,coverage]", "eval.features=classifier", "eval.num_samples=64"]


@pytest.fixture(scope="module")
def ddp_run(tiny_fmnist, tmp_path_factory, ddp_cache):
    base = tmp_path_factory.mktemp("ddp")
    run, dbg = base / "run", base / "dbg"
    script = base / "train_and_digest.py"
    script.write_text(TRAIN_AND_DIGEST)
    r = torchrun([], ddp_cache, [str(script), str(dbg), "train", *overrides(tiny_fmnist), *EVAL, "--run-dir",
                                 str(run)])
    return run, dbg, r.stdout + r.stderr


def test_two_ranks_train_one_model(ddp_run):
    run, dbg, _ = ddp_run
    rank0, rank1 = digests(dbg)
    assert rank0["step"] == rank1["step"] == EPOCHS * 128 // 32  # global batch 32 = 2 ranks x 16
    assert rank0["digests"] == rank1["digests"]  # DDP kept both ranks' weights identical
    assert checkpoint_digest(run) == rank0["digests"]  # and rank 0 saved them


def test_run_folder_is_written_once(ddp_run):
    run, _, out = ddp_run
    metrics = list(RunDir.of(run).read_records())
    steps = [r["step"] for r in metrics if r.get("kind") != "eval"]
    assert steps == list(range(1, EPOCHS * 4 + 1))  # one writer: no duplicate records
    evals = [r for r in metrics if r.get("kind") == "eval"]
    assert [r["epoch"] for r in evals] == [2, 3] and all(r["fid"] > 0 for r in evals)
    protocol = json.loads((run / "eval.json").read_text())["protocol"]
    assert protocol["world_size"] == 2 and protocol["num_generated"] == 64  # 32 sampled on each rank
    assert (run / "checkpoints" / "best.pt").is_file()
    assert [p.name for p in RunDir.of(run).checkpoint_files()] == [f"step_{4 * e:09d}.pt" for e in (1, 2, 3)]
    assert sorted(p.name for p in (run / "samples").iterdir()) == [f"epoch_000{e}.png" for e in (1, 2, 3)]
    assert len(list((run / "tb").iterdir())) == 1
    runtime = json.loads((run / "runtime.json").read_text())
    assert runtime["world_size"] == 2 and runtime["threads"] == 1
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert out.count("genlab train") == 1 and out.count("runtime: ") == 1  # only rank 0 talks
    assert out.count("eval at epoch 2") == 1
    ckpt = torch.load(RunDir.of(run).checkpoint_path("last"), weights_only=True)
    assert ckpt["extra"]["world_size"] == 2 and len(ckpt["extra"]["rank_rng"]) == 2
    assert not torch.equal(ckpt["extra"]["rank_rng"][0]["torch"], ckpt["extra"]["rank_rng"][1]["torch"])


def test_resume_on_two_ranks_is_exact(ddp_run, ddp_cache, tmp_path):
    run, _, _ = ddp_run
    copy = tmp_path / "resumed"
    shutil.copytree(run, copy)
    RunDir.of(copy).checkpoint_files()[-1].unlink()  # back to the end of epoch 2
    torchrun(["train", "--resume", str(copy)], ddp_cache)
    assert checkpoint_digest(copy) == checkpoint_digest(run)
    assert records(copy) == records(run)  # training and eval records alike


def test_eval_under_torchrun_shards_sampling_and_writes_once(ddp_run, ddp_cache, tiny_fmnist, tmp_path):
    """`torchrun ... genlab eval`: each rank samples its shard with its own latents, features are gathered, the
    FID equals the one of the same two shards evaluated in one process, and one eval.json is written."""
    run, _, _ = ddp_run
    out = tmp_path / "eval.json"
    r = torchrun(["eval", str(run), "--features", "classifier", "--metrics", "fid", "--num-samples", "101",
                  "--out", str(out)], ddp_cache)
    result = json.loads(out.read_text())
    assert result["protocol"]["world_size"] == 2 and result["protocol"]["num_generated"] == 101
    assert (r.stdout + r.stderr).count("wrote ") == 1  # only rank 0 prints

    from genlab.evaluation import RANK_SEED_STRIDE, reference_of
    from genlab.metrics import Features, evaluate_features, reference_stats
    from genlab.metrics.evaluate import resolve_extractor, sample_features
    from genlab.sampling import load_run

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE_DIR", ddp_cache["GENLAB_CACHE_DIR"])
        loaded = load_run(run)
        ref = reference_of(loaded.cfg, "test")
        ext = resolve_extractor("classifier", ref, None, "cpu")
        parts = [sample_features(loaded.sampler(seed=RANK_SEED_STRIDE * r, batch_size=250),
                                 distributed.shard(101, r, 2)[1], ext, 250, r)[0] for r in (0, 1)]
        stats, _ = reference_stats(ref, ext, resolution=28, channels=1)
    feats = Features(np.concatenate([p.features for p in parts]), None)
    assert result["fid"] == pytest.approx(evaluate_features(feats, stats, ("fid",))[0]["fid"], rel=1e-9)


def test_resume_with_another_world_size_is_refused(ddp_run, tmp_path):
    run, _, _ = ddp_run
    copy = tmp_path / "single"
    shutil.copytree(run, copy)
    cfg = resume_config(RunDir.of(copy), ["train.epochs=4"])
    with pytest.raises(RunError, match=r"2 process\(es\).*this one has 1.*same number of processes"):
        train(cfg, copy, resume=True, log=lambda *_: None)


EXTRACTOR = r'''
import torch
from torch import nn
from genlab.metrics import FeatureExtractor


class TinyFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, 2)
        self.head = nn.Linear(4, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, x):
        f = self.conv(x).relu().mean((2, 3))
        return f, self.head(f)


def tiny_extractor():
    return FeatureExtractor(TinyFeatures(), name="tiny", hash="tiny", feature_dim=4, num_classes=3, resolution=28,
                            channels=1)


def noise_images(n):
    return torch.rand(n, 1, 28, 28) * 2 - 1
'''

WORKER = EXTRACTOR + r'''
import json, sys, tempfile
import torch
from genlab.recipe import load_config
from genlab.data.base import ImageData
from genlab.errors import RunError
from genlab.metrics import evaluate
from genlab.models import MODELS
from genlab.rundir import RunDir
from genlab.training import ddp, distributed
from genlab.training.loop import Trainer, epoch_permutation, prepare_run

out = sys.argv[1]
ctx = distributed.setup("cpu")
g = torch.Generator().manual_seed(0)
data = ImageData(images=torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=g),
                 labels=torch.arange(64) % 10, class_names=[f"c{i}" for i in range(10)], name="synthetic")
critic = ["train.loss=wasserstein", "train.n_critic=2"]
extra = {"wgan": critic, "wgan-gp": critic, "text-wgan-gp": critic, "vae": ["model.depth=1"],
         "r3gan": ["train.loss=relativistic"]}
root = distributed.all_gather_objects(tempfile.mkdtemp())[0]
result = {"families": {}}
for name in MODELS.names():
    cfg = load_config(None, [f"model.name={name}", "data.resolution=28", "data.channels=1", "model.hidden_dim=8",
                             "model.latent_dim=8", "train.batch_size=16", "log.progress=false",
                             "log.tensorboard=false", "train.device=cpu", *extra.get(name, [])])
    distributed.run_on_main(lambda: prepare_run(cfg, f"{root}/{name}"))
    t = Trainer(cfg, RunDir.of(f"{root}/{name}"), data, log=lambda *_: None, rank=ctx.rank,
                world_size=ctx.world_size, dist_ctx=ctx)
    before = ddp.weight_digest(t.state.nets)
    perm = epoch_permutation(0, 0, 64)
    for s in range(2):
        t.step_fn(t.batches.at(perm, s))
    after = ddp.weight_digest(t.state.nets)
    result["families"][name] = {"out_of_sync": ddp.out_of_sync(t.state.nets), "digests": after,
                                "trained": sorted(k for k in after if after[k] != before[k]),
                                "nets": sorted(t.state.nets.keys())}
local = torch.arange(3 + ctx.rank, dtype=torch.float32).unsqueeze(1) + 100 * ctx.rank
result["gathered"] = distributed.gather_features(local).squeeze(1).tolist()
def sharded_samples(generate, n, batch_size):  # what an evaluation does with shard() and gather_features()
    start, count = distributed.shard(n)
    parts = [generate(start + i, min(batch_size, count - i)) for i in range(0, count, batch_size)]
    return distributed.gather_features(torch.cat(parts) if parts else torch.empty(0))


gen = lambda start, n: torch.arange(start, start + n, dtype=torch.float32)
result["samples"] = sharded_samples(gen, 7, batch_size=2).tolist()
result["any"] = [distributed.any_rank(ctx.rank == 1), distributed.any_rank(False)]
def fail():
    raise RunError("boom")  # raised on rank 0 only; rank 1 must get the same error instead of waiting


try:
    distributed.run_on_main(fail)
except Exception as e:
    result["error"] = [type(e).__name__, str(e)]
ev = evaluate(noise_images, 50, data, tiny_extractor(), metrics=("fid",), seed=3, collective=distributed.collective())
result["eval"] = [ev["fid"], ev["protocol"]["num_generated"], ev["protocol"]["world_size"]]
json.dump(result, open(f"{out}/rank{ctx.rank}.json", "w"))
ctx.close()
'''


def test_every_family_stays_in_sync_under_ddp(tmp_path):
    """All registered models (phases that freeze a network, call D.heads / D.features / G.pre_tanh, take a
    gradient penalty or clip weights) train with identical weights on both ranks; gathers work."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    torchrun([], {}, [str(script), str(tmp_path)])
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    from genlab.models import MODELS

    assert set(r0["families"]) == set(MODELS.names())
    for name, res in r0["families"].items():
        assert res["out_of_sync"] == [], name
        assert res["digests"] == r1["families"][name]["digests"], name
        assert res["trained"] == res["nets"], name  # every network moved
    assert r0["gathered"] == r1["gathered"] == [0, 1, 2, 100, 101, 102, 103]
    assert r0["samples"] == r1["samples"] == list(range(7))  # same images as one process would draw
    assert r0["any"] == r1["any"] == [True, False]
    assert r0["error"] == r1["error"] == ["RunError", "boom"]
    # sharded evaluation == the same shards computed here in one process and evaluated together
    from genlab.metrics import Features, evaluate_features, reference_stats
    from genlab.metrics.evaluate import sample_features

    ns: dict = {}
    exec(EXTRACTOR, ns)
    ext = ns["tiny_extractor"]()
    parts = [sample_features(ns["noise_images"], distributed.shard(50, r, 2)[1], ext, 250, 3 + r)[0] for r in (0, 1)]
    feats = Features(np.concatenate([p.features for p in parts]), np.concatenate([p.logits for p in parts]))
    data = ImageData(images=torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8,
                                          generator=torch.Generator().manual_seed(0)),
                     labels=torch.arange(64) % 10, class_names=[f"c{i}" for i in range(10)], name="synthetic")
    ref, _ = reference_stats(data, ext, resolution=28, channels=1)
    fid = evaluate_features(feats, ref, ("fid",))[0]["fid"]
    assert r0["eval"] == r1["eval"] and r0["eval"][1:] == [50, 2]
    assert r0["eval"][0] == pytest.approx(fid, rel=1e-9)


# ------------------------------------------------------------------------------------------ one process
def test_shards_cover_everything_once():
    for n in (0, 1, 7, 10):
        for world in (1, 2, 3):
            parts = [distributed.shard(n, r, world) for r in range(world)]
            covered = [i for start, count in parts for i in range(start, start + count)]
            assert covered == list(range(n))
            assert max(c for _, c in parts) - min(c for _, c in parts) <= 1


def test_env_ranks_and_devices(monkeypatch):
    assert distributed.env_ranks({}) == (0, 1, 0, 1)
    env = {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"}
    assert distributed.env_ranks(env) == (5, 8, 1, 4)
    ctx = distributed.DistContext(rank=5, world_size=8, local_rank=1, local_world_size=4)
    assert not ctx.is_main and ctx.enabled and ctx.device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert ctx.device("cuda") == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match="cuda:LOCAL_RANK"):
        ctx.device("cuda:0")
    assert distributed.setup("cpu").world_size == 1  # no torchrun variables: a world of one, nothing joined


def test_world_of_one_helpers_are_identities():
    x = torch.randn(4, 3)
    assert distributed.gather_features(x) is x
    assert distributed.mean_over_ranks(x) is x
    assert distributed.run_on_main(lambda: 42) == 42
    assert distributed.all_gather_objects("a") == ["a"] and distributed.any_rank(True) is True
    assert distributed.collective() is SINGLE_PROCESS


def test_synced_routes_methods_through_ddp_and_the_rest_to_the_network():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(2, 2)
            self.width = 2

        def heads(self, x):
            return self.body(x), x

        def forward(self, x):
            return self.body(x)

    calls = []
    net = Net()
    synced = ddp.Synced(net, lambda method, *a, **k: calls.append(method) or ddp._Call(net)(
        method, *a, **k))
    x = torch.randn(1, 2)
    assert torch.equal(synced(x), net(x)) and torch.equal(synced.heads(x)[0], net.body(x))
    assert calls == ["forward", "heads"]
    assert synced.width == 2 and synced.body is net.body
    assert list(synced.parameters()) == list(net.parameters()) and calls == ["forward", "heads"]


def test_global_batch_must_split_over_ranks(tmp_path):
    cfg = load_config(None, ["model.name=dcgan", "data.resolution=28", "model.hidden_dim=8", "train.batch_size=16",
                             "train.device=cpu", "log.tensorboard=false"])
    data = ImageData(images=torch.zeros(32, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="global batch and must divide evenly over 3 ranks"):
        Trainer(cfg, prepare_run(cfg, tmp_path / "r"), data, rank=0, world_size=3, log=lambda *_: None)

"""Speed settings: validated, resolved (auto -> concrete) and recorded; they never change what is learned."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from genlab.data.base import ImageData
from genlab.errors import ConfigError
from genlab.models import MODELS
from genlab.recipe import build_networks, load_config
from genlab.resume import resume_config
from genlab.rundir import RunDir
from genlab.training import perf
from genlab.training.loop import Trainer, epoch_permutation, prepare_run, train


def tiny(extra=()) -> list[str]:
    return ["model.name=dcgan", "data.resolution=28", "data.channels=1", "model.hidden_dim=8", "model.latent_dim=8",
            "train.batch_size=16", "log.progress=false", "log.tensorboard=false", "train.device=cpu",
            "data.verify=false", *extra]  # the tiny IDX files are not Fashion-MNIST's published ones


def synthetic(n: int = 64, channels: int = 1) -> ImageData:
    g = torch.Generator().manual_seed(0)
    return ImageData(images=torch.randint(0, 256, (n, channels, 28, 28), dtype=torch.uint8, generator=g),
                     labels=torch.arange(n) % 10, class_names=[str(i) for i in range(10)], name="synthetic")


def trainer(tmp_path, extra=(), data=None) -> Trainer:
    cfg = load_config(None, tiny(extra))
    return Trainer(cfg, prepare_run(cfg, tmp_path / "run"), data or synthetic(), log=lambda *_: None)


def steps(t: Trainer, n: int) -> list[dict]:
    perm = epoch_permutation(0, 0, len(t.batches.images))
    return [t.step_fn(t.batches.at(perm, i)) for i in range(n)]


@pytest.mark.parametrize("key, value, words", [
    ("train.precision", "fp8", "auto, fp32, bf16 or fp16"),
    ("train.compile", "maybe", "auto, true or false"),
    ("train.channels_last", "nhwc", "auto, true or false"),
    ("train.threads", "-1", "0 for auto"),
])
def test_bad_speed_settings_are_refused_by_name(key, value, words):
    with pytest.raises(ConfigError) as e:
        load_config(None, [f"{key}={value}"])
    assert key in str(e.value) and words in str(e.value)


def test_booleans_from_yaml_or_cli_are_normalised():
    cfg = load_config(None, ["train.compile=true", "train.channels_last=False", "train.precision=BF16"])
    assert (cfg.train.compile, cfg.train.channels_last, cfg.train.precision) == ("true", "false", "bf16")


def test_auto_on_cpu_resolves_to_measured_defaults(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # tests pin one thread (conftest); auto counts cores
    cfg = load_config(None, tiny())
    conv = build_networks(cfg, 0)
    rt = perf.resolve_runtime(cfg.train, torch.device("cpu"), conv)
    assert (rt.precision, rt.compile, rt.channels_last, rt.optimizer) == ("fp32", False, True, "fused")
    assert rt.threads == perf.cpu_cores() and rt.amp_dtype is None and not rt.tf32
    mlp_cfg = load_config(None, tiny(["model.name=mlp-gan"]))
    mlp = build_networks(mlp_cfg, 0)
    assert not perf.resolve_runtime(mlp_cfg.train, torch.device("cpu"), mlp).channels_last  # nothing to gain
    assert perf.resolve_runtime(cfg.train, torch.device("cpu"), conv, local_world_size=2).threads == \
        max(1, perf.cpu_cores() // 2)
    assert any("channels_last" in n for n in rt.notes)


@pytest.mark.parametrize("flags, units", [
    ("fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile", "AMX"),  # Sapphire Rapids
    ("fpu avx2 avx512f avx512_bf16", "AVX-512 BF16"),  # Zen 4/5
    ("fpu avx avx2 fma", None),  # an AVX2-only CPU: bf16 is emulated
])
@pytest.mark.parametrize("model", ["dcgan", "mlp-gan"])
def test_auto_precision_takes_bf16_only_with_units_and_a_measured_model(flags, units, model, monkeypatch):
    info = f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n"
    assert perf.cpu_bf16_units(info) == units
    monkeypatch.setattr(perf, "cpu_bf16_units", lambda: units)
    monkeypatch.setattr(perf, "CPU_BF16_KEEPS", {"dcgan": "measured"})
    cfg = load_config(None, tiny([f"model.name={model}"]))
    rt = perf.resolve_runtime(cfg.train, torch.device("cpu"), build_networks(cfg, 0), model=model)
    note = next(n for n in rt.notes if n.startswith("precision auto -> "))
    expected = "bf16" if units and model == "dcgan" else "fp32"
    assert rt.precision == expected and note.startswith(f"precision auto -> {expected}"), note
    assert rt.amp_dtype == (torch.bfloat16 if expected == "bf16" else None)
    if units:
        assert f"has bfloat16 units ({units})" in note, note
        assert ("keeps its FID" in note) if model == "dcgan" else ("was not measured" in note), note
    else:
        assert "no bfloat16 units" in note, note
    explicit = load_config(None, tiny([f"model.name={model}", "train.precision=fp32"]))
    assert perf.resolve_runtime(explicit.train, torch.device("cpu"), build_networks(explicit, 0),
                                model=model).precision == "fp32"  # an explicit choice always wins


def test_explicit_compile_without_a_compiler_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(perf.shutil, "which", lambda name: None)
    cfg = load_config(None, tiny(["train.compile=true"]))
    with pytest.raises(ConfigError, match="C\\+\\+ compiler"):
        perf.resolve_runtime(cfg.train, torch.device("cpu"), build_networks(cfg, 0))


def test_resolved_settings_are_recorded_in_run_and_checkpoint(tiny_fmnist, tmp_path):
    run = tmp_path / "run"
    cfg = load_config(None, tiny([f"data.root={tiny_fmnist}", "data.name=fashion-mnist", "data.limit=32",
                                  "train.epochs=1"]))
    t = train(cfg, run, log=lambda *_: None)
    recorded = json.loads((run / "runtime.json").read_text())
    assert recorded == t.runtime.as_dict() and recorded["channels_last"] is True
    assert recorded["precision"] == perf.cpu_precision("dcgan")[0]  # bf16 on a CPU with bfloat16 units
    assert recorded["compile"] is False and recorded["world_size"] == 1
    assert any(n.startswith(f"precision auto -> {recorded['precision']}: ") for n in recorded["notes"])  # and why
    assert json.loads((run / "status.json").read_text())["runtime"] == recorded
    ckpt = torch.load(RunDir.of(run).checkpoint_path("last"), weights_only=True)
    assert ckpt["extra"]["runtime"] == recorded and ckpt["extra"]["world_size"] == 1
    assert all(g["fused"] for o in t.state.optimizers.values() for g in o.param_groups)


def test_channels_last_and_fused_adam_learn_the_same_as_the_plain_path(tmp_path):
    fast = trainer(tmp_path / "a", ["train.precision=fp32"])  # auto: channels_last + fused Adam
    slow = trainer(tmp_path / "b", ["train.channels_last=false", "train.precision=fp32"])
    for opt in slow.state.optimizers.values():  # the textbook for-loop Adam
        for g in opt.param_groups:
            g["fused"] = False
    assert fast.runtime.channels_last and not slow.runtime.channels_last
    assert next(fast.state.nets["D"].parameters()).is_contiguous(memory_format=torch.channels_last)
    torch.manual_seed(1)
    a = steps(fast, 3)
    torch.manual_seed(1)
    b = steps(slow, 3)
    for sa, sb in zip(a, b):
        for k in sa:
            assert torch.allclose(sa[k], sb[k], atol=1e-4), k
    for (name, p), q in zip(fast.state.nets.named_parameters(), slow.state.nets.parameters()):
        assert torch.allclose(p, q, atol=1e-4), name
    assert not torch.equal(next(fast.state.nets["G"].parameters()), next(build_networks(fast.cfg, 0)
                                                                   .parameters()))  # it did train


def bf16_and_fp32(tmp_path, extra=(), n: int = 2) -> tuple[Trainer, list[dict], list[dict]]:
    """The same steps (same weights, same batches, same noise) under bf16 autocast and in float32."""
    t = trainer(tmp_path / "bf16", [*extra, "train.precision=bf16"])
    ref = trainer(tmp_path / "fp32", [*extra, "train.precision=fp32"])
    assert ref.runtime.precision == "fp32" and t.runtime.precision == "bf16"
    torch.manual_seed(1)
    a = steps(t, n)
    torch.manual_seed(1)
    return t, a, steps(ref, n)


def test_bf16_autocast_trains_with_float32_weights(tmp_path):
    t, a, b = bf16_and_fp32(tmp_path)
    for sa, sb in zip(a, b, strict=True):  # bf16 keeps ~3 significant digits: the same numbers, within that
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.isfinite(sa[k]) and abs(float(sa[k]) - float(sb[k])) <= 0.01 * abs(float(sb[k])) + 0.005, k
    assert all(p.dtype == torch.float32 for p in t.state.nets.parameters())
    with t.runtime.autocast():
        assert t.state.nets["G"](torch.randn(2, 8)).dtype == torch.bfloat16


# resnet-gan: the gan objective (dcgan's) on r3gan's networks, both tested here; its bf16 convolutions cost ~6 s
@pytest.mark.parametrize("model", [m for m in MODELS.names() if m != "resnet-gan"])
def test_every_family_trains_under_bf16_autocast(model, tmp_path):
    """Mixed dtypes meet in every objective (bf16 fakes vs float32 reals: gradient penalty, VAE losses, ...)."""
    critic = ["train.loss=wasserstein", "train.n_critic=2"]
    extra = {"wgan": critic, "wgan-gp": critic, "text-wgan-gp": critic, "vae": ["model.depth=1"],
         "r3gan": ["train.loss=relativistic", "model.hidden_dim=4"]}
    t, a, b = bf16_and_fp32(tmp_path, [f"model.name={model}", *extra.get(model, [])])
    assert a[-1] and all(torch.isfinite(v) for v in a[-1].values()), a[-1]
    # the first step is the float32 step within bf16 rounding. Loose: a critic that starts almost flat (gp ~ 10
    # for text-wgan-gp) takes a sign-like first Adam step that bf16 noise can flip (measured: 0.054 off in D(x))
    assert a[0].keys() == b[0].keys()
    for k in a[0]:
        assert abs(float(a[0][k]) - float(b[0][k])) <= 0.05 * abs(float(b[0][k])) + 0.06, (k, a[0][k], b[0][k])
    assert all(p.dtype == torch.float32 for p in t.state.nets.parameters())


def test_fp16_scalers_are_saved_and_restored(tmp_path):
    """Each optimizer's loss scaler comes back as it was saved. Both are first moved away from a fresh scaler's
    state, each to its own scale, so a resume that skipped or swapped them cannot pass."""
    t = trainer(tmp_path, ["train.precision=fp16"])
    steps(t, 2)
    t.state.scalers["G"].update(new_scale=2.0 ** 10)
    t.state.scalers["D"].update(new_scale=2.0 ** 7)
    saved = {k: s.state_dict() for k, s in t.state.scalers.items()}
    fresh = torch.amp.GradScaler("cpu").state_dict()
    assert set(saved) == {"D", "G"} and saved["G"] != fresh and saved["D"] != fresh and saved["G"] != saved["D"]
    path = t.save()
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["extra"]["scalers"] == saved
    resumed = Trainer(t.cfg, t.run, synthetic(), resume_from=path, log=lambda *_: None)
    assert {k: s.state_dict() for k, s in resumed.state.scalers.items()} == saved
    assert "scalers" not in resumed.state.extra and "runtime" not in resumed.state.extra


def test_resume_may_change_layout_and_still_steps(tiny_fmnist, tmp_path):
    """A checkpoint written with channels_last weights and optimizer state resumes in the default layout."""
    run = tmp_path / "run"
    base = tiny([f"data.root={tiny_fmnist}", "data.name=fashion-mnist", "data.limit=32"])
    train(load_config(None, base + ["train.epochs=1", "train.channels_last=true"]), run, log=lambda *_: None)
    cfg = resume_config(RunDir.of(run), ["train.epochs=2", "train.channels_last=false"])
    t = train(cfg, run, resume=True, log=lambda *_: None)
    assert t.state.epoch == 2 and not t.runtime.channels_last
    for opt in t.state.optimizers.values():
        for p in (p for g in opt.param_groups for p in g["params"]):
            assert opt.state[p]["exp_avg"].stride() == p.stride()


def test_frozen_networks_get_no_gradients(tmp_path):
    """The G phase backpropagates through D without computing D's weight gradients (and vice versa)."""
    t = trainer(tmp_path)
    seen = {}
    for name, opt in t.state.optimizers.items():
        original = opt.step

        def spy(*a, _name=name, _orig=original, **k):
            seen[_name] = {n: [None if p.grad is None else p.grad.clone() for p in net.parameters()]
                           for n, net in t.state.nets.items()}
            return _orig(*a, **k)
        opt.step = spy
    steps(t, 1)
    assert all(g is not None for g in seen["D"]["D"]) and all(g is None for g in seen["D"]["G"])
    assert all(g is not None for g in seen["G"]["G"])
    # D's gradients at G's step are still the ones of D's own step: the G phase added nothing to them
    assert all(torch.equal(a, b) for a, b in zip(seen["D"]["D"], seen["G"]["D"]))


def test_batch_in_run_layout_is_normalised():
    rt = perf.Runtime(channels_last=True)
    x = perf.input_batch(torch.full((2, 3, 4, 4), 255, dtype=torch.uint8), rt)
    assert x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.all(x == 1.0)
    y = perf.input_batch(torch.zeros((2, 3, 4, 4), dtype=torch.uint8), perf.Runtime())
    assert y.is_contiguous() and torch.all(y == -1.0)


def test_retarget_optimizer_matches_state_to_parameters():
    p = torch.nn.Parameter(torch.randn(4, 3, 2, 2).contiguous(memory_format=torch.channels_last))
    opt = torch.optim.Adam([p], fused=True)
    p.grad = torch.ones_like(p)
    opt.step()
    sd = copy.deepcopy(opt.state_dict())
    sd["state"][0]["exp_avg"] = sd["state"][0]["exp_avg"].contiguous()
    sd["param_groups"][0]["fused"] = False
    opt.load_state_dict(sd)
    perf.retarget_optimizer(opt, {"fused": True})
    assert opt.param_groups[0]["fused"] is True
    assert opt.state[p]["exp_avg"].stride() == p.stride()
    opt.step()

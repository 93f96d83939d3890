"""Training throughput: genlab's training step (default settings) vs a plain fp32 eager PyTorch loop.

For every model family (the explicit CASES below, plus one recipe from configs/ for each registered model not
covered by them) both loops get the same networks (same init), batch size, loss, optimizer settings and
in-memory uint8 data. The plain loop is the textbook one: float32, contiguous tensors, PyTorch's own layers
(``nn.Dropout`` where genlab has its faster CPU dropout), default optimizer implementation, no network frozen
during the other's step, ``.item()`` of the losses every step.
Recipe extras that the plain loop does not have (EMA, DiffAugment) are off on both sides.

Both loops run interleaved in the same process (these machines are noisy), so read the ratio, not the figure.
``--variants`` adds genlab with one setting changed (the ablation in docs/benchmarks.md).

Usage: python benchmarks/train_throughput.py [--steps 3] [--block-seconds 2] [--repeats 3] [--models dcgan-32,...]
       [--max-resolution 32] [--variants no-channels-last,no-fused,bf16,threads-1,compile]
"""
from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from genlab.data.base import ImageData, to_float
from genlab.models import MODELS
from genlab.models.layers import Dropout
from genlab.recipe import build_networks, load_config, objective_options
from genlab.training import perf
from genlab.training.loop import Trainer, prepare_run
from genlab.training.phases import Batch

# family -> (overrides, plain step builder name); families without an entry are taken from configs/
CASES = {
    "dcgan-32": (["model.name=dcgan", "data.resolution=32", "data.channels=3", "model.hidden_dim=64",
                  "model.latent_dim=100", "train.batch_size=64"], "gan"),
    "mlp-gan-28": (["model.name=mlp-gan", "data.resolution=28", "data.channels=1", "model.hidden_dim=256",
                    "model.latent_dim=100", "train.batch_size=64"], "gan"),
    # EDM on the U-Net of configs/fashion_mnist_flow_10min.yaml (flow-unet's case is that recipe; the CIFAR-10
    # recipes of both are GPU-sized: batch 512 of a 128 x [2, 2, 2] x 4-block U-Net)
    "edm-unet-28": (["model.name=edm-unet", "data.resolution=28", "data.channels=1", "model.hidden_dim=16",
                     "model.channel_mult=[1,2,2]", "model.depth=1", "model.attention=[7]", "train.batch_size=64",
                     "train.g_opt.lr=2e-3"], "edm"),
}

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
#: genlab with one setting changed: name -> (config overrides, optimizer implementation override or None)
VARIANTS = {
    "no-channels-last": (["train.channels_last=false"], None),
    "no-fused": ([], "for-loop"),
    "bf16": (["train.precision=bf16"], None),
    "threads-1": (["train.threads=1"], None),
    "compile": (["train.compile=true"], None),
}
NEUTRAL = ["train.ema=0", "train.ema_halflife_kimg=0", "train.diffaugment=''", "log.progress=false",
           "log.tensorboard=false"]


# ------------------------------------------------------------------------------------------- cases
def recipe_cases(covered: set[str]) -> dict[str, tuple[list[str], str]]:
    """One case per registered model without a CASES entry: its recipe of lowest resolution (then by name)."""
    found: dict[str, tuple[int, str, list[str]]] = {}
    for path in sorted(CONFIGS.glob("*.yaml")):
        d = yaml.safe_load(path.read_text()) or {}
        model = (d.get("model") or {}).get("name")
        if not model or model in covered or "sweep" in path.stem:
            continue
        res = int((d.get("data") or {}).get("resolution", 32))
        if model not in found or res < found[model][0]:
            found[model] = (res, path.stem, [str(path)])
    return {f"{m}-{res} ({stem})": (args, "recipe") for m, (res, stem, args) in sorted(found.items())}


def case_config(ovr: list[str], max_res: int | None, extra: list[str] = ()):
    recipe = ovr[0] if ovr and ovr[0].endswith(".yaml") else None
    rest = ovr[1:] if recipe else ovr
    cfg = load_config(recipe, [*rest, *NEUTRAL, "train.device=cpu", *extra])
    if max_res and cfg.data.resolution > max_res:
        cfg = load_config(recipe, [*rest, *NEUTRAL, "train.device=cpu", *extra, f"data.resolution={max_res}"])
    return cfg


def synthetic_data(cfg, n: int = 1024) -> ImageData:
    res, ch = cfg.data.resolution, cfg.data.channels
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, ch, res, res), dtype=torch.uint8, generator=g)
    k = 102 if cfg.data.name == "flowers102" else 10
    return ImageData(images=images, labels=torch.arange(n) % k, class_names=[f"class {i}" for i in range(k)],
                     name=cfg.data.name)


# -------------------------------------------------------------------------------------- plain loops
def plain_losses(kind: str):
    if kind == "bce":
        def d_loss(r, f, real_label=1.0):
            return (F.binary_cross_entropy_with_logits(r, torch.full_like(r, real_label))
                    + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)))
        return d_loss, lambda f: F.binary_cross_entropy_with_logits(f, torch.ones_like(f))
    if kind == "hinge":
        return lambda r, f, real_label=1.0: F.relu(1 - r).mean() + F.relu(1 + f).mean(), lambda f: -f.mean()
    return lambda r, f, real_label=1.0: f.mean() - r.mean(), lambda f: -f.mean()


def plain_optimizer(params, o):
    if o.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=o.lr, eps=o.eps, weight_decay=o.weight_decay)
    return torch.optim.Adam(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay)


def plain_adversarial(nets, cfg, objective: str, cond: Callable):
    """GAN, WGAN (clipping), WGAN-GP, cGAN, text GANs and ACGAN as one textbook loop with switches."""
    G, D, t, o = nets["G"], nets["D"], cfg.train, objective_options(cfg)
    opt_g, opt_d = plain_optimizer(G.parameters(), t.g_opt), plain_optimizer(D.parameters(), t.d_opt)
    d_loss_fn, g_loss_fn = plain_losses(t.loss)
    gp = objective in ("wgan-gp", "text-wgan-gp")
    clip = objective == "wgan"
    acgan = objective == "acgan"
    latent = cfg.model.latent_dim

    def gen(z, c):
        return G(z, c)

    def disc(x, c):
        if acgan:
            return D.heads(x, c)
        return D(x, c)

    def step(x, y):
        n = x.shape[0]
        c = cond(y)
        for _ in range(o.n_critic):
            with torch.no_grad():
                fake = gen(torch.randn(n, latent), c)
            opt_d.zero_grad()
            r, f = disc(x, c), disc(fake, c)
            if acgan:
                d_loss = d_loss_fn(r[0], f[0], o.real_label) + F.cross_entropy(r[1], y) + F.cross_entropy(f[1], y)
            else:
                d_loss = d_loss_fn(r, f, o.real_label)
            if gp:
                alpha = torch.rand(n, 1, 1, 1)
                x_hat = (alpha * x + (1 - alpha) * fake).requires_grad_(True)
                (grad,) = torch.autograd.grad(disc(x_hat, c).sum(), x_hat, create_graph=True)
                d_loss = d_loss + o.grad_penalty * (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()
            d_loss.backward()
            opt_d.step()
            if clip:
                for p in D.parameters():
                    p.data.clamp_(-o.clip_value, o.clip_value)
        opt_g.zero_grad()
        out = disc(gen(torch.randn(n, latent), c), c)
        g_loss = g_loss_fn(out[0]) + F.cross_entropy(out[1], y) if acgan else g_loss_fn(out)
        g_loss.backward()
        opt_g.step()
        return d_loss.item(), g_loss.item()

    return step


def plain_vae(nets, cfg, objective: str, cond: Callable):
    """The PyTorch VAE example: encode, reparameterise, decode, BCE (or MSE) summed over pixels + KL."""
    E, G, t, o = nets["E"], nets["G"], cfg.train, objective_options(cfg)
    opt = plain_optimizer(list(E.parameters()) + list(G.parameters()), t.g_opt)

    def step(x, y):
        opt.zero_grad()
        mu, logvar = E(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        a = G.pre_tanh(z)
        target = (x + 1) / 2
        if o.recon_loss == "bce":
            recon = F.binary_cross_entropy_with_logits(2 * a, target, reduction="sum") / x.shape[0]
        else:
            recon = (torch.tanh(a) * 0.5 + 0.5 - target).pow(2).sum() / x.shape[0]
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / x.shape[0]
        loss = recon + o.beta * kl
        loss.backward()
        opt.step()
        return loss.item()

    return step


def plain_vae_gan(nets, cfg, objective: str, cond: Callable):
    """Larsen et al.'s three updates (D, then E, then G), each a plain forward/backward of its own losses."""
    E, G, D, t, o = nets["E"], nets["G"], nets["D"], cfg.train, objective_options(cfg)
    opt_d, opt_e, opt_g = (plain_optimizer(D.parameters(), t.d_opt), plain_optimizer(E.parameters(), t.g_opt),
                           plain_optimizer(G.parameters(), t.g_opt))
    d_loss_fn, g_loss_fn = plain_losses(t.loss)

    def call(net, x, c):
        return net(x, c)

    def step(x, y):
        c = cond(y)
        c2 = None if c is None else torch.cat([c, c])  # the textbook loop spells out what genlab's doubled does
        n = x.shape[0]
        with torch.no_grad():
            mu, logvar = call(E, x, c)
            fakes = torch.cat([call(G, mu + torch.exp(0.5 * logvar) * torch.randn_like(mu), c),
                               call(G, torch.randn(n, cfg.model.latent_dim), c)])
        opt_d.zero_grad()
        d_loss = d_loss_fn(call(D, x, c), call(D, fakes, c2), o.real_label)
        d_loss.backward()
        opt_d.step()
        opt_e.zero_grad()
        mu, logvar = call(E, x, c)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        target = D.features(x).detach()
        feat = (D.features(call(G, z, c)) - target).pow(2).mean()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean() / mu.shape[1]
        (feat + o.beta * kl).backward()
        opt_e.step()
        opt_g.zero_grad()
        rec = call(G, z.detach(), c)
        prior = call(G, torch.randn(n, cfg.model.latent_dim), c)
        g_loss = o.recon_weight * (D.features(rec) - target).pow(2).mean() + g_loss_fn(
            call(D, torch.cat([rec, prior]), c2))
        g_loss.backward()
        opt_g.step()
        return d_loss.item(), g_loss.item()

    return step


def plain_denoising(nets, cfg, objective: str, cond: Callable):
    """The textbook flow-matching loop (flow_matching's image example: x_t = (1 - t) x_0 + t x_1, MSE on x_1 - x_0;
    with the recipe's OT pairing, scipy's linear_sum_assignment, and logit-normal times) or EDM's (training/loss.py
    of NVlabs/edm: log-normal sigma, preconditioned denoiser, weighted MSE), written out with plain tensors."""
    from scipy.optimize import linear_sum_assignment

    G, o = nets["G"], objective_options(cfg)
    opt = plain_optimizer(G.parameters(), cfg.train.g_opt)

    def flow_loss(x1, c):
        n = x1.shape[0]
        x0 = torch.randn_like(x1)
        if o.ot_pairing:
            cost = torch.cdist(x1.flatten(1), x0.flatten(1)).pow(2)
            x0 = x0[torch.as_tensor(linear_sum_assignment(cost.numpy())[1])]
        uniform = o.time_sampling == "uniform"
        t = torch.rand(n) if uniform else torch.sigmoid(o.logit_mean + o.logit_std * torch.randn(n))
        tt = t.view(-1, 1, 1, 1)
        return (G((1 - tt) * x0 + tt * x1, t, c) - (x1 - x0)).pow(2).mean()

    def edm_loss(y, c):
        sigma = (o.p_mean + o.p_std * torch.randn(y.shape[0], 1, 1, 1)).exp()
        sd = o.sigma_data
        weight = (sigma ** 2 + sd ** 2) / (sigma * sd) ** 2
        x = y + torch.randn_like(y) * sigma
        c_skip, c_out = sd ** 2 / (sigma ** 2 + sd ** 2), sigma * sd / (sigma ** 2 + sd ** 2).sqrt()
        c_in = 1 / (sd ** 2 + sigma ** 2).sqrt()
        denoised = c_skip * x + c_out * G(c_in * x, (sigma.log() / 4).flatten(), c)
        return (weight * (denoised - y).pow(2)).mean()

    loss_fn = flow_loss if objective == "flow" else edm_loss

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(x, cond(y))
        loss.backward()
        opt.step()
        return loss.item()

    return step


PLAIN = {"gan": plain_adversarial, "wgan": plain_adversarial, "wgan-gp": plain_adversarial,
         "cgan": plain_adversarial, "acgan": plain_adversarial, "text-gan": plain_adversarial,
         "text-wgan-gp": plain_adversarial, "vae": plain_vae, "vae-gan": plain_vae_gan, "cvae-gan": plain_vae_gan,
         "flow": plain_denoising, "edm": plain_denoising}


def textbook_layers(nets: torch.nn.Module) -> None:
    """The plain loop's networks use PyTorch's own layers: genlab's Dropout (faster CPU mask) -> nn.Dropout."""
    for module in list(nets.modules()):
        for name, child in module.named_children():
            if isinstance(child, Dropout):
                setattr(module, name, torch.nn.Dropout(child.p))


def condition_fn(trainer: Trainer) -> Callable:
    """What the plain loop conditions on: what genlab's objective conditions a batch of labels on (labels for
    class models, their caption bags for text models, None for unconditional ones)."""
    cond, ctx = trainer.objective.conditioning, trainer.ctx

    def fn(y):
        ctx.cache.clear()  # the text conditioning caches a step's bags
        c = cond.from_batch(Batch(x=y, y=y), ctx)  # only the labels matter here: x is a placeholder
        return None if c is None else c.to(y.device)

    return fn


# ------------------------------------------------------------------------------------------ timing
def make_trainer(cfg, data, optimizer_impl: str | None = None) -> Trainer:
    """genlab's trainer for a case; ``optimizer_impl`` replaces the resolved optimizer implementation."""
    run = prepare_run(cfg, tempfile.mkdtemp() + "/run")
    adjust = None if optimizer_impl is None else (lambda rt: replace(rt, optimizer=optimizer_impl))
    return Trainer(cfg, run, data, log=lambda *_: None, adjust_runtime=adjust)


def genlab_runner(trainer: Trainer, steps: int):
    """``run(k)``: k calls of genlab's training step (Trainer.step_fn) on the trainer's batches."""
    batches = trainer.batches
    perm = torch.randperm(len(batches.images), generator=torch.Generator().manual_seed(1))
    per_epoch = batches.steps_per_epoch

    def run(k: int) -> None:
        for i in range(k):
            trainer.step_fn(batches.at(perm, i % per_epoch))
    return run


def plain_runner(step, images, labels, bs: int):
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(1))
    per_epoch = len(images) // bs

    def run(k: int) -> None:
        for i in range(k):
            idx = perm[(i % per_epoch) * bs:][:bs]
            step(to_float(images[idx]), labels[idx])
    return run


def timed(run, steps: int, bs: int) -> float:
    t0 = time.perf_counter()
    run(steps)
    return steps * bs / (time.perf_counter() - t0)


def bench(ovr: list[str], steps: int, repeats: int, max_res: int | None, variants: list[str],
          block_s: float = 2.0) -> dict:
    cfg = case_config(ovr, max_res)
    data = synthetic_data(cfg)
    torch.manual_seed(0)
    trainer = make_trainer(cfg, data)
    spec = MODELS.get(cfg.model.name)
    # the plain loop's networks: the same weights, in the default layout, never compiled
    nets = build_networks(cfg, trainer.num_classes, trainer.state.extra)
    nets.load_state_dict(trainer.state.nets.state_dict())
    textbook_layers(nets)
    nets.train()
    plain_step = PLAIN[spec.objective](nets, cfg, spec.objective, condition_fn(trainer))
    bs = cfg.train.batch_size
    runners = {"genlab": genlab_runner(trainer, steps),
               "plain": plain_runner(plain_step, data.images, data.labels, bs)}
    for v in variants:
        extra, impl = VARIANTS[v]
        torch.manual_seed(0)
        runners[v] = genlab_runner(make_trainer(case_config(ovr, max_res, extra), data, impl), steps)
    torch.set_num_threads(trainer.runtime.threads)
    for name, run in runners.items():  # warm-up (and torch.compile, when a variant asks for it)
        torch.set_num_threads(1 if name == "threads-1" else trainer.runtime.threads)
        run(2)
    torch.set_num_threads(trainer.runtime.threads)
    t0 = time.perf_counter()
    runners["plain"](2)
    per_step = (time.perf_counter() - t0) / 2
    steps = max(steps, math.ceil(block_s / max(per_step, 1e-6)))  # blocks of at least block_s seconds
    ips: dict[str, list[float]] = {k: [] for k in runners}
    order = list(runners)
    for r in range(repeats):  # interleaved, alternating order, so all see the same machine load
        for name in (order if r % 2 == 0 else order[::-1]):
            torch.set_num_threads(1 if name == "threads-1" else trainer.runtime.threads)
            ips[name].append(timed(runners[name], steps, bs))
    torch.set_num_threads(trainer.runtime.threads)
    return {"cfg": cfg, "runtime": trainer.runtime, "steps": steps, "ips": {k: max(v) for k, v in ips.items()},
            "spread": {k: (max(v) - min(v)) / max(v) for k, v in ips.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3, help="minimum steps per timed block")
    ap.add_argument("--block-seconds", type=float, default=2.0, help="minimum duration of a timed block")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved timed blocks per loop (best is kept)")
    ap.add_argument("--models", default="", help="comma-separated case names or model names (default: all)")
    ap.add_argument("--max-resolution", type=int, default=None, help="cap the recipes' resolution (quick runs)")
    ap.add_argument("--variants", default="", help=f"genlab ablations: {', '.join(VARIANTS)}")
    args = ap.parse_args()
    cases = {**CASES, **recipe_cases({o.split("=", 1)[1] for ovr, _ in CASES.values() for o in ovr
                                      if o.startswith("model.name=")})}
    if args.models:  # case names, or model names (the case name without its "-<px> (recipe)" tail)
        want = set(args.models.split(","))
        keys = {k: {k, k.split(" ")[0], k.split(" ")[0].rsplit("-", 1)[0]} for k in cases}
        unknown = sorted(w for w in want if not any(w in ks for ks in keys.values()))
        if unknown:
            ap.error(f"--models: no case {', '.join(unknown)}; the cases are {', '.join(cases)} "
                     "(a case name, its first word, or the model name)")
        cases = {k: v for k, v in cases.items() if keys[k] & want}
    variants = [v for v in args.variants.split(",") if v]
    device = "cpu"
    print(f"torch {torch.__version__}, {device}, {perf.cpu_cores()} usable cores; best of {args.repeats} interleaved "
          f"blocks of >= {args.steps} steps and >= {args.block_seconds:g} s; plain = fp32 eager textbook loop")
    head = f"{'case':<44}{'batch':>6}{'px':>5}{'genlab img/s':>14}{'plain img/s':>13}{'ratio':>7}"
    head += "".join(f"{v:>18}" for v in variants)
    print(head)
    ratios = []
    for name, (ovr, _) in cases.items():
        objective = MODELS.get(case_config(ovr, args.max_resolution).model.name).objective
        if objective not in PLAIN:  # e.g. R3GAN: its relativistic pairs and lazy R1/R2 have no textbook loop here
            print(f"{name:<44}  skipped: no plain loop for objective {objective}", flush=True)
            continue
        r = bench(ovr, args.steps, args.repeats, args.max_resolution, variants, args.block_seconds)
        g, p = r["ips"]["genlab"], r["ips"]["plain"]
        ratios.append(g / p)
        line = f"{name:<44}{r['cfg'].train.batch_size:>6}{r['cfg'].data.resolution:>5}{g:>14.1f}{p:>13.1f}{g / p:>7.2f}"
        line += "".join(f"{r['ips'][v]:>11.1f} ({r['ips'][v] / g:.2f})" for v in variants)
        print(line, flush=True)
    if ratios:
        print(f"geometric mean ratio genlab/plain: {math.exp(statistics.fmean(math.log(x) for x in ratios)):.2f} "
              f"(genlab runtime: {r['runtime'].describe()})")


if __name__ == "__main__":
    main()

"""Training throughput: genlab's training step vs a minimal plain-PyTorch loop of the same networks.

Both loops use the same networks (same init), batch, optimizer settings and in-memory uint8 data, and run
interleaved in the same process (these machines are noisy), so the ratio is what to read, not the absolute
figure. Usage: python benchmarks/train_throughput.py [--steps 30] [--repeats 3] [--models dcgan-32,...]
"""
from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F

from genlab.config import load_config
from genlab.data.base import ImageData, to_float
from genlab.models import MODELS
from genlab.training.loop import Trainer
from genlab.training.phases import Batch

# family -> (overrides, plain step builder name)
CASES = {
    "dcgan-32": (["model.name=dcgan", "data.resolution=32", "data.channels=3", "model.hidden_dim=64",
                  "model.latent_dim=100", "train.batch_size=64"], "gan"),
    "mlp-gan-28": (["model.name=mlp-gan", "data.resolution=28", "data.channels=1", "model.hidden_dim=256",
                    "model.latent_dim=100", "train.batch_size=64"], "gan"),
}


def plain_gan_step_fn(G, D, opt_g, opt_d, latent_dim):
    """The textbook loop: D on real and fake, then G with the non-saturating loss."""

    def step(x):
        n = x.shape[0]
        z = torch.randn(n, latent_dim)
        fake = G(z)
        opt_d.zero_grad(set_to_none=True)
        real_logits, fake_logits = D(x), D(fake.detach())
        d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        out = D(G(torch.randn(n, latent_dim)))
        g_loss = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        g_loss.backward()
        opt_g.step()
        return d_loss.item(), g_loss.item()

    return step


PLAIN = {"gan": plain_gan_step_fn}


def measure(fn, images, bs, steps, n_data) -> float:
    perm = torch.randperm(n_data)
    t0 = time.perf_counter()
    for i in range(steps):
        idx = perm[(i * bs) % (n_data - bs):][:bs]
        fn(to_float(images[idx]))
    return steps * bs / (time.perf_counter() - t0)


def bench(name: str, steps: int, repeats: int) -> tuple[float, float]:
    ovr, plain_kind = CASES[name]
    cfg = load_config(None, ovr + ["log.progress=false", "log.tensorboard=false", "train.device=cpu"])
    res, ch = cfg.data.resolution, cfg.data.channels
    images = torch.randint(0, 256, (2048, ch, res, res), dtype=torch.uint8)
    data = ImageData(images=images, name="synthetic")

    import tempfile

    from genlab.training.loop import prepare_run

    run = prepare_run(cfg, tempfile.mkdtemp() + "/run")
    trainer = Trainer(cfg, run, data, log=lambda *_: None)
    torch.manual_seed(0)
    nets = MODELS.get(cfg.model.name).build(cfg, 0)
    G, D = copy.deepcopy(nets["G"]), copy.deepcopy(nets["D"])
    o = cfg.train
    opt_g = torch.optim.Adam(G.parameters(), lr=o.g_opt.lr, betas=tuple(o.g_opt.betas))
    opt_d = torch.optim.Adam(D.parameters(), lr=o.d_opt.lr, betas=tuple(o.d_opt.betas))
    plain = PLAIN[plain_kind](G, D, opt_g, opt_d, cfg.model.latent_dim)
    bs = cfg.train.batch_size

    def genlab_step(x):
        trainer.train_step(Batch(x))
        trainer.step += 1
        trainer.reporter.add(trainer.step, {}, bs)

    for fn in (genlab_step, plain):  # warm-up
        measure(fn, images, bs, 3, len(images))
    g_ips, p_ips = [], []
    for _ in range(repeats):  # interleaved so both see the same machine load
        g_ips.append(measure(genlab_step, images, bs, steps, len(images)))
        p_ips.append(measure(plain, images, bs, steps, len(images)))
    return max(g_ips), max(p_ips)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default=",".join(CASES))
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu")
    print(f"{'model':<14}{'genlab img/s':>14}{'plain img/s':>14}{'ratio':>8}")
    for name in args.models.split(","):
        g, p = bench(name, args.steps, args.repeats)
        print(f"{name:<14}{g:>14.1f}{p:>14.1f}{g / p:>8.3f}")


if __name__ == "__main__":
    main()

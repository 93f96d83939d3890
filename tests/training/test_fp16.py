"""``train.precision=fp16`` (what auto takes on V100/T4) for every family, on the CPU: float16 autocast with one
GradScaler per optimizer, penalties loss-scaled (issue 31). The first step is the float32 step within float16's
rounding; the weights stay float32; the scalers' state goes into the checkpoint.

The scalers start at 2^4 here instead of GradScaler's 2^16: from 2^10 up the first steps of some of these tiny
nets overflow and are skipped while the scale calibrates (GradScaler's normal start), so they would not be the
float32 step."""
from __future__ import annotations

import pytest
import torch

from genlab.data.base import ImageData
from genlab.models import MODELS
from genlab.recipe import load_config
from genlab.training.loop import Trainer, epoch_permutation, prepare_run

CRITIC = ["train.loss=wasserstein"]
EXTRA = {"wgan": CRITIC, "wgan-gp": CRITIC, "text-wgan-gp": CRITIC, "vae": ["model.depth=1"],
         "r3gan": ["train.loss=relativistic", "objective.reg_every=1"]}


def synthetic(n: int = 32) -> ImageData:
    g = torch.Generator().manual_seed(0)
    return ImageData(images=torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
                     labels=torch.arange(n) % 10, class_names=[str(i) for i in range(10)], name="synthetic")


def trainer(model: str, path, precision: str) -> Trainer:
    cfg = load_config(None, [f"model.name={model}", "data.resolution=28", "data.channels=1", "model.hidden_dim=4",
                             "model.latent_dim=4", "train.batch_size=8", "log.progress=false",
                             "log.tensorboard=false", "train.device=cpu", "train.channels_last=false",
                             f"train.precision={precision}", *EXTRA.get(model, [])])
    return Trainer(cfg, prepare_run(cfg, path), synthetic(), log=lambda *_: None)


@pytest.mark.parametrize("model", MODELS.names())
def test_every_family_trains_under_fp16_with_loss_scaling(model, tmp_path):
    t, ref = trainer(model, tmp_path / "fp16", "fp16"), trainer(model, tmp_path / "fp32", "fp32")
    assert t.runtime.precision == "fp16"
    assert set(t.state.scalers) == set(t.state.optimizers) and all(
        isinstance(s, torch.amp.GradScaler) for s in t.state.scalers.values())
    for s in t.state.scalers.values():
        s.load_state_dict({**s.state_dict(), "scale": 2.0**4})
    perm = epoch_permutation(0, 0, 32)
    torch.manual_seed(1)
    a = t.step_fn(t.batches.at(perm, 0))
    torch.manual_seed(1)
    b = ref.step_fn(ref.batches.at(perm, 0))
    assert a.keys() == b.keys()
    for k in b:  # float16 keeps ~3 decimal digits; a near-flat critic's first step may flip a sign (bf16 test)
        assert torch.isfinite(a[k]) and abs(float(a[k]) - float(b[k])) <= 0.05 * abs(float(b[k])) + 0.06, \
            (k, a[k], b[k])
    assert all(p.dtype == torch.float32 for p in t.state.nets.parameters())
    scales = {k: s.get_scale() for k, s in t.state.scalers.items()}
    assert all(v == 2.0**4 for v in scales.values()), scales  # no step was skipped: every optimizer stepped
    saved = t.state.state_dict()["extra"]["scalers"]
    assert {k: v["scale"] for k, v in saved.items()} == scales

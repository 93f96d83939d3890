"""Learning-rate schedules: the factors against their formulas, and the trainer applying them."""
from __future__ import annotations

import math

import pytest
import torch

from genlab.data.base import ImageData
from genlab.errors import ConfigError
from genlab.recipe import load_config
from genlab.rundir import RunDir
from genlab.training import loop
from genlab.training.callbacks import Callback
from genlab.training.loop import Trainer, prepare_run
from genlab.training.schedule import budget_steps, lr_factor


def test_factors_with_warmup_then_decay_to_zero_after_the_budget():
    # warm-up 2 of 10 steps: 1/2, 2/2, then progress p = (step - 2) / 8
    for kind in ("constant", "cosine", "linear"):
        assert [lr_factor(kind, s, 10, 2) for s in (0, 1)] == [0.5, 1.0]
        assert lr_factor(kind, 2, 10, 2) == 1.0
    assert lr_factor("cosine", 6, 10, 2) == pytest.approx(0.5)
    assert lr_factor("linear", 6, 10, 2) == pytest.approx(0.5)
    assert lr_factor("cosine", 9, 10, 2) == pytest.approx(0.5 * (1 + math.cos(math.pi * 7 / 8)))
    assert lr_factor("linear", 9, 10, 2) == pytest.approx(1 / 8)
    assert lr_factor("linear", 10, 10, 2) == 0.0 and lr_factor("cosine", 12, 10, 2) == pytest.approx(0.0)
    assert lr_factor("constant", 9, 10) == 1.0 and lr_factor("cosine", 0, 4) == 1.0
    assert budget_steps(3, 5, None) == 15 and budget_steps(3, 5, 7) == 7 and budget_steps(3, 5, 99) == 15


def test_a_wall_clock_budget_decays_the_rate_when_it_runs_out_first():
    # the larger progress wins: time (0.75) ahead of steps (0.25), then steps (0.75) ahead of time (0.25)
    assert lr_factor("linear", 4, 10, 2, time_progress=0.75) == pytest.approx(0.25)
    assert lr_factor("linear", 8, 10, 2, time_progress=0.25) == pytest.approx(0.25)
    assert lr_factor("cosine", 4, 10, 2, time_progress=0.5) == pytest.approx(0.5)
    assert lr_factor("cosine", 2, 10, 2, time_progress=3.0) == pytest.approx(0.0)  # past the budget: 0, not negative
    assert lr_factor("linear", 0, 10, 2, time_progress=0.9) == 0.5  # warm-up counts steps only
    assert lr_factor("constant", 4, 10, 2, time_progress=0.9) == 1.0


def test_bad_schedule_values_are_config_errors():
    with pytest.raises(ConfigError, match="train.lr_schedule='step' is not allowed: constant, cosine or linear"):
        load_config(None, ["train.lr_schedule=step"])
    with pytest.raises(ConfigError, match="train.warmup_steps=-1"):
        load_config(None, ["train.warmup_steps=-1"])
    with pytest.raises(ConfigError, match="train.minutes=-1.0"):
        load_config(None, ["train.minutes=-1"])


class Rates(Callback):
    """The learning rate of every optimizer after each step (the one that step used)."""

    def __init__(self) -> None:
        self.seen: list[dict[str, float]] = []
        self.seconds: list[float] = []

    def on_step_end(self, trainer) -> None:
        self.seen.append({k: o.param_groups[0]["lr"] for k, o in trainer.state.optimizers.items()})
        self.seconds.append(trainer.state.seconds)  # trained after this step


TOY = ["model.name=dcgan", "data.resolution=28", "model.hidden_dim=4", "model.latent_dim=4", "train.batch_size=4",
       "train.threads=1", "log.progress=false", "log.tensorboard=false", "train.device=cpu"]


def toy_data() -> ImageData:
    return ImageData(images=torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8), labels=None, class_names=[],
                     name="toy")


def fit_recording_rates(tmp_path, overrides: list[str]) -> tuple[Trainer, Rates]:
    """A bare fit of the toy DCGAN with ``overrides``, recording every step's rates and seconds."""
    cfg = load_config(None, [*TOY, *overrides])
    trainer = Trainer(cfg, prepare_run(cfg, tmp_path / "run"), toy_data(), log=lambda *_: None)
    rates = Rates()
    loop.fit(trainer, [rates], standard=False)
    return trainer, rates


def test_trainer_sets_each_step_s_rate(tmp_path):
    _, rates = fit_recording_rates(tmp_path, ["train.epochs=3", "train.lr_schedule=linear", "train.warmup_steps=2",
                                              "train.g_opt.lr=1e-3", "train.d_opt.lr=5e-4"])
    # 8 images / batch 4 = 2 steps per epoch, 6 steps: warm-up 1/2, 1, then 1 - (s - 2) / 4
    factors = [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]
    assert [r["G"] for r in rates.seen] == pytest.approx([1e-3 * f for f in factors])
    assert [r["D"] for r in rates.seen] == pytest.approx([5e-4 * f for f in factors])


def test_trainer_decays_the_rate_over_train_minutes(tmp_path):
    # a step budget out of reach (200,000 steps, 10 us each): only the 2 seconds of train.minutes bring the rate down
    trainer, rates = fit_recording_rates(tmp_path, ["train.epochs=100000", f"train.minutes={2 / 60}",
                                                    "log.num_samples=4", "train.lr_schedule=linear",
                                                    "train.g_opt.lr=1e-3"])
    g = [r["G"] for r in rates.seen]
    assert trainer.out_of_time and len(g) > 10  # the clock, not the step budget, ended the run
    # each step's rate: linear in the seconds trained before it, down to near 0 for the last
    before = [0.0, *rates.seconds[:-1]]
    assert g == pytest.approx([1e-3 * (1 - s / 2) for s in before])
    assert g[0] == 1e-3 and rates.seconds[-2] < 2 <= rates.seconds[-1]  # the last began inside the budget


def test_minutes_budget_stops_saves_and_resumes_the_rest(tmp_path):
    def cfg(minutes: float):
        return load_config(None, [*TOY, "train.epochs=2", f"train.minutes={minutes}", "log.num_samples=4"])

    data = toy_data()
    messages: list[str] = []
    path = tmp_path / "run"
    first = Trainer(cfg(1e-9), prepare_run(cfg(1e-9), path), data, log=messages.append)
    loop.fit(first)
    assert first.out_of_time and first.state.step == 1 and first.state.seconds > 0
    assert "train.minutes=1e-09 reached at step 1 (epoch 1)" in messages[-1]
    run = RunDir.of(path)
    last = run.checkpoint_files()[-1]
    assert torch.load(last, weights_only=True)["extra"]["train_seconds"] == first.state.seconds
    again = Trainer(cfg(1e-9), run, data, resume_from=last, log=messages.append)
    loop.fit(again)  # nothing left of the budget
    assert again.out_of_time and again.state.step == 1 and "already trained" in messages[-1]
    longer = Trainer(cfg(60), run, data, resume_from=last, log=messages.append)
    loop.fit(longer)  # the rest of the epochs fit in the new budget
    assert not longer.out_of_time and longer.state.step == 4 and longer.state.seconds > first.state.seconds
    assert run.read_status()["state"] == "finished"

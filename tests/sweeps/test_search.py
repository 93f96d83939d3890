"""`genlab.search` in this process: a tiny grid study over learning rates in which absurd rates are really pruned at
their first in-training evaluation; the table, best.yaml, the report; and every refusal before any training."""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import pytest

import genlab
from genlab.errors import ConfigError
from genlab.sweeps.search_file import parse_search, validate

GOOD, BAD = (1.0e-9, 2.0e-9), (0.5, 1.0)  # G barely moves | G thrown far off at once (measured FID ~160 vs ~190)


@pytest.fixture(scope="module")
def pruned_study(search_world, monkeypatch_module):
    monkeypatch_module.setenv("GENLAB_CACHE_DIR", str(search_world["cache"]))
    folder = search_world["folder"]
    spec = {"name": "prune", "base": str(folder / "tiny.yaml"),
            "space": {"train.g_opt.lr": [*GOOD, *BAD]},
            "objective": {"metric": "fid", "every": 1},
            "sampler": {"name": "grid", "seed": 5}, "pruner": {"name": "median", "n_startup_trials": 1}}
    lines: list[str] = []
    out = folder / "prune"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the synthetic IDX files do not match the published checksums
        summary = genlab.search(spec, out=out, log=lines.append)
    return summary, out, lines


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def load_trials(out: Path):
    import optuna

    return optuna.load_study(study_name="prune", storage=f"sqlite:///{out / 'study.db'}").get_trials()


def test_absurd_learning_rates_are_pruned_at_their_first_evaluation(pruned_study):
    summary, out, lines = pruned_study
    trials = load_trials(out)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    lr = {t.number: t.params["train.g_opt.lr"] for t in trials}
    assert sorted(lr.values()) == sorted([*GOOD, *BAD])
    # precondition: the grid's order (sampler seed 5) puts an absurd rate after a complete sensible one
    first_good = min(n for n, v in lr.items() if v in GOOD)
    assert any(n > first_good and v in BAD for n, v in lr.items()), lr
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned, [(t.number, t.state.name, t.intermediate_values) for t in trials]
    for t in pruned:
        assert lr[t.number] in BAD and list(t.intermediate_values) == [1]  # stopped at epoch 1 of 2
        run = out / "trials" / f"{t.number:04d}" / "seed=0"
        status = json.loads((run / "status.json").read_text())
        assert status["state"] == "pruned" and status["epoch"] == 1 and status["epochs"] == 2
        assert status["search"]["trial"] == t.number and status["search"]["fid"] == t.intermediate_values[1]
        assert (run / "checkpoints" / "step_000000002.pt").is_file()  # its run folder is kept, epoch 1 saved
        assert f"trial {t.number} pruned (pruned at epoch 1: fid" in "\n".join(lines)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert all(lr[t.number] in GOOD for t in complete if t.number > first_good)
    for t in complete:
        status = json.loads((out / "trials" / f"{t.number:04d}" / "seed=0" / "status.json").read_text())
        assert status["state"] == "finished" and status["epoch"] == 2 and list(t.intermediate_values) == [1, 2]
    assert summary.counts == {"COMPLETE": len(complete), "PRUNED": len(pruned)} and summary.finished == 4


def test_table_and_best_recipe_that_genlab_train_takes(pruned_study):
    summary, out, _ = pruned_study
    trials = load_trials(out)
    best = min((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert summary.best["number"] == best.number and summary.best["value"] == best.value
    assert summary.direction == "minimize" and summary.objective == "fid"
    md = (out / "trials.md").read_text()
    assert f"| {best.number} ★ | complete |" in md and "pruned at epoch 1: fid" in md and "| lr | FID ↓ |" in md
    rows = (out / "trials.csv").read_text().splitlines()
    assert rows[0] == "trial,state,retry_of,train.g_opt.lr,fid,seed_values,minutes,folder,note" and len(rows) == 5
    # best.yaml is a recipe: the same config as the best trial's run (log.progress as in the base recipe)
    from omegaconf import OmegaConf

    from genlab.recipe import from_dict, load_config

    recipe = load_config(out / "best.yaml")
    run_cfg = from_dict(OmegaConf.to_container(OmegaConf.load(
        out / "trials" / f"{best.number:04d}" / "seed=0" / "config.yaml")))
    assert recipe.train.g_opt.lr == best.params["train.g_opt.lr"] and recipe.name == "prune-best"
    recipe.name, recipe.description = run_cfg.name, run_cfg.description
    assert recipe == run_cfg
    manifest = json.loads((out / "search.json").read_text())
    assert manifest["storage"] == "study.db" and manifest["objective"]["direction"] == "minimize"
    assert (out / "search.yaml").is_file()


def test_report_shows_history_importances_coordinates_and_the_best_grid(pruned_study, tmp_path):
    from genlab.reporting.html import build_report

    summary, out, _ = pruned_study
    html = build_report([out], tmp_path / "r.html", log=lambda *_: None).read_text()
    for title in ("Optimisation history", "Parameter importances", "Parallel coordinates", "Intermediate values",
                  f"Best trial {summary.best['number']}"):
        assert title in html, title
    assert "could not be drawn" not in html
    assert html.count("data:image/png;base64,") >= 5
    assert "optuna-dashboard sqlite:///" in html


def test_a_rerun_of_a_finished_study_trains_nothing(pruned_study, search_world):
    summary, out, _ = pruned_study
    before = {p: p.stat().st_mtime_ns for p in out.glob("trials/*/seed=0/metrics.jsonl")}
    spec = json.loads(json.dumps({"name": "prune", "base": str(search_world["folder"] / "tiny.yaml"),
                                  "space": {"train.g_opt.lr": [*GOOD, *BAD]}, "objective": {"metric": "fid"},
                                  "sampler": {"name": "grid", "seed": 5},
                                  "pruner": {"name": "median", "n_startup_trials": 1}}))
    again = genlab.search(spec, out=out, log=lambda *_: None)
    assert again.counts == summary.counts and len(load_trials(out)) == 4
    assert before and {p: p.stat().st_mtime_ns for p in before} == before
    spec["space"]["train.g_opt.lr"] = [*GOOD]  # another space, same study: refused before anything trains
    with pytest.raises(ConfigError, match="made by another search"):
        genlab.search(spec, out=out, log=lambda *_: None)


# ---------------------------------------------------------------------------------------------------- refusals
def spec_with(folder: Path, **changes) -> dict:
    spec = {"name": "s", "base": str(folder / "tiny.yaml"),
            "space": {"train.g_opt.lr": {"low": 1.0e-4, "high": 1.0e-2, "log": True}}}
    for k, v in changes.items():
        if v is None:
            spec.pop(k, None)
        else:
            spec[k] = v
    return spec


REFUSED = [
    ("unknown-file-key", {"grid": {"model.latent_dim": [4]}}, ["unknown key 'grid'", "space"]),
    ("unknown-config-key", {"space": {"train.g_opt.rate": [1, 2]}}, ["'train.g_opt.rate' is not a config key"]),
    ("empty-range", {"space": {"train.g_opt.lr": {"low": 1.0e-2, "high": 1.0e-4}}},
     ["space.train.g_opt.lr is an empty range", "low=0.01 is not below high=0.0001"]),
    ("empty-choices", {"space": {"train.loss": []}}, ["space.train.loss is an empty list of choices"]),
    ("log-non-positive", {"space": {"train.g_opt.lr": {"low": 0.0, "high": 1.0e-2, "log": True}}},
     ["space.train.g_opt.lr: a log scale needs low > 0, got low=0.0"]),
    ("rfid-on-a-gan", {"objective": "rfid"}, ["objective rfid needs a model with an encoder", "dcgan has none"]),
    ("conditional-metric-unconditional", {"objective": "class_acc"}, ["dcgan is unconditional"]),
    ("metric-unknown", {"objective": "fdi"}, ["objective 'fdi' is not a metric"]),
    ("metric-ambiguous", {"objective": "pr"}, ["name one: pr/precision, pr/recall"]),
    ("range-value-refused", {"space": {"model.latent_dim": {"low": 0, "high": 8}}},
     ["the trial model.latent_dim=0 would be refused"]),
    ("int-key-float-range", {"space": {"model.latent_dim": {"low": 2.5, "high": 8.0}}},
     ["model.latent_dim=2.5 would be refused"]),
    ("grid-with-range", {"sampler": "grid"}, ["sampler grid needs every space entry to be a list"]),
    ("sampler-option", {"sampler": {"name": "tpe", "n_startup": 3}}, ["sampler 'tpe' has no option 'n_startup'"]),
    ("pruner-unknown", {"pruner": "patience"}, ["unknown pruner 'patience'", "hyperband, median, none"]),
    ("seed-in-space", {"space": {"train.seed": [1, 2]}}, ["'train.seed' is set by the search's 'seeds'"]),
    ("both", {"overrides": {"train.g_opt.lr": 1.0e-3}}, ["'train.g_opt.lr' is both in overrides and in space"]),
    ("list-index", {"space": {"train.g_opt.betas.2": [0.9]}}, ["train.g_opt.betas has 2 elements"]),
    ("when-unknown", {"space": {"train.g_opt.lr": [1.0e-3],
                                "objective.n_critic": {"low": 1, "high": 5, "when": {"model.name": "wgan-gp"}}}},
     ["names 'model.name', which is not a space key above it"]),
    ("budget", {"budget": {"steps": 0}}, ["budget.steps=0"]),
    ("grace", {"study": {"heartbeat_seconds": 5, "grace_seconds": 5}}, ["grace_seconds=5 must exceed"]),
]


def test_the_search_file_the_refusals_start_from_passes(search_world):
    spec = validate(parse_search(spec_with(search_world["folder"])))  # the negative control of every case below
    assert spec.space.keys == ["train.g_opt.lr"] and spec.objective.key == "fid" and spec.trials == 20


@pytest.mark.parametrize("case,changes,words", REFUSED, ids=[c[0] for c in REFUSED])
def test_bad_search_files_are_refused_in_one_line_before_any_training(search_world, case, changes, words):
    folder = search_world["folder"]
    with pytest.raises(ConfigError) as e:
        validate(parse_search(spec_with(folder, **changes)))
    message = str(e.value)
    assert "\n" not in message
    for w in words:
        assert w in message, message
    assert not (folder / "searches").exists()


def test_a_space_reads_like_a_grid_with_list_elements_and_conditions(search_world):
    folder = search_world["folder"]
    spec = validate(parse_search(spec_with(folder, space={
        "model": {"name": ["dcgan", "wgan-gp"]},
        "objective.n_critic": {"low": 1, "high": 3, "when": {"model.name": "wgan-gp"}},
        "train.g_opt.betas.0": {"low": 0.0, "high": 0.9},
        "train.loss": ["hinge", "bce"], "train.diffaugment": ["", "translation,cutout"]},
        overrides={"train.d_opt.lr": 1.0e-3})))
    p = {x.key: x for x in spec.space.params}
    assert p["model.name"].kind == "categorical" and p["objective.n_critic"].kind == "int"
    assert p["train.g_opt.betas.0"].kind == "float" and p["objective.n_critic"].when == (("model.name", ("wgan-gp",)),)
    ov = spec.overrides({"model.name": "dcgan", "train.g_opt.betas.0": 0.25, "train.loss": "bce"}, 3)
    assert "train.g_opt.betas=[0.25,0.999]" in ov and ov[-1] == "train.seed=3" and "eval.every=1" in ov
    assert "train.d_opt.lr=0.001" in ov and "eval.metrics=[fid]" in ov
    assert not any(o.startswith("objective.n_critic") for o in ov)
    cfg = spec.config({"model.name": "wgan-gp", "objective.n_critic": 2, "train.g_opt.betas.0": 0.5,
                       "train.loss": "hinge"}, 0)
    assert cfg.objective["n_critic"] == 2 and cfg.train.g_opt.betas == [0.5, 0.999]
    for text in ("", "translation,cutout"):  # "" stays a string (an override reads a bare empty value as null)
        assert spec.config({"model.name": "dcgan", "train.g_opt.betas.0": 0.5, "train.loss": "hinge",
                            "train.diffaugment": text}, 0).train.diffaugment == text


def test_a_retry_waits_while_another_worker_still_trains_the_folder(pruned_study):
    """A worker taken for dead (late heartbeat) may still train the trial its retry continues: the run lock keeps
    the retry off the folder until that worker ends, then the retry reads what it finished."""
    import threading

    from genlab.rundir import RunDir
    from genlab.sweeps import search as search_mod

    summary, out, _ = pruned_study
    run = RunDir(out / "trials" / f"{summary.best['number']:04d}" / "seed=0")
    lock = run.lock()  # "the other worker": holds RUN/.lock for a while
    assert run.lock_owner() is not None
    threading.Timer(1.0, lock.release).start()
    lines: list[str] = []
    t0 = time.monotonic()
    search_mod.wait_for_lock(run, lines.append, poll_s=0.1)
    assert time.monotonic() - t0 >= 0.9 and run.lock_owner() is None
    assert "is being trained by genlab process" in lines[0] and "waiting for it to end" in lines[0]
    assert search_mod.final_value(run, "fid") == pytest.approx(summary.best["value"])


def test_shipped_search_files_are_valid():
    from genlab.sweeps.search_file import load_search

    root = Path(__file__).resolve().parents[2]
    files = sorted((root / "configs" / "searches").glob("*.yaml"))
    assert len(files) >= 3, files
    for f in files:
        s = load_search(f)  # every corner of the space builds a recipe that would be accepted
        assert s.name == f.stem and s.trials >= 1, f
        # its comment's first command runs it as it is
        assert f"genlab search configs/searches/{f.name}" in f.read_text(), f


def test_a_trial_two_workers_started_at_once_gives_way_without_training(search_world, tmp_path):
    """The race of two workers that both found room for the study's last trial: each checks the count, then asks
    for a trial. The later trial by number ends "not run" before anything trains, counts neither as finished nor
    as failed, and the table names it; a retry of a dead trial always runs."""
    from types import SimpleNamespace

    from genlab.reporting.search_table import rows
    from genlab.sweeps import search as search_mod
    from genlab.sweeps.study import SURPLUS_ATTR

    spec = spec_with(search_world["folder"], trials=2)
    search = parse_search(spec)
    validate(search)
    study = search_mod.open_study(search, f"sqlite:///{tmp_path / 'study.db'}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's note that heartbeats are meant for optimize(), not ask()
        third = [study.ask() for _ in range(3)][-1]  # three workers found room for one more trial at once
    lines: list[str] = []
    objective = search_mod.Objective(search, tmp_path, lines.append)
    with pytest.raises(search_mod.SurplusTrial):
        objective(third)
    assert objective.surplus and not (tmp_path / "trials").exists()  # nothing trained, no folder made
    study.tell(third, state=__import__("optuna").trial.TrialState.FAIL)
    trials = study.get_trials()
    assert trials[2].user_attrs[SURPLUS_ATTR] is True and "not run" in trials[2].user_attrs["error"]
    assert search_mod._counts(study) == {"RUNNING": 2, "SURPLUS": 1}
    assert [r.state for r in rows(trials)] == ["running", "running", "not run"]

    def t(n, state):
        return SimpleNamespace(number=n, state=SimpleNamespace(name=state))

    assert not search_mod.is_surplus([t(0, "COMPLETE"), t(1, "RUNNING")], 1, 2)
    assert search_mod.is_surplus([t(0, "COMPLETE"), t(1, "RUNNING"), t(2, "RUNNING")], 2, 2)
    assert search_mod.is_surplus([t(0, "PRUNED"), t(1, "RUNNING"), t(2, "FAIL"), t(3, "RUNNING")], 3, 2)
    assert not search_mod.is_surplus([t(0, "FAIL"), t(1, "COMPLETE"), t(2, "RUNNING")], 2, 2)  # failed: room again
    assert not search_mod.is_surplus([t(0, "COMPLETE"), t(1, "WAITING"), t(2, "RUNNING")], 2, 2)

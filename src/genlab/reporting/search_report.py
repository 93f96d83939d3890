"""The report's block for a search folder: what was searched, the trials' table, Optuna's figures (optimisation
history, intermediate values, parameter importances, parallel coordinates; its matplotlib visualisations) and the
best trial's last sample grid. Each figure that cannot be drawn (too few complete trials) says why instead.

The study is opened from the storage named in search.json (the SQLite file next to it by default; another
database by its URL, without its password: keep that in PGPASSWORD or ~/.pgpass).
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

from genlab.analysis.epoch_grids import sample_epochs
from genlab.errors import GenlabError
from genlab.reporting.page import Block, Image, Section, Table, data_uri, fig_image
from genlab.reporting.search_table import best_row, read_search_manifest, rows, to_markdown

#: (title, the optuna.visualization.matplotlib function that draws it, caption)
FIGURES = (("Optimisation history", "plot_optimization_history", "the objective of every complete trial, and the best "
                                                                "so far"),
           ("Intermediate values", "plot_intermediate_values", "the objective at each in-training evaluation (step = "
                                                              "epoch): the values the pruner compared"),
           ("Parameter importances", "plot_param_importances", "how much of the objective's spread each key explains "
                                                              "(PED-ANOVA over the complete trials)"),
           ("Parallel coordinates", "plot_parallel_coordinate", "each complete trial's values, coloured by its "
                                                               "objective"))


def storage_url(path: Path, manifest: dict) -> str:
    stored = str(manifest.get("storage") or "study.db")
    return f"sqlite:///{(path / stored).absolute()}" if "://" not in stored else stored


def load_study(path: Path, manifest: dict):
    try:
        import optuna
    except ImportError:
        raise GenlabError('the search report needs Optuna: pip install "genlab[search]"') from None
    url = storage_url(path, manifest)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        return optuna.load_study(study_name=manifest.get("study_name") or manifest.get("name"), storage=url)
    except Exception as e:
        raise GenlabError(f"cannot open the study in {url}: {str(e).strip().splitlines()[0] if str(e).strip() else e}"
                          ) from None


def _figure(study, fn_name: str):
    import optuna
    from optuna.visualization import matplotlib as vis

    fn = getattr(vis, fn_name)
    kw = {"evaluator": optuna.importance.PedAnovaImportanceEvaluator()} if fn_name == "plot_param_importances" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib figures experimental
        ax = fn(study, **kw)
    fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
    fig.set_size_inches(7.5, 4.2)
    fig.tight_layout()
    return fig


def search_block(path: Path, log: Callable[[str], None] = print) -> Block:
    manifest = read_search_manifest(path) or {}
    objective = manifest.get("objective") or {}
    key, direction = objective.get("key", "fid"), objective.get("direction", "minimize")
    block = Block(id="search", title=f"Search {manifest.get('name', path.name)}",
                  subtitle=f"{path} - {manifest.get('description', '')}".rstrip(" -"))
    setup = Section(id="search-setup", title="Search")
    setup.pre = json.dumps({k: manifest.get(k) for k in ("base", "overrides", "space", "objective", "budget", "seeds",
                                                         "trials", "sampler", "pruner", "storage")}, indent=1)
    url = storage_url(path, manifest)
    setup.notes.append(f"the study opens in Optuna's dashboard: optuna-dashboard {url}")
    block.sections.append(setup)
    try:
        study = load_study(path, manifest)
    except GenlabError as e:
        missing = Section(id="search-trials", title="Trials")
        missing.notes.append(f"could not be drawn: {e}")
        block.sections.append(missing)
        return block
    trials = study.get_trials(deepcopy=False)
    keys = list(dict.fromkeys(k for t in trials for k in t.params))
    table = rows(trials)
    section = Section(id="search-trials", title="Trials")
    head = ["trial", "state"] + keys + [key, "over seeds", "minutes", "note"]
    best = best_row(table, direction)
    body = []
    for r in table:
        star = " ★" if best is not None and r.number == best.number else ""
        retry = f" (retry of {r.retry_of})" if r.retry_of is not None else ""
        body.append([f"{r.number}{star}", r.state + retry] + [_cell(r.params.get(k)) for k in keys]
                    + [_cell(r.value), r.spread, "" if r.minutes is None else f"{r.minutes:.2f}", r.note])
    section.tables.append(Table(head, body, caption=to_markdown(table, key, direction, keys).splitlines()[0]))
    block.sections.append(section)
    for title, fn_name, caption in FIGURES:
        fig_section = Section(id="search-" + fn_name.removeprefix("plot_").replace("_", "-"), title=title)
        try:
            fig_section.images.append(fig_image(_figure(study, fn_name), caption))
        except Exception as e:  # Optuna refuses a figure without enough complete trials (or parameters)
            log(f"report: {title} could not be drawn: {e}")
            fig_section.notes.append(f"could not be drawn: {str(e).strip().splitlines()[0] if str(e).strip() else e}")
        block.sections.append(fig_section)
    grid = Section(id="search-best", title=f"Best trial {best.number}" if best else "Best trial")
    if best is None:
        grid.notes.append("no trial is complete yet")
    else:
        run = path / best.folder / "seed=0" if best.folder else None
        epochs = sample_epochs(run) if run is not None and run.is_dir() else {}
        if not epochs and run is not None:  # its first seed may not be seed 0
            seeds = sorted((path / best.folder).glob("seed=*")) if best.folder else []
            run = seeds[0] if seeds else run
            epochs = sample_epochs(run) if run is not None and run.is_dir() else {}
        if epochs:
            epoch, png = list(epochs.items())[-1]
            shown = ", ".join(f"{k}={_cell(v)}" for k, v in best.params.items())
            grid.images.append(Image(data_uri(png.read_bytes()), f"trial {best.number} ({shown}): {key} "
                                     f"{best.value:.4g}; samples at epoch {epoch} of {run}", "best trial's samples",
                                     pixelated=True))
            grid.notes.append(f"its recipe: {path / 'best.yaml'} (genlab train {path / 'best.yaml'})")
        else:
            grid.notes.append(f"its run folder {run} has no sample grid")
    block.sections.append(grid)
    return block


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)

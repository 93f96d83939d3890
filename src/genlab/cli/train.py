"""`genlab train` and `genlab sample`."""
from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from genlab.cli import app, console, device_option, on_ctrl_c, output_path, positive
from genlab.errors import ConfigError
from genlab.rundir import RunDir


def _choices() -> str:
    from genlab.data import DATASETS
    from genlab.models import MODELS
    from genlab.objectives import LOSSES

    return (f"models: {', '.join(MODELS.names())}; datasets: {', '.join(DATASETS.names())}; "
            f"losses: {', '.join(LOSSES.names())}")


def describe_run(run_dir: Path) -> None:
    """Print where the run folder is and what is in it."""
    from rich.text import Text
    from rich.tree import Tree

    tree = Tree(Text(str(run_dir), style="bold"))
    for p in sorted(run_dir.iterdir()):
        if p.is_dir():
            files = sorted(p.iterdir())
            sub = tree.add(f"{p.name}/ ({len(files)} files)")
            for f in files[-3:]:
                sub.add(f.name)
        else:
            tree.add(f"{p.name} ({p.stat().st_size / 1024:.1f} KiB)")
    console.print(tree)


def _complete_recipe(incomplete: str) -> list[str]:
    """Shell completion of the recipe argument: the names of the recipes that ship with genlab."""
    from genlab.recipe_files import ALIASES, shipped

    if "=" in incomplete or "/" in incomplete:  # an override or a path: the shell's own file completion
        return []
    return [n for n in sorted(ALIASES) + [r.name for r in shipped() if r.kind == "recipe"] if n.startswith(incomplete)]


@app.command(help=f"Train a recipe (YAML) with dotted overrides, or resume a run. Choices: {_choices()}")
def train(
    args: list[str] | None = typer.Argument(None, help="RECIPE (a YAML file or a shipped recipe's name: `genlab "
                                            "recipes list`) then key=value overrides",
                                            autocompletion=_complete_recipe),
    run_dir: Path | None = typer.Option(None, "--run-dir", help="run folder (default: runs/<recipe name>)"),
    resume: Path | None = typer.Option(None, "--resume", help="continue this run folder where it stopped"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing run folder"),
) -> None:
    from genlab.api import train as train_run

    args = list(args or [])
    recipe = args.pop(0) if args and "=" not in args[0] else None
    if resume is None and recipe is None and not args:
        raise ConfigError("give a recipe, e.g. `genlab train demo` (a shipped recipe's name: `genlab recipes list`) "
                          "or `genlab train configs/demo_fashion_mnist_dcgan.yaml`, or --resume RUN_DIR")
    if resume is not None:  # a run folder whose files cannot be read is refused before anything is rewritten
        rd = RunDir.of(resume).require()
        rd.read_config()
        rd.load_noise()
    t0 = time.perf_counter()
    main = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 talks
    run = train_run(recipe, args, resume if resume is not None else run_dir, overwrite=overwrite,
                    resume=resume is not None, log=console.print if main else _quiet)
    if main:
        # wall time of the whole command: train.minutes counts training steps only, not start-up, grids, the
        # final checkpoint or loading the run back
        console.print(f"finished {run.step} steps, {run.epoch} epochs{_ended_by(run.path)}; the command took "
                      f"{time.perf_counter() - t0:.1f}s in all")
        describe_run(run.path)


def _quiet(*_args, **_kwargs) -> None:
    return None


def _ended_by(run_dir: Path) -> str:
    """``: train.minutes=10 ran out first``: the budget (steps, epochs, minutes) that ended the run (status.json)."""
    ended = (RunDir.of(run_dir).read_status() or {}).get("ended_by")
    return f": {ended} ran out first" if ended else ""
STEPS_HELP = "flow and diffusion models: ODE steps (default: the run's objective.steps)"
SOLVER_HELP = "flow and diffusion models: euler | heun (default: the run's objective.solver)"
GUIDANCE_HELP = ("class-conditional flow and diffusion models: classifier-free guidance scale (1 = none, the "
                 "default: the run's objective.guidance)")


def check_sampling(steps: int | None, solver: str | None, guidance: float | None) -> None:
    """--steps, --solver and --guidance checked before any work (whether the model takes them: once loaded)."""
    from genlab.diffusion import SOLVERS

    positive(steps, "--steps", "ODE steps per image")
    if solver is not None:
        SOLVERS.get(solver)
    if guidance is not None and not guidance >= 0:
        raise ConfigError(f"--guidance {guidance} is not allowed: a scale >= 0 (1 = no guidance)")


@app.command(help="Draw a grid of samples from a trained run.")
def sample(
    run_dir: Path = typer.Argument(..., help="a run folder"),
    n: int = typer.Option(64, "-n", help="number of images"),
    out: Path = typer.Option(Path("samples.png"), "-o", "--out", help="output image: .png, .jpg/.jpeg or .webp"),
    seed: int = typer.Option(0, "--seed", help="latent seed"),
    checkpoint: str = typer.Option("last", "--checkpoint", help="last | best | PATH"),
    label: list[int] | None = typer.Option(None, "--label", help="class label(s) for conditional models"),
    prompt: str | None = typer.Option(None, "--prompt", help="caption for text-conditional models"),
    nrow: int | None = typer.Option(None, "--nrow", help="images per row"),
    device: str = device_option(),
    truncation: float | None = typer.Option(None, "--truncation",
                                            help="psi > 0: latents kept inside it (smaller: more typical images)"),
    truncation_mode: str = typer.Option("resample", "--truncation-mode",
                                        help="resample (redraw every |z_i| > psi) | interp (z -> psi z)"),
    steps: int | None = typer.Option(None, "--steps", help=STEPS_HELP),
    solver: str | None = typer.Option(None, "--solver", help=SOLVER_HELP),
    guidance: float | None = typer.Option(None, "--guidance", help=GUIDANCE_HELP),
) -> None:
    from genlab.api import load_run
    from genlab.evaluation import describe_sampling
    from genlab.grids import image_format
    from genlab.sampling import as_truncation

    positive(n, "-n", "the number of images")
    positive(nrow, "--nrow", "images per row")
    check_sampling(steps, solver, guidance)
    image_format(out)
    output_path(out, suffixes=(".png", ".jpg", ".jpeg", ".webp"))
    trunc = as_truncation(truncation, truncation_mode) if truncation is not None else None
    if trunc is None:
        as_truncation(1.0, truncation_mode)  # an unknown --truncation-mode is refused even without --truncation
    with on_ctrl_c("nothing was written"):
        run = load_run(run_dir, checkpoint, device).with_sampling(steps, solver, guidance)
        images = run.sample(n, seed=seed, labels=list(label) if label else None, prompt=prompt, log=console.print,
                            truncation=trunc)
        run.save_grid(images, out, nrow=nrow)
    how = f" with truncation psi={trunc.psi:g} ({trunc.mode})" if trunc is not None else ""
    ode = describe_sampling(run.loaded.image_sampler.describe())
    how += f", sampled with {ode}" if ode else ""
    console.print(f"wrote {n} samples from {run.checkpoint} (step {run.step}){how} to {out}")

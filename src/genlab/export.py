"""Weights others can use: a run's generator exported as safetensors plus a JSON description, and loaded back
without the run folder (no optimizer state, no pickles, no training code)::

    DIR/generator.safetensors   the generator's state dict (the EMA weights when the run kept an EMA)
    DIR/generator.json          model name and options, data shape, classes, text vocabulary, checkpoint step,
                                genlab version, and the run's resolved config (what the model builder reads);
                                flow and diffusion models: their default sampler (solver, steps, NFE, guidance)

A flow or diffusion export samples with the same ODE as its run (``genlab.recipe.image_sampler`` from the saved
config); ``sample(..., steps=, solver=, guidance=)`` changes it as ``genlab sample --steps`` does.

``export_generator`` writes both files into a fresh folder next to DIR and renames it into place, so DIR is
either the old export or the complete new one, never half of each.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from genlab import __version__
from genlab.config import to_dict
from genlab.errors import RunError
from genlab.io import atomic_write_bytes, atomic_write_text, make_temp_dir
from genlab.models import MODELS
from genlab.recipe import build_networks, from_dict
from genlab.rundir import RunDir
from genlab.sampling import LoadedRun, load_run, sample_prompt

WEIGHTS_FILE = "generator.safetensors"
META_FILE = "generator.json"
#: the ``format`` entry of generator.json; FORMAT_VERSION grows when the layout changes incompatibly
FORMAT = "genlab-generator"
FORMAT_VERSION = 1


@dataclass
class GeneratorInfo:
    """generator.json: everything needed to rebuild the generator and use it as the run did."""

    model: str  # registered model name (`genlab models list`)
    model_options: dict  # the run's model.* options
    data: dict  # name, resolution, channels: the images the generator draws
    latent_dim: int
    conditioning: str  # the conditioning's registered name (models.conditioning.CONDITIONINGS: none | class | text)
    num_classes: int  # 0 for unconditional models
    class_names: list[str]
    text: dict | None  # text models: vocabulary, class captions, caption bank (models.textcond.text_state)
    step: int  # training step of the exported checkpoint
    epoch: int
    ema: bool  # the weights are the EMA copy of G
    source_checkpoint: str
    genlab_version: str
    config: dict  # the run's resolved config
    sampling: dict | None = None  # flow and diffusion models: the default sampler (None: one network call)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @classmethod
    def of_run(cls, run: LoadedRun) -> GeneratorInfo:
        cfg = to_dict(run.cfg)
        return cls(model=run.cfg.model.name, model_options=cfg["model"],
                   data={"name": run.cfg.data.name, "resolution": run.cfg.data.resolution,
                         "channels": run.cfg.data.channels},
                   latent_dim=run.cfg.model.latent_dim, conditioning=run.conditioning.name,
                   num_classes=run.num_classes, class_names=run.class_names, text=run.extra.get("text"),
                   step=run.step, epoch=run.epoch, ema=run.ema is not None, source_checkpoint=str(run.checkpoint),
                   genlab_version=__version__, config=cfg, sampling=run.image_sampler.describe())

    @classmethod
    def read(cls, path: Path) -> GeneratorInfo:
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunError(f"{str(path)!r} is not a readable generator description ({type(e).__name__}); "
                           "export the run again with `genlab export RUN -o DIR`") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise RunError(f"{str(path)!r} is not a genlab generator export (format {FORMAT!r} expected)")
        if int(raw.get("format_version", 0)) > FORMAT_VERSION:
            raise RunError(f"{str(path)!r} has export format version {raw['format_version']}; this genlab "
                           f"({__version__}) reads up to {FORMAT_VERSION}: upgrade genlab")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in raw.items() if k in known})
        except TypeError as e:  # a required entry is missing
            raise RunError(f"{str(path)!r} is an incomplete generator description ({e}); export the run "
                           "again") from None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    def extra(self) -> dict:
        """The checkpoint ``extra`` entries sampling reads (classes, text vocabulary)."""
        out: dict[str, Any] = {"num_classes": self.num_classes, "class_names": list(self.class_names)}
        if self.text is not None:
            out["text"] = self.text
        return out


def _state_tensors(net: nn.Module) -> dict[str, torch.Tensor]:
    # safetensors wants contiguous CPU tensors that share no storage; clone gives each its own
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in net.state_dict().items()}


def _check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise RunError(f"{str(out)!r} is a file; export into a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise RunError(f"{str(out)!r} is not empty; pick another folder or pass --overwrite to replace it")


def _publish(staged: Path, out: Path) -> None:
    """Rename the finished folder ``staged`` to ``out``: a rename over an empty folder is atomic; a non-empty
    one (--overwrite) is moved aside first and removed once the new folder is in place."""
    if out.is_dir() and any(out.iterdir()):
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        os.replace(out, old / out.name)
        try:
            os.replace(staged, out)
        except BaseException:
            os.replace(old / out.name, out)  # the old export stays in place
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, out)


def export_generator(run_dir: str | Path | RunDir, out_dir: str | Path, checkpoint: str = "last",
                     overwrite: bool = False) -> Path:
    """Write the generator of ``run_dir``'s checkpoint (last | best | a path) to ``out_dir`` -> ``out_dir``."""
    out = Path(out_dir)
    _check_target(out, overwrite)  # before loading anything: a refusal costs nothing
    run = load_run(RunDir.of(run_dir).path, checkpoint, "cpu")
    info = GeneratorInfo.of_run(run)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = make_temp_dir(out.parent, prefix=f".{out.name}.tmp-")  # the usual permissions, umask untouched
    try:
        metadata = {"format": FORMAT, "model": info.model, "step": str(info.step), "genlab_version": __version__}
        atomic_write_bytes(staged / WEIGHTS_FILE, save_safetensors(_state_tensors(run.generator), metadata))
        atomic_write_text(staged / META_FILE, info.to_json())
        _publish(staged, out)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
    return out


@dataclass
class ExportedGenerator:
    """A generator loaded from an export: ``net`` (eval mode) and the sampling of the run it came from."""

    net: nn.Module
    info: GeneratorInfo
    folder: Path  # the export folder it was loaded from
    device: torch.device = torch.device("cpu")
    _run: LoadedRun = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # sampling reuses LoadedRun's code (latents, label cycling, batching), so an export draws exactly the
        # images its run draws; the "run" here is only the export folder and the generator
        cfg = from_dict(self.info.config)
        self._run = LoadedRun(run=RunDir(self.folder), cfg=cfg, spec=MODELS.get(cfg.model.name),
                              nets=nn.ModuleDict({"G": self.net}), checkpoint=self.folder / WEIGHTS_FILE,
                              step=self.info.step,
                              epoch=self.info.epoch, extra=self.info.extra(), device=self.device)

    @property
    def latent_dim(self) -> int:
        return self.info.latent_dim

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    @property
    def class_names(self) -> list[str]:
        return list(self.info.class_names)

    def latents(self, n: int, seed: int = 0) -> torch.Tensor:
        return self._run.latents(n, seed)

    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 256, *,
                 steps: int | None = None, solver: str | None = None, guidance: float | None = None) -> torch.Tensor:
        """Latents (and labels / bag-of-words conditions) -> float images in [-1, 1] on the CPU. ``steps`` /
        ``solver`` / ``guidance``: flow and diffusion models (None: the run's defaults)."""
        return self._run.with_sampling(steps, solver, guidance).generate(z, y, batch_size)

    def sample(self, n: int, seed: int = 0, labels: Sequence[int] | None = None, prompt: str | None = None,
               batch_size: int = 256, *, steps: int | None = None, solver: str | None = None,
               guidance: float | None = None) -> torch.Tensor:
        """``n`` images from seeded latents: the same images ``genlab.load_run(RUN).sample(n, seed)`` draws.
        ``labels``: classes to cycle through (class-conditional models); ``prompt``: a caption (text models);
        ``steps`` / ``solver`` / ``guidance``: how a flow or diffusion model integrates its ODE (None: the run's)."""
        run = self._run.with_sampling(steps, solver, guidance)
        if prompt is not None:
            return sample_prompt(run, prompt, n, seed, log=print)  # names words it does not know
        return run.sample(n, seed=seed, labels=list(labels) if labels else None, batch_size=batch_size)


def load_generator(export_dir: str | Path, device: str = "cpu") -> ExportedGenerator:
    """An export folder (``genlab export``) -> the generator rebuilt from its JSON and safetensors weights."""
    folder = Path(export_dir)
    meta, weights = folder / META_FILE, folder / WEIGHTS_FILE
    for p in (meta, weights):
        if not p.is_file():
            raise RunError(f"{str(folder)!r} is not a generator export (no {p.name}); write one with "
                           "`genlab export RUN -o DIR`")
    info = GeneratorInfo.read(meta)
    cfg = from_dict(info.config)
    net = build_networks(cfg, info.num_classes, info.extra())["G"]  # text models: vocabulary before the weights
    try:
        state = load_safetensors(weights.read_bytes())
        net.load_state_dict(state)
    except Exception as e:  # a truncated file, or weights that do not fit the described model
        raise RunError(f"{str(weights)!r} does not hold the weights of a {info.model} generator "
                       f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    dev = torch.device(device)
    net.to(dev).eval()
    return ExportedGenerator(net=net, info=info, folder=folder, device=dev)

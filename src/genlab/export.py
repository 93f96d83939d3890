"""Weights others can use: a run's generator exported as safetensors plus a JSON description, and loaded back
without the run folder (no optimizer state, no pickles, no training code)::

    DIR/generator.safetensors   the generator's state dict (the EMA weights when the run kept an EMA)
    DIR/generator.json          model name and options, data shape, classes, text vocabulary, checkpoint step,
                                genlab version, and the run's resolved config (what the model builder reads);
                                flow and diffusion models: their default sampler (solver, steps, NFE, guidance)

A flow or diffusion export samples with the same ODE as its run (``genlab.recipe.image_sampler`` from the saved
config); ``sample(..., steps=, solver=, guidance=)`` changes it as ``genlab sample --steps`` does.

``format="hub"`` writes the Hugging Face Hub's layout instead: ``model.safetensors``, ``config.json`` (the same
two files under the names the Hub expects) plus a model card (``README.md``, ``samples.png``, ``recipe.yaml``:
``genlab.model_card``). ``load_generator`` reads either layout.

``export_generator`` writes the files (and the marker ``.genlab-export``, which lists them) into a fresh
folder next to DIR and renames it into place, so DIR is either the old export or the complete new one, never
half of each. ``--overwrite`` replaces only a folder genlab can prove is an export of its own
(``rundir.EXPORT_LAYOUT``), never the current folder, its parents, $HOME, ``/`` or a mount point.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from genlab import __version__
from genlab.config import to_dict
from genlab.deletion import (
    check_replaceable,
    refuse_protected,
    remove_created,
    remove_empty_created,
    remove_folder,
)
from genlab.device import resolve_device
from genlab.errors import RunError
from genlab.io import atomic_write_bytes, atomic_write_text, make_temp_dir
from genlab.memory import check_fits
from genlab.model_card import write_model_card
from genlab.models import MODELS
from genlab.recipe import build_networks, from_dict
from genlab.registry import Registry
from genlab.rundir import EXPORT_LAYOUT, EXPORT_MARKER, EXPORT_META, EXPORT_WEIGHTS, RunDir
from genlab.sampling import LoadedRun, load_run, sample_prompt

WEIGHTS_FILE = EXPORT_WEIGHTS
META_FILE = EXPORT_META
#: the ``format`` entry of generator.json; FORMAT_VERSION grows when the layout changes incompatibly
FORMAT = "genlab-generator"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ExportFormat:
    """A layout of an export folder (``genlab export --format``)."""

    weights: str  # the safetensors file's name
    meta: str  # the GeneratorInfo JSON's name
    description: str
    #: writes what else the layout holds: (run, staged folder, step, ema, repo id or None)
    extras: Callable[[LoadedRun, Path, int, bool, str | None], None] | None = None


EXPORT_FORMATS: Registry[ExportFormat] = Registry("export format")
EXPORT_FORMATS.add("genlab", ExportFormat(WEIGHTS_FILE, META_FILE, "generator.safetensors + generator.json"))
EXPORT_FORMATS.add("hub", ExportFormat("model.safetensors", "config.json", "the Hugging Face Hub's layout: "
                                       "model.safetensors, config.json, a README.md model card, samples.png",
                                       extras=write_model_card))


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
    weights_sha256: str = ""  # of generator.safetensors, checked on load (exports before it have none)

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


def check_target(out: Path, overwrite: bool) -> None:
    """RunError of one line unless an export may be written to ``out``: a new or empty folder, or with
    ``overwrite`` a folder genlab can prove is an export of its own (never a protected folder)."""
    if out.exists() and not out.is_dir():
        raise RunError(f"{str(out)!r} is a file; export into a folder")
    refuse_protected(out, "export into")  # even an empty one: publishing renames over it
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise RunError(f"{str(out)!r} is not empty; pick another folder or pass --overwrite to replace it")
        check_replaceable(out, EXPORT_LAYOUT)


def _publish(staged: Path, out: Path) -> None:
    """Rename the finished folder ``staged`` to ``out``: a rename over an empty folder is atomic; a non-empty
    one (--overwrite) is proven to be an export again, moved aside, and removed once the new one is in place."""
    if out.is_dir() and any(out.iterdir()):
        check_replaceable(out, EXPORT_LAYOUT)
        old = make_temp_dir(out.parent, prefix=f".{out.name}.old-")
        os.replace(out, old / out.name)
        try:
            os.replace(staged, out)
        except BaseException:
            os.replace(old / out.name, out)  # the old export stays in place
            remove_empty_created([old])
            raise
        remove_folder(old / out.name, EXPORT_LAYOUT)
        remove_empty_created([old])
    else:
        os.replace(staged, out)


def export_generator(run_dir: str | Path | RunDir, out_dir: str | Path, checkpoint: str = "last",
                     overwrite: bool = False, format: str = "genlab", repo_id: str | None = None) -> Path:
    """Write the generator of ``run_dir``'s checkpoint (last | best | a path) to ``out_dir`` -> ``out_dir``.
    ``format``: a layout of :data:`EXPORT_FORMATS` (genlab | hub); ``repo_id``: the Hub repo the model card's
    loading example names (hub)."""
    out = Path(out_dir)
    layout = EXPORT_FORMATS.get(format)
    check_target(out, overwrite)  # before loading anything: a refusal costs nothing
    run = load_run(RunDir.of(run_dir).path, checkpoint, "cpu")
    info = GeneratorInfo.of_run(run)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = make_temp_dir(out.parent, prefix=f".{out.name}.tmp-")  # the usual permissions, umask untouched
    try:
        metadata = {"format": FORMAT, "model": info.model, "step": str(info.step), "genlab_version": __version__}
        weights = save_safetensors(_state_tensors(run.generator), metadata)
        info.weights_sha256 = hashlib.sha256(weights).hexdigest()
        atomic_write_bytes(staged / layout.weights, weights)
        atomic_write_text(staged / layout.meta, info.to_json())
        if layout.extras is not None:
            layout.extras(run, staged, info.step, info.ema, repo_id)
        extras = sorted(p.name for p in staged.iterdir() if p.name not in (layout.weights, layout.meta))
        atomic_write_text(staged / EXPORT_MARKER, json.dumps({"genlab_version": __version__, "format": format,
                                                              "files": [layout.weights, layout.meta, *extras]}) + "\n")
        _publish(staged, out)
    finally:
        if staged.exists():
            remove_created(staged, None)  # the temporary folder this call made
    return out


@dataclass
class ExportedGenerator:
    """A generator loaded from an export: ``net`` (eval mode) and the sampling of the run it came from."""

    net: nn.Module
    info: GeneratorInfo
    folder: Path  # the export folder it was loaded from
    device: torch.device = torch.device("cpu")
    weights: Path = Path(WEIGHTS_FILE)  # its weights file (generator.safetensors or the Hub's model.safetensors)
    _run: LoadedRun = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # sampling reuses LoadedRun's code (latents, label cycling, batching), so an export draws exactly the
        # images its run draws; the "run" here is only the export folder and the generator
        cfg = from_dict(self.info.config)
        self._run = LoadedRun(run=RunDir(self.folder), cfg=cfg, spec=MODELS.get(cfg.model.name),
                              nets=nn.ModuleDict({"G": self.net}), checkpoint=self.weights,
                              step=self.info.step,
                              epoch=self.info.epoch, extra=self.info.extra(), device=self.device)

    @property
    def loaded(self) -> LoadedRun:
        """The export as a loaded run (its config, generator and sampling): what evaluation takes."""
        return self._run

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


def _stored_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from a safetensors file's header (nothing is loaded)."""
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def load_generator(export_dir: str | Path, device: str = "auto") -> ExportedGenerator:
    """An export folder (``genlab export``, either layout) -> the generator rebuilt from its JSON and safetensors
    weights, on ``device`` (auto: CUDA, then MPS, then the CPU). A Hub repo id: ``genlab.hub.load_generator``.

    Checked before anything is allocated: the network the JSON describes is built on the ``meta`` device and its
    shapes compared with the weights file's header, and its size with the memory there is; the weights must
    match the checksum the export recorded and be finite."""
    folder = Path(export_dir)
    found = [f for _, f in EXPORT_FORMATS.items() if (folder / f.meta).is_file() and (folder / f.weights).is_file()]
    if not found:
        pairs = " nor ".join(f"{f.meta} + {f.weights}" for _, f in EXPORT_FORMATS.items())
        raise RunError(f"{str(folder)!r} is not a generator export (no {pairs}); write one with "
                       "`genlab export RUN -o DIR`")
    meta, weights = folder / found[0].meta, folder / found[0].weights
    info = GeneratorInfo.read(meta)
    cfg = from_dict(info.config)
    again = "export the run again with `genlab export RUN -o DIR`"
    try:
        stored = _stored_shapes(weights)
    except Exception as e:  # not a safetensors file, a damaged header
        raise RunError(f"{str(weights)!r} is not a readable safetensors file ({type(e).__name__}); {again}") from None
    with torch.device("meta"):
        wanted = {k: tuple(v.shape) for k, v in build_networks(cfg, info.num_classes, info.extra())["G"]
                  .state_dict().items()}
    if stored != wanted:
        diff = sorted(set(stored.items()) ^ set(wanted.items()))[:1]
        raise RunError(f"{str(meta)!r} describes a {info.model} generator whose weights do not fit "
                       f"{str(weights)!r} (e.g. {diff[0][0]}); {again}")
    dev = resolve_device(device)  # auto: CUDA, then MPS, then the CPU
    check_fits(4 * sum(math.prod(s) for s in wanted.values()), f"the {info.model} generator of {folder}",
               "load it on a machine with more memory", str(dev))
    data = weights.read_bytes()
    if info.weights_sha256 and hashlib.sha256(data).hexdigest() != info.weights_sha256:
        raise RunError(f"{str(weights)!r} does not match the checksum its export recorded (a damaged file); "
                       f"{again}")
    net = build_networks(cfg, info.num_classes, info.extra())["G"]  # text models: vocabulary before the weights
    try:
        state = load_safetensors(data)
        net.load_state_dict(state)
    except Exception as e:  # a truncated file, or weights that do not fit the described model
        raise RunError(f"{str(weights)!r} does not hold the weights of a {info.model} generator "
                       f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise RunError(f"{str(weights)!r} holds non-finite weights ({bad[0]}); {again}")
    net.to(dev).eval()
    return ExportedGenerator(net=net, info=info, folder=folder, device=dev, weights=weights)

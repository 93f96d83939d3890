"""Typed configs (OmegaConf structured dataclasses): recipe YAML + dotted CLI overrides -> validated Config.

Every option is documented where it is declared. Errors are one line naming the key, the value and what is
allowed, and happen before any work. This module knows no registry: checks that need the models, losses or
objectives (model exists, resolution supported, the ``objective:`` section fits the model's objective) are
``genlab.recipe``'s: its ``load_config`` and ``from_dict`` are these plus those checks, and every caller outside
this module uses them.

Until 0.1.0 the objectives' options lived in ``train:`` (train.n_critic, ...); those keys are still read, moved
to ``objective.<key>`` with one deprecation warning per load.
"""
from __future__ import annotations

import copy
import dataclasses
import io
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf import errors as oc_errors

from genlab.errors import ConfigError
from genlab.recipe_files import locate as locate_recipe


@dataclass
class DataConfig:
    name: str = "fashion-mnist"  # a registered dataset (`genlab datasets list`)
    root: str | None = None  # explicit folder with the raw files (image-folder: the images)
    limit: int | None = None  # use only the first N training images
    resolution: int = 32  # square side in pixels the images are resized to (once, antialiased)
    channels: int = 1  # 1 = grayscale, 3 = RGB; images are converted to this
    strict: bool = False  # image-folder: a corrupt file is an error instead of a counted warning
    download: bool = True  # allow downloading the official files when no local copy exists
    #: refuse a raw file whose md5 is not the named dataset's published one (e.g. MNIST's files, which have the
    #: same names, in a folder read as fashion-mnist); false: use such files anyway (your own files in the format)
    verify: bool = True
    captions: str | None = None  # image-folder: captions file for text conditioning


@dataclass
class ModelConfig:
    name: str = "dcgan"  # a registered model (`genlab models list`)
    latent_dim: int = 100  # size of z (flow and diffusion models: set to channels x resolution^2, the noise image)
    hidden_dim: int = 64  # MLP: units of the first hidden layer; conv nets: base channel width
    depth: int = 3  # MLP: hidden layers per network
    dropout_g: float = 0.0  # dropout probability in G (the 128x128 report needed it)
    dropout_d: float = 0.0  # dropout probability in D
    spectral_norm: bool = False  # spectral normalisation on D's weights
    num_classes: int = 0  # conditional models: 0 = take it from the dataset
    embed_dim: int = 0  # conditional models: label/text embedding size (0 = model default)
    cond_d: str = "concat"  # conditional D: "concat" or "projection"
    #: U-Nets (flow and diffusion models): the width of each resolution level as a multiple of hidden_dim (the
    #: number of entries is the number of levels; each level after the first halves the side), and the feature-map
    #: sides that get self-attention (e.g. [7] at 28 px, [8] or [16] at 32 px; the middle block always has it)
    channel_mult: list[int] = field(default_factory=lambda: [1, 2, 2])
    attention: list[int] = field(default_factory=list)


@dataclass
class OptimConfig:
    optimizer: str = "adam"  # adam | rmsprop (RMSprop ignores betas; the WGAN paper's choice with weight clipping)
    lr: float = 2e-4  # learning rate
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])  # Adam (beta1, beta2)
    eps: float = 1e-8  # Adam epsilon
    weight_decay: float = 0.0  # L2 weight decay


@dataclass
class TrainConfig:
    epochs: int = 10  # passes over the (limited) training set
    batch_size: int = 64  # images per step
    seed: int = 0  # same config + seed -> same numbers on CPU
    loss: str = "bce"  # a registered GAN loss (bce = non-saturating BCE)
    max_steps: int | None = None  # stop after this many steps (benchmarks, smoke tests)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    g_opt: OptimConfig = field(default_factory=OptimConfig)  # generator (and decoder) optimizer
    d_opt: OptimConfig = field(default_factory=OptimConfig)  # discriminator / critic optimizer
    ema: float = 0.0  # G weight EMA decay (0 = off; e.g. 0.999); EMA weights sample and evaluate
    ema_warmup: bool = True  # decay min(ema, (1+t)/(10+t)) at update t, so early samples forget the random init
    #: EMA by half-life instead (Karras et al.'s EDM; flow and diffusion models): > 0 turns the EMA on with a decay
    #: of 0.5 ** (batch / half-life) per step, the half-life being this many thousand images (EDM: 500), capped
    #: at ema_rampup x the images seen so far (so short runs average over their recent past); train.ema is ignored
    ema_halflife_kimg: float = 0.0
    ema_rampup: float = 0.05  # the half-life's cap as a fraction of the images seen (EDM: 0.05; 0 = no cap)
    diffaugment: str = ""  # DiffAugment policy, e.g. "translation,cutout,color" ("" = off)
    #: learning rate over the run's budget (epochs x steps per epoch, or max_steps when smaller; with minutes,
    #: whichever of steps and minutes runs out first): constant, cosine (to 0 at the end) or linear (to 0 at the
    #: end), after warmup_steps of linear warm-up from ~0
    lr_schedule: str = "constant"
    warmup_steps: int = 0  # steps of linear learning-rate warm-up (0 = none)
    #: wall-clock budget in minutes (0 = none): training stops at the first step boundary past it, saves a
    #: checkpoint, and a resume trains the remaining minutes (the time trained so far is kept in checkpoints)
    minutes: float = 0.0
    # speed settings (genlab.training.perf): "auto" picks what is fastest and correct on the device; the
    # resolved values are written to runtime.json and to every checkpoint (extra["runtime"])
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (autocast; fp16 adds GradScalers); auto: bf16 if the GPU has it
    compile: str = "auto"  # auto | true | false: torch.compile the networks; auto: on with CUDA, off on CPU
    channels_last: str = "auto"  # auto | true | false: NHWC weights and batches; auto: on for convolutional models
    threads: int = 0  # CPU threads for torch (0 = auto: the cores this process may use, split across local ranks)


@dataclass
class LogConfig:
    sample_every: int = 1  # epochs between fixed-noise grids (samples/epoch_XXXX.png); 0 = only at the end
    checkpoint_every: int = 1  # epochs between checkpoints (one is always written at the end)
    keep_checkpoints: int = 3  # keep the last K epoch checkpoints
    every_steps: int = 10  # steps between metrics.jsonl / TensorBoard records (averaged over the window)
    num_samples: int = 64  # size of the fixed noise batch
    tensorboard: bool = True  # false: no TensorBoard event files (tb/), even when log.trackers lists tensorboard
    progress: bool = True  # Rich progress bar
    #: experiment trackers that receive the run (genlab.trackers): tensorboard (tb/), mlflow (pip install
    #: 'genlab[mlflow]'), wandb (pip install 'genlab[wandb]'); each gets the config as parameters, every record of
    #: metrics.jsonl, the sample grids, the final export and eval.json, and how the run ended
    trackers: list[str] = field(default_factory=lambda: ["tensorboard"])
    #: MLflow tracking URI ("" = $MLFLOW_TRACKING_URI, else sqlite:///<folder of the run>/mlflow/mlflow.db)
    mlflow_uri: str = ""
    experiment: str = "genlab"  # MLflow experiment / W&B project the run is logged under


@dataclass
class EvalConfig:
    every: int = 0  # epochs between evaluations during training (0 = off)
    #: evaluate once when training ends (its last step, whichever of train.epochs, train.max_steps and
    #: train.minutes ends it; recorded in metrics.jsonl and eval.json like the eval.every ones); a resume of a
    #: finished run trains nothing and evaluates nothing again
    at_end: bool = False
    metrics: list[str] = field(default_factory=lambda: ["fid"])  # fid, kid, is, pr, coverage, fid_inf, ci95, vendi, ...
    features: str = "auto"  # auto (inception if its weights are present, else classifier) | inception | classifier
    num_samples: int = 10000  # generated images per evaluation
    split: str = "test"  # reference split


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # the options of the model's objective (genlab.objectives.options: n_critic, grad_penalty, beta, ...); the
    # checks fill in every default, so a saved config names them all
    objective: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # a short name for the recipe (used for default run folder names)
    description: str = ""  # one line: what this recipe reproduces


#: objective options that 0.1.0 kept in ``train:``, with their 0.1.0 defaults (also every objective's default)
LEGACY_OBJECTIVE_KEYS: dict[str, Any] = {"real_label": 1.0, "merged_batch": False, "n_critic": 1,
                                         "grad_penalty": 10.0, "clip_value": 0.01, "beta": 1.0,
                                         "recon_loss": "bce", "recon_weight": 1.0}


class ConfigDeprecationWarning(FutureWarning):
    """A config key that still works but has moved (shown to users, unlike DeprecationWarning)."""


def _migrate(d: Any, moved: list[str]) -> Any:
    """A 0.1.0 config dict -> today's layout: ``train.<objective option>`` moves to ``objective.<option>``.

    A value equal to its 0.1.0 default is dropped: it is the default of every objective that has the option, and
    an objective without it (a VAE's n_critic) ignored it then.
    """
    train = d.get("train") if isinstance(d, dict) else None
    if not isinstance(train, dict):
        return d
    for key, default in LEGACY_OBJECTIVE_KEYS.items():
        if key in train:
            value = train.pop(key)
            moved.append(f"train.{key}")
            if value != default:
                objective = d.setdefault("objective", {})
                if isinstance(objective, dict):
                    objective.setdefault(key, value)
    return d


def _migrate_override(ov: str, moved: list[str]) -> str:
    key, eq, value = ov.partition("=")
    section, _, name = key.strip().partition(".")
    if section == "train" and name in LEGACY_OBJECTIVE_KEYS:
        moved.append(f"train.{name}")
        return f"objective.{name}{eq}{value}"
    return ov


def _warn_moved(moved: list[str]) -> None:
    if moved:
        keys = sorted(set(moved))
        warnings.warn(f"config keys {', '.join(keys)} are deprecated: they moved to the objective section "
                      f"(train.<option> -> objective.<option>)", ConfigDeprecationWarning, stacklevel=3)


def _one_line(e: Exception) -> str:
    msg = getattr(e, "msg", None) or str(e)
    return msg.strip().splitlines()[0]


_INTERPOLATION_HINT = "an interpolation ${...} must name an existing key, e.g. ${train.epochs}"
#: resolvers a recipe may call: they only read other keys of the same config
SAFE_RESOLVERS = ("oc.select", "oc.dict.keys", "oc.dict.values")
_RESOLVER = re.compile(r"(?<!\\)\$\{\s*([A-Za-z_][\w.]*)\s*:")


def refuse_resolvers(node: Any, where: str, prefix: str = "") -> None:
    """ConfigError when a string of ``node`` (a DictConfig / ListConfig / plain container) calls a resolver other
    than :data:`SAFE_RESOLVERS`: recipes, sweep files and saved configs are shared files, and what a resolver
    returns (``${oc.env:TOKEN}``: an environment secret; ``${oc.decode:...}``: decoded data) would be saved into
    config.yaml, every checkpoint, exports and reports. An interpolation of another key (``${model.latent_dim}``)
    stays fine."""
    if isinstance(node, (DictConfig, dict)):
        items = ((k, node._get_node(k)._value() if isinstance(node, DictConfig) else node[k]) for k in node)
    elif isinstance(node, (ListConfig, list, tuple)):
        items = ((i, node._get_node(i)._value() if isinstance(node, ListConfig) else v) for i, v in enumerate(node))
    else:
        return
    for k, v in items:
        key = f"{prefix}{k}"
        if isinstance(v, (DictConfig, ListConfig, dict, list, tuple)):
            refuse_resolvers(v, where, key + ".")
        elif isinstance(v, str):
            for name in _RESOLVER.findall(v):
                if name not in SAFE_RESOLVERS:
                    raise ConfigError(
                        f"{where}: key {key!r} calls the resolver {name!r}; recipes and saved configs may not read "
                        "the environment or decode data (what it returns would be saved in config.yaml, checkpoints "
                        "and exports): write the value itself, or refer to another key, e.g. ${model.latent_dim}")


def _schema() -> DictConfig:
    schema = OmegaConf.structured(Config)
    OmegaConf.set_struct(schema.objective, False)  # any key here: genlab.recipe checks it against the objective
    return schema


def parse_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                 base: dict | None = None) -> Config:
    """Recipe YAML (or a saved config dict) + dotted overrides (``model.latent_dim=64``) -> a Config whose keys,
    types and ranges are valid. Whether model, objective and data fit each other is genlab.recipe's check: use
    ``genlab.recipe.load_config``, the one public loader.
    ``path``: a YAML file, or the name of a recipe that ships with genlab (``genlab.recipe_files.locate``)."""
    cfg = _schema()
    OmegaConf.set_struct(cfg, True)
    moved: list[str] = []
    overrides = [_migrate_override(ov, moved) for ov in overrides]
    try:
        if base is not None:
            refuse_resolvers(base, "saved config")
            cfg = OmegaConf.merge(cfg, OmegaConf.create(_migrate(copy.deepcopy(base), moved)))
        if path is not None:
            recipe = _read_recipe(locate_recipe(path))
            refuse_resolvers(recipe, f"recipe {str(path)!r}")
            cfg = OmegaConf.merge(cfg, OmegaConf.create(_migrate(recipe, moved)))
        refuse_resolvers({ov.partition("=")[0].strip(): ov.partition("=")[2] for ov in overrides}, "override")
        for ov in overrides:
            if "=" not in ov:
                raise ConfigError(f"override {ov!r} must look like key=value, e.g. model.latent_dim=64")
            key, _, _ = ov.partition("=")
            if key.strip().startswith("objective."):  # checked against the model's objective (genlab.recipe)
                continue
            if OmegaConf.select(cfg, key.strip(), default=MISSING) is MISSING and not _is_optional_key(key.strip()):
                raise ConfigError(f"unknown config key {key.strip()!r}; known keys: {', '.join(known_keys())}")
        if overrides:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    except ConfigError:
        raise
    except oc_errors.ConfigKeyError as e:
        key = getattr(e, "full_key", None) or _one_line(e)
        raise ConfigError(f"unknown config key {key!r}; known keys: {', '.join(known_keys())}") from None
    except oc_errors.ValidationError as e:
        key = getattr(e, "full_key", "?")
        raise ConfigError(f"config key {key!r}: {_one_line(e)}") from None
    except oc_errors.InterpolationResolutionError as e:
        raise ConfigError(f"config: {_one_line(e)}; {_INTERPOLATION_HINT}") from None
    except oc_errors.OmegaConfBaseException as e:
        raise ConfigError(f"config: {_one_line(e)}") from None
    _warn_moved(moved)
    try:
        obj: Config = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    except oc_errors.InterpolationResolutionError as e:  # ${train.nope}: resolved only now
        raise ConfigError(f"config: {_one_line(e)}; {_INTERPOLATION_HINT}") from None
    except oc_errors.OmegaConfBaseException as e:
        key = getattr(e, "full_key", None)
        raise ConfigError(f"config key {key!r}: {_one_line(e)}" if key else f"config: {_one_line(e)}") from None
    validate(obj)
    return obj


def _read_recipe(p: Path) -> dict:
    """A recipe file -> its top-level mapping; ConfigError (naming the file and the fix) for a missing file, a
    folder, binary or non-UTF-8 data, a YAML syntax error or YAML that is not a mapping of sections."""
    if p.is_dir():
        raise ConfigError(f"recipe {str(p)!r} is a folder, not a YAML file; give a recipe file such as "
                          "configs/demo_fashion_mnist_dcgan.yaml")
    if not p.is_file():
        raise ConfigError(f"recipe {str(p)!r} does not exist; see configs/ for the recipes")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise ConfigError(f"recipe {str(p)!r} is not a text YAML file (binary data); give a recipe file such as "
                          "configs/demo_fashion_mnist_dcgan.yaml")
    try:
        node = OmegaConf.load(io.StringIO(text)) if text.strip() else {}
        loaded = OmegaConf.to_container(node) if isinstance(node, (DictConfig, ListConfig)) else node
    except Exception as e:  # yaml syntax
        raise ConfigError(f"recipe {str(p)!r} is not valid YAML: {_one_line(e)}; fix the file (see configs/ "
                          "for examples)") from None
    if not isinstance(loaded, dict):
        kind = "list" if isinstance(loaded, list) else type(loaded).__name__
        raise ConfigError(f"recipe {str(p)!r} holds a YAML {kind}, not a mapping of sections "
                          "(data:, model:, train:, ...); see configs/ for examples")
    return loaded


def _is_optional_key(key: str) -> bool:
    return key in known_keys()


def known_keys() -> list[str]:
    def walk(node: Any, prefix: str) -> list[str]:
        out = []
        for k in node:
            v = node._get_node(k)
            full = f"{prefix}{k}"
            if isinstance(v, DictConfig):
                out += walk(v, full + ".")
            else:
                out.append(full)
        return out

    return walk(_schema(), "")


def to_dict(cfg: Config) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]


def to_yaml(cfg: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def parse_saved(d: dict) -> Config:
    """A config saved in a run folder or checkpoint -> Config (unknown keys still fail; ``genlab.recipe.from_dict``
    adds the model/objective/data check)."""
    moved: list[str] = []
    refuse_resolvers(d, "saved config")
    try:
        cfg = OmegaConf.merge(_schema(), OmegaConf.create(_migrate(copy.deepcopy(d), moved)))
    except oc_errors.OmegaConfBaseException as e:
        raise ConfigError(f"saved config does not match this genlab version: {_one_line(e)}") from None
    _warn_moved(moved)
    obj: Config = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    return obj


def diff(a: Config | dict, b: Config | dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configs."""
    da = a if isinstance(a, dict) else to_dict(a)
    db = b if isinstance(b, dict) else to_dict(b)
    out = []
    for k in sorted(set(da) | set(db)):
        va, vb = da.get(k), db.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}")
    return out


def require(cond: bool, key: str, value: Any, allowed: str) -> None:
    """A ConfigError naming ``key``, its ``value`` and what is ``allowed``, unless ``cond``."""
    if not cond:
        raise ConfigError(f"{key}={value!r} is not allowed: {allowed}")


def _non_finite(obj: Any, prefix: str = "") -> tuple[str, Any] | None:
    """The first (key, value) of ``obj`` (a config dataclass, a dict, a list) that is a NaN or an infinity."""
    if dataclasses.is_dataclass(obj):
        items = ((f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj))
    elif isinstance(obj, dict):
        items = iter(obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(obj))
    else:
        return None
    for k, v in items:
        key = f"{prefix}{k}"
        if isinstance(v, float) and not math.isfinite(v):
            return key, v
        found = _non_finite(v, key + ".") if not isinstance(v, (str, bytes)) else None
        if found is not None:
            return found
    return None


def check_finite(obj: Any, prefix: str = "") -> None:
    """ConfigError naming the first NaN or infinity in a config (dataclass, dict) -- inf learning rates, weight
    decays or penalties as well as nan."""
    bad = _non_finite(obj, prefix)
    if bad is not None:
        key, value = bad
        raise ConfigError(f"{key}={value} is not allowed: a finite number")


def validate(cfg: Config) -> None:
    """Value checks that need no data, model or objective (the registry checks are genlab.recipe's)."""
    check_finite(cfg)
    d, m, t, lg, ev = cfg.data, cfg.model, cfg.train, cfg.log, cfg.eval
    require(d.resolution >= 8, "data.resolution", d.resolution, "an image side of at least 8 pixels")
    require(d.channels in (1, 3), "data.channels", d.channels, "1 (grayscale) or 3 (RGB)")
    require(d.limit is None or d.limit > 0, "data.limit", d.limit, "a positive number of images, or null for all")
    require(m.latent_dim > 0, "model.latent_dim", m.latent_dim, "a positive integer")
    require(m.hidden_dim > 0, "model.hidden_dim", m.hidden_dim, "a positive integer")
    require(m.depth > 0, "model.depth", m.depth, "a positive integer")
    for k in ("dropout_g", "dropout_d"):
        v = getattr(m, k)
        require(0.0 <= v < 1.0, f"model.{k}", v, "a probability in [0, 1)")
    require(m.num_classes >= 0, "model.num_classes", m.num_classes, "0 (from the dataset) or a positive count")
    require(m.cond_d in ("concat", "projection"), "model.cond_d", m.cond_d, "concat or projection")
    require(len(m.channel_mult) > 0 and all(k > 0 for k in m.channel_mult), "model.channel_mult", m.channel_mult,
           "a list of positive width multipliers, one per level, e.g. [1, 2, 2]")
    require(t.epochs > 0, "train.epochs", t.epochs, "a positive integer")
    require(t.batch_size > 0, "train.batch_size", t.batch_size, "a positive integer")
    require(t.max_steps is None or t.max_steps > 0, "train.max_steps", t.max_steps, "a positive integer or null")
    require(0.0 <= t.ema < 1.0, "train.ema", t.ema, "a decay in [0, 1); 0 turns EMA off")
    require(t.ema_halflife_kimg >= 0, "train.ema_halflife_kimg", t.ema_halflife_kimg,
           "thousands of images >= 0 (0 = use train.ema; EDM: 500)")
    require(t.ema_rampup >= 0, "train.ema_rampup", t.ema_rampup, "a fraction >= 0 (EDM: 0.05; 0 = no cap)")
    require(t.lr_schedule in ("constant", "cosine", "linear"), "train.lr_schedule", t.lr_schedule,
           "constant, cosine or linear")
    require(t.warmup_steps >= 0, "train.warmup_steps", t.warmup_steps, "a number of steps >= 0 (0 = no warm-up)")
    require(t.minutes >= 0, "train.minutes", t.minutes, "minutes >= 0 (0 = no wall-clock budget)")
    t.precision, t.compile, t.channels_last = (str(t.precision).lower(), str(t.compile).lower(),
                                               str(t.channels_last).lower())
    require(t.precision in ("auto", "fp32", "bf16", "fp16"), "train.precision", t.precision, "auto, fp32, bf16 or fp16")
    require(t.compile in ("auto", "true", "false"), "train.compile", t.compile, "auto, true or false")
    require(t.channels_last in ("auto", "true", "false"), "train.channels_last", t.channels_last,
           "auto, true or false")
    require(t.threads >= 0, "train.threads", t.threads, "a number of CPU threads, or 0 for auto")
    for name in ("g_opt", "d_opt"):
        o: OptimConfig = getattr(t, name)
        require(o.optimizer in ("adam", "rmsprop"), f"train.{name}.optimizer", o.optimizer, "adam or rmsprop")
        require(o.lr > 0, f"train.{name}.lr", o.lr, "a positive learning rate")
        require(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), f"train.{name}.betas", o.betas,
               "two numbers in [0, 1)")
        require(o.eps > 0, f"train.{name}.eps", o.eps, "a positive epsilon")
        require(o.weight_decay >= 0, f"train.{name}.weight_decay", o.weight_decay, "a non-negative number")
    require(t.device == "auto" or t.device == "cpu" or t.device.startswith("cuda") or t.device == "mps",
           "train.device", t.device, "auto, cpu, cuda, cuda:N or mps")
    require(lg.sample_every >= 0, "log.sample_every", lg.sample_every, "epochs >= 0 (0 = only at the end)")
    require(lg.checkpoint_every > 0, "log.checkpoint_every", lg.checkpoint_every, "a positive number of epochs")
    require(lg.keep_checkpoints > 0, "log.keep_checkpoints", lg.keep_checkpoints, "a positive count")
    require(lg.every_steps > 0, "log.every_steps", lg.every_steps, "a positive number of steps")
    require(lg.num_samples > 0, "log.num_samples", lg.num_samples, "a positive count")
    require(bool(lg.experiment.strip()), "log.experiment", lg.experiment,
            "a name (an MLflow experiment, a W&B project)")
    require(ev.every >= 0, "eval.every", ev.every, "epochs >= 0 (0 = off)")
    require(ev.num_samples > 0, "eval.num_samples", ev.num_samples, "a positive count")


def short_keys(keys: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Dotted keys -> the shortest trailing part that tells each apart, for table headers and folder names:
    ``model.latent_dim`` -> ``latent_dim``; ``train.g_opt.lr`` and ``train.d_opt.lr`` -> ``g_opt.lr`` and
    ``d_opt.lr``; a numeric last part keeps its parent (``train.g_opt.betas.0`` -> at least ``betas.0``)."""
    parts = {k: k.split(".") for k in keys}

    def tail(k: str, n: int) -> str:
        return ".".join(parts[k][-n:])

    out = {}
    for k in keys:
        n = 2 if len(parts[k]) > 1 and parts[k][-1].isdigit() else 1
        while n < len(parts[k]) and any(tail(k, n) == tail(o, n) for o in keys if o != k):
            n += 1
        out[k] = tail(k, n)
    return out

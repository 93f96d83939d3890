"""Evaluation of runs: `genlab eval`, and the metrics computed every `eval.every` epochs during training.

Glue between the run folder (sampling.load_run / a live training run) and the pure metrics package; the metrics
never import training.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from genlab.diffusion import SOLVERS
from genlab.errors import ConfigError, GenlabError, RunError
from genlab.memory import check_fits
from genlab.metrics import DEFAULT_METRICS, DatasetRef, EvalOptions, evaluate, flatten_results
from genlab.metrics.evaluate import NEEDS_CLASSIFIER_HEAD, resolve_extractor
from genlab.metrics.features.base import RESIZE_MODES
from genlab.metrics.features.inception_fid import find_inception_weights
from genlab.metrics.memorization import COPIES
from genlab.metrics.protocols import BATCH_SIZE, Settings, conformance_line, resolve
from genlab.metrics.reference import native_ref
from genlab.metrics.suite import METRICS, RECON, RECONSTRUCTION_INPUTS, RFID, check_metrics, needed_inputs
from genlab.metrics.work_progress import ProgressFn, no_progress, progress_to
from genlab.recipe import from_dict
from genlab.resume import check_resume
from genlab.rundir import check_output_file
from genlab.sampling import LoadedRun, Truncation, as_truncation
from genlab.training import distributed
from genlab.training.callbacks import Callback


@dataclass(frozen=True)
class EvalRequest:
    """One evaluation of a generator, asked for once and checked once. `genlab eval`'s flags, the arguments of
    ``genlab.evaluate`` and ``Run.evaluate``, a recipe's ``eval.*`` (in-training evaluation) and the truncation and
    steps sweeps all build this object, and what runs below takes it as it is.

    None means the protocol's value (``options.protocol``; genlab's: ``auto`` features, 10,000 images, the test
    split; the paper's: Inception, 50,000, train; ``genlab.metrics.protocols``), and for ``metrics`` the run's
    defaults (:func:`run_default_metrics`). Build it with :meth:`of` from the arguments people type (a metric
    string, a psi, a protocol name, a statistics file)."""

    metrics: tuple[str, ...] | None = None
    #: an extractor name (``auto``: inception when its weights are on disk or can be downloaded, else classifier)
    #: or a ``FeatureExtractor`` object
    features: Any = None
    num_samples: int | None = None  # generated images
    split: str | None = None  # the reference split of the run's dataset
    seed: int = 0  # latents (rank r of a sharded evaluation: seed + RANK_SEED_STRIDE * r) and metric subsets
    batch_size: int = BATCH_SIZE
    weights: str | None = None  # the main extractor's weights file (Inception, DINOv2 or CLIP)
    verify: bool | None = None  # refuse reference files whose checksum is not the published one (None: data.verify)
    truncation: Truncation | None = None  # recorded in the protocol
    steps: int | None = None  # flow and diffusion models: ODE steps, solver, guidance (None: the run's own)
    solver: str | None = None
    guidance: float | None = None
    options: EvalOptions = field(default_factory=EvalOptions)  # every metric setting, the protocol, the resize
    out: Path | None = None  # also write the result there as JSON

    def __post_init__(self) -> None:
        if self.metrics is not None:
            object.__setattr__(self, "metrics", check_metrics(self.metrics))  # a string or names -> checked names
        if self.num_samples is not None:
            if self.num_samples <= 0:
                raise ConfigError(f"--num-samples {self.num_samples} (num_samples) is not allowed: the number of "
                                  "generated images (at least 1)")
            # the features (and float64 copies) of every image are kept: up to 2048 each
            check_fits(self.num_samples * 3 * 8 * 2048, f"evaluating {self.num_samples:,} generated images",
                       "use fewer (--num-samples; 10,000 is the usual count, 50,000 the paper protocol's)")
        if self.batch_size <= 0:
            raise ConfigError(f"--batch-size {self.batch_size} (batch_size) is not allowed: images per batch (at "
                              "least 1)")
        if self.steps is not None and self.steps <= 0:
            raise ConfigError(f"--steps {self.steps} (steps) is not allowed: ODE steps per image (at least 1)")
        if self.solver is not None:
            SOLVERS.get(self.solver)
        if self.guidance is not None and not self.guidance >= 0:
            raise ConfigError(f"--guidance {self.guidance} (guidance) is not allowed: a scale >= 0 (1 = no guidance)")
        resize, stats = self.options.resize, self.options.reference_stats
        if resize is not None and resize not in RESIZE_MODES:
            raise ConfigError(f"--resize {resize} (resize) is not allowed: {', '.join(RESIZE_MODES)} (legacy: "
                              "pytorch-fid's, clean: clean-fid's)")
        resolve(self.options.protocol, resize=resize)  # a resize the protocol does not allow
        if stats is not None and not Path(stats).is_file():
            raise ConfigError(f"--reference-stats {stats} (reference_stats): no such file")
        if self.out is not None:
            check_output_file(self.out, (".json",), "--out")

    @classmethod
    def of(cls, metrics: Sequence[str] | str | None = None, num_samples: int | None = None, *,
           truncation: Truncation | float | None = None, truncation_mode: str = "resample",
           protocol: str | None = None, reference_stats: str | Path | None = None,
           inception_weights: str | None = None, options: EvalOptions | None = None,
           out: str | Path | None = None, **fields: Any) -> EvalRequest:
        """The request from the arguments people type: ``truncation`` a psi (with ``truncation_mode`` resample |
        interp), ``protocol`` and ``reference_stats`` set into ``options`` (default ``EvalOptions()``),
        ``inception_weights`` the main extractor's weights file (any extractor's, despite the name: the API's
        name since 0.1); ``fields``: the other fields (features, split, seed, batch_size, verify, steps, solver,
        guidance)."""
        opts = options or EvalOptions()
        if protocol is not None:
            opts = replace(opts, protocol=protocol)
        if reference_stats is not None:
            opts = replace(opts, reference_stats=str(reference_stats))
        return cls(metrics=metrics, num_samples=num_samples,  # type: ignore[arg-type]  # checked into names
                   truncation=as_truncation(truncation, truncation_mode), options=opts,
                   weights=fields.pop("weights", inception_weights),
                   out=None if out is None else Path(out), **fields)

    @classmethod
    def of_recipe(cls, cfg: Any) -> EvalRequest:
        """A recipe's in-training evaluation (``eval.metrics``, ``features``, ``num_samples``, ``split``; the
        training seed)."""
        ev = cfg.eval
        return cls(metrics=ev.metrics, features=ev.features, num_samples=ev.num_samples, split=ev.split,
                   seed=cfg.train.seed)

    @property
    def settings(self) -> Settings:
        """Features, sample count, split and resize: what was asked, else the protocol's."""
        return resolve(self.options.protocol, features=self.features if isinstance(self.features, str) else None,
                       num_samples=self.num_samples, split=self.split, resize=self.options.resize)

    @property
    def sampling(self) -> dict[str, Any]:
        """steps / solver / guidance, for ``LoadedRun.with_sampling``."""
        return {"steps": self.steps, "solver": self.solver, "guidance": self.guidance}

    @property
    def extractor(self) -> Any:
        """The features asked for: a name (``auto`` not yet resolved) or an extractor object."""
        return self.settings.features if self.features is None or isinstance(self.features, str) else self.features

    def pinned(self, run: LoadedRun, **changes: Any) -> EvalRequest:
        """This request for the many evaluations of a sweep over ``run``: its features resolved to one extractor
        (built once; the reference statistics are cached), its sample count and split fixed, and ``changes``
        (e.g. the sweep's metrics) applied."""
        settings, features = self.settings, self.extractor
        if isinstance(features, str):
            features = choose_features(features, self.weights)
        ext = resolve_extractor(features, reference_of(run.cfg, settings.split, self.verify), self.weights,
                                str(run.device))
        return replace(self, features=ext, num_samples=settings.num_samples, split=settings.split, **changes)

    def metrics_for(self, run: LoadedRun) -> tuple[str, ...]:
        """The metrics this request measures on ``run``: its own, else the run's defaults
        (``run_default_metrics`` for its features, split and statistics file); conditional metrics of a run that
        draws no classes are refused with one line, before any work."""
        names = self.metrics if self.metrics is not None else run_default_metrics(
            run, self.extractor, self.settings.split, self.options.reference_stats is not None)
        check_conditional_metrics(run, names)
        return names


def auto_features(features: str, inception_weights: str | None = None) -> tuple[str, str | None]:
    """``auto`` -> (``inception``, None) when its weights are on disk or can be downloaded (a checked download,
    with progress), else (``classifier``, why: offline, the download failed...); any other name as it is."""
    if features != "auto":
        return features, None
    try:
        find_inception_weights(inception_weights, download=True)
        return "inception", None
    except GenlabError as e:
        return "classifier", str(e).split(". ")[0]


def choose_features(features: str, inception_weights: str | None = None) -> str:
    """``auto`` -> ``inception`` when its weights are on disk or can be downloaded, else ``classifier``."""
    return auto_features(features, inception_weights)[0]


#: what the result line says of FIDs not computed with Inception features
NOT_COMPARABLE = "not comparable with published numbers, which use Inception features"


#: the reference facts that make two evaluations comparable (not where the files are, nor cache hits)
REFERENCE_KEYS = ("dataset", "split", "resolution", "channels", "limit", "folder", "fingerprint", "stats_sha256")


def protocol_id(protocol: dict | None) -> dict | None:
    """What must be equal for two evaluations' numbers to be compared: the extractor and its hash, the numbers
    of generated and reference samples and the reference (dataset, split, size, limit; or a folder). None when
    the protocol was not recorded. Written into every evaluation record of metrics.jsonl (``protocol``)."""
    if not isinstance(protocol, dict) or not protocol:
        return None
    ref = protocol.get("reference")
    ext = protocol.get("extractor", protocol.get("features"))
    pid = {
        "extractor": ext.get("name") if isinstance(ext, dict) else ext,
        "extractor_hash": str(protocol.get("extractor_hash") or ""),
        "num_generated": protocol.get("num_generated", protocol.get("num_samples")),
        "num_reference": protocol.get("num_reference"),
        "reference": {k: ref[k] for k in REFERENCE_KEYS if ref.get(k) is not None} if isinstance(ref, dict) else ref,
    }
    if protocol.get("truncation"):  # only when set: untruncated records keep the ids they always had
        pid["truncation"] = protocol["truncation"]
    if protocol.get("variant"):  # another resize than the extractor's own (the paper protocol's)
        pid["variant"] = protocol["variant"]
    extractors = protocol.get("extractors")
    if isinstance(extractors, dict) and extractors:  # fd_dinov2, cmmd: their own features
        pid["extractors"] = {m: f"{e.get('name')} {str(e.get('hash') or '')[:12]}" for m, e in extractors.items()
                             if isinstance(e, dict)}
    if protocol.get("sampling"):  # flow and diffusion models: solver, steps, NFE and guidance (one-step GANs: none)
        pid["sampling"] = protocol["sampling"]
    return pid


def describe_sampling(sampling: dict | None) -> str:
    """``heun, 18 steps (35 NFE)`` (+ ``, guidance 2``); "" for one-step generators."""
    if not isinstance(sampling, dict) or not sampling:
        return ""
    text = f"{sampling.get('solver', '?')}, {sampling.get('steps', '?')} steps ({sampling.get('nfe', '?')} NFE)"
    guidance = sampling.get("guidance", 1.0)
    return text + (f", guidance {guidance:g}" if guidance not in (None, 1.0) else "")


def describe_protocol(pid: dict | None) -> str:
    """``classifier 3f2a1b9c0d12, 128 generated vs 64 reference, fashion-mnist test 28px/1ch``."""
    if pid is None:
        return "protocol not recorded"
    ext = str(pid.get("extractor") or "unknown extractor") + (f" {pid['extractor_hash'][:12]}"
                                                             if pid.get("extractor_hash") else "")
    parts = [ext, f"{pid.get('num_generated', '?')} generated vs {pid.get('num_reference', '?')} reference"]
    ref = pid.get("reference")
    if isinstance(ref, dict) and ref:
        where = ref.get("folder") or " ".join(str(ref[k]) for k in ("dataset", "split") if k in ref)
        size = f" {ref['resolution']}px/{ref.get('channels', '?')}ch" if "resolution" in ref else ""
        limit = f" (first {ref['limit']})" if ref.get("limit") else ""
        parts.append(f"{where}{size}{limit}")
    if pid.get("sampling"):
        parts.append(f"sampled with {describe_sampling(pid['sampling'])}")
    return ", ".join(parts)


def reference_of(cfg, split: str, verify: bool | None = None) -> DatasetRef:
    """The run's dataset ``split`` at the dataset's native size (not the run's: one yardstick per dataset, so
    runs at 32 and 64 px are compared against the same statistics); ``verify``: None = the run's ``data.verify``."""
    return native_ref(cfg.data.name, split, root=cfg.data.root, verify=cfg.data.verify if verify is None else verify)


def foreign_checkpoint(run: LoadedRun) -> str | None:
    """Why the loaded checkpoint is not one of ``run``'s own (None when it is): it is not under
    ``RUN/checkpoints`` (paths resolved), or its config differs from ``RUN/config.yaml`` in a key a resume may
    not change (``genlab.resume.RESUMABLE_KEYS``)."""
    ckpt = Path(run.checkpoint).resolve()
    if ckpt.parent != run.run.checkpoints.resolve():
        return f"it is not under {run.run.checkpoints}"
    changed = check_resume(from_dict(run.run.read_config()), run.cfg)
    if changed:
        return f"its config differs from {run.run.path / 'config.yaml'} in {', '.join(changed)}"
    return None


def check_eval_target(run: LoadedRun, out: str | Path | None) -> None:
    """Refuse to write another run's numbers into ``run``'s eval.json: ``out`` naming the run's own eval.json
    is allowed only for the run's own checkpoints (see :func:`foreign_checkpoint`); any other ``out`` is, unless
    it is not a .json path or names one of a run's own files (``rundir.check_output_file``)."""
    if out is None:
        return
    check_output_file(out, (".json",), "--out")
    if Path(out).resolve() != run.run.eval_json.resolve():
        return
    why = foreign_checkpoint(run)
    if why is None:
        return
    ckpt = Path(run.checkpoint)
    owner = ckpt.resolve().parent.parent if ckpt.resolve().parent.name == "checkpoints" else None
    how = f"`genlab eval {owner} --checkpoint {ckpt.name}`" if owner is not None else "its own run folder"
    raise RunError(f"checkpoint {ckpt} belongs to another run ({why}), so its numbers do not go into "
                   f"{run.run.eval_json}; evaluate it with {how}, or pass --out FILE to write them elsewhere")


def default_metrics(options: EvalOptions | None = None) -> tuple[str, ...]:
    """``DEFAULT_METRICS``, or those a statistics file allows (``options.reference_stats``: fid, fid_inf)."""
    stats_file = options is not None and options.reference_stats is not None
    return tuple(n for n in DEFAULT_METRICS if not stats_file or METRICS.get(n).moments_only)


def run_default_metrics(run: LoadedRun, features: Any = None, split: str | None = None,
                        reference_stats: bool = False) -> tuple[str, ...]:
    """`genlab eval`'s default metrics for a run: the pair metrics and ``copies``, plus ``rfid`` and ``recon``
    for models with an encoder (the VAE family); without the classifier-head metrics (IS, class coverage) for
    extractors that have no head (``dinov2-*``), without ``copies`` against the train split (its real rows are
    the training images themselves), and only those a statistics file allows (``reference_stats``: fid,
    fid_inf)."""
    if reference_stats:
        return tuple(n for n in DEFAULT_METRICS if METRICS.get(n).moments_only)
    names = (*DEFAULT_METRICS, *(() if split == "train" else (COPIES,)), *((RFID, RECON) if "E" in run.nets else ()))
    headless = isinstance(features, str) and features.startswith(("dinov2", "clip")) \
        or getattr(features, "num_classes", 1) == 0
    return tuple(n for n in names if not (headless and n in NEEDS_CLASSIFIER_HEAD))


def train_reference_of(cfg, verify: bool | None = None) -> DatasetRef:
    """The images the run trained on: its dataset's train split, limited to ``data.limit`` like training was."""
    ref = reference_of(cfg, "train", verify)
    return DatasetRef(ref.name, ref.split, ref.resolution, ref.channels, root=ref.root, limit=cfg.data.limit,
                      verify=ref.verify)


def reconstructor(run: LoadedRun, names: Sequence[str] = (RFID, RECON)):
    """``(images in [-1, 1], labels) -> reconstructions`` of a model with an encoder "E": the encoder's mean
    decoded by the decoder it was trained with (``G``, not its EMA copy). A model without one: a GenlabError."""
    if "E" not in run.nets:
        raise GenlabError(f"metric {', '.join(names)} needs a model with an encoder (vae, conv-vae, vae-gan, "
                          f"cvae-gan) but {run.cfg.model.name} has none; drop {', '.join(names)} from --metrics")
    E, G = run.nets["E"], run.nets["G"]
    takes_labels = run.conditioning.takes_labels

    def reconstruct(x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        modes = E.training, G.training
        E.eval()
        G.eval()
        try:
            with torch.no_grad():
                yy = y.to(run.device) if takes_labels and y is not None else None
                res = E(x.to(run.device), yy)
                mu = res[0] if isinstance(res, (tuple, list)) else res
                return G(mu, yy).float().cpu()
        finally:
            E.train(modes[0])
            G.train(modes[1])

    return reconstruct


#: rank r > 0 of a sharded evaluation draws its latents from seed + RANK_SEED_STRIDE * r (rank 0 from seed itself)
RANK_SEED_STRIDE = 1_000_003


def draws_labels(run: LoadedRun) -> bool:
    """Whether the run's sampler draws class labels: class-conditional runs, and text runs trained with
    classes (their labels stand for the class captions)."""
    return run.conditional and run.num_classes > 0


def check_conditional_metrics(run: LoadedRun, metrics: Sequence[str] | str) -> None:
    """One clear line when a metric needs the asked classes (ifid, class_acc, cas) and the run has none."""
    if "generated_labels" not in needed_inputs(metrics) or draws_labels(run):
        return
    asked = [m for m in (metrics.split(",") if isinstance(metrics, str) else metrics)
             if "generated_labels" in needed_inputs([m.strip()])]
    why = (f"model {run.cfg.model.name} is unconditional" if not run.conditional else
           f"model {run.cfg.model.name} was trained without classes (its captions are not class captions)")
    raise GenlabError(f"{', '.join(m.strip() for m in asked)} measure whether generated images show the class they "
                      f"were asked for, but {why}; drop them from --metrics or evaluate a class-conditional run "
                      "(e.g. cgan, acgan)")


def evaluate_loaded(run: LoadedRun, request: EvalRequest | None = None, **fields: Any) -> dict[str, Any]:
    """Metrics of a loaded run's generator against its dataset's split, as ``request`` asks (or
    ``EvalRequest.of(**fields)``), on the run's device.

    ``features`` ``auto`` is resolved here (and the protocol says why it fell back: ``features_note``). Under
    torchrun (an initialised process group of N > 1 ranks) every rank must call this: each draws its shard of the
    samples with its own latents and extracts their features, the features are gathered and every rank returns the
    same result (protocol ``world_size`` = N). Flow and diffusion runs draw with ``run.image_sampler`` (the request's
    steps, solver and guidance), recorded as the protocol's ``sampling`` (solver, steps, NFE per image, guidance):
    numbers of different step counts never share a protocol. ``copies`` searches the run's training images
    (``data.limit`` applied); ``rfid`` / ``recon`` reconstruct the reference split (models with an encoder only).
    Conditional metrics (ifid, class_acc, cas) are refused for runs that draw no class labels. The result is
    returned, not written (``request.out`` is the caller's: ``Run.evaluate``).
    """
    req = request if request is not None else EvalRequest.of(**fields)
    run = run.with_sampling(req.steps, req.solver, req.guidance)
    settings = req.settings
    options = replace(req.options, resize=settings.resize)
    features = req.extractor
    names = req.metrics_for(run)
    needs = needed_inputs(names)
    recon = reconstructor(run, [n for n in names if n in (RFID, RECON)]) \
        if needs & set(RECONSTRUCTION_INPUTS) else None  # a GAN asked for rfid stops here, before sampling
    trunc = req.truncation
    name, why = auto_features(features, req.weights) if isinstance(features, str) else (features, None)
    ranks = distributed.collective()
    sampler = run.sampler(seed=req.seed + RANK_SEED_STRIDE * ranks.rank, batch_size=req.batch_size,
                          truncation=trunc)
    result = evaluate(sampler, settings.num_samples, reference_of(run.cfg, settings.split, req.verify), name, names,
                      batch_size=req.batch_size, seed=req.seed, device=str(run.device), weights=req.weights,
                      collective=ranks, train=train_reference_of(run.cfg, req.verify), reconstruct_fn=recon,
                      options=options)
    result["protocol"].update({"checkpoint": str(run.checkpoint), "step": run.step, "epoch": run.epoch,
                               "model": run.cfg.model.name, "ema": run.ema is not None,
                               # "auto" is resolved above: "extractor" names the one used, this what was asked
                               "features_requested": features if isinstance(features, str) else features.name,
                               "truncation": None if trunc is None else trunc.describe()})
    if why is not None:
        result["protocol"]["features_note"] = f"auto fell back to genlab's classifier ({why}): FID {NOT_COMPARABLE}"
    sampling = run.image_sampler.describe()
    if sampling:  # flow and diffusion models only: GAN and VAE protocols are unchanged
        result["protocol"]["sampling"] = sampling
    if "generated_labels" in needs:
        result["protocol"]["class_names"] = run.class_names  # the per_class keys "0", "1", ... in order
    return result


def summary_line(result: dict[str, Any]) -> str:
    """One human line: FID (extractor) and class coverage."""
    parts = []
    protocol = result.get("protocol", {})
    ext = protocol.get("extractor", {})
    ext_name = ext.get("name", ext) if isinstance(ext, dict) else ext
    if "fid" in result:
        note = "" if ext_name != "classifier" else f"; {NOT_COMPARABLE}"
        if protocol.get("features_note"):
            note = "; " + protocol["features_note"]
        parts.append(f"FID {result['fid']:.2f} ({ext_name} features{note})")
    if "fd_dinov2" in result:
        parts.append(f"FD_DINOv2 {result['fd_dinov2']:.2f}")
    if "cmmd" in result:
        parts.append(f"CMMD {result['cmmd']:.4f}")
    if isinstance(result.get("vendi"), dict) and "score" in result["vendi"]:
        real = result["vendi"].get("real_score")
        parts.append(f"Vendi {result['vendi']['score']:.2f}" + (f" (real {real:.2f})" if real is not None else ""))
    if "kid" in result and isinstance(result["kid"], dict):
        parts.append(f"KID {result['kid'].get('mean', float('nan')):.4f}")
    if "is" in result and isinstance(result["is"], dict):
        parts.append(f"IS {result['is'].get('mean', float('nan')):.2f}")
    if "rfid" in result:
        parts.append(f"rFID {result['rfid']:.2f}")
    cop = result.get("copies")
    if isinstance(cop, dict) and "copy_rate" in cop:
        real = cop.get("real_rate")
        parts.append(f"copies {cop['copy_rate']:.1%}" + (f" (real test images {real:.1%})" if real is not None else ""))
    cov = result.get("coverage")
    if isinstance(cov, dict) and "classes_covered" in cov:
        kl = cov.get("kl_to_real")
        parts.append(f"classes covered {cov['classes_covered']}/{cov.get('num_classes', '?')}"
                     + (f", KL to real {kl:.3f}" if kl is not None else ""))
    for key, label, sub in (("ifid", "intra-class FID", "mean"), ("class_acc", "class accuracy", "accuracy"),
                            ("cas", "CAS", "accuracy")):
        if isinstance(result.get(key), dict) and sub in result[key]:
            parts.append(f"{label} {result[key][sub]:.3f}")
    line = conformance_line(protocol.get("published_protocol"))
    if line:
        parts.append(line)
    sampling = describe_sampling(result.get("protocol", {}).get("sampling"))
    if sampling and parts:
        parts.append(f"sampled with {sampling}")
    return ", ".join(parts) or "no metrics"


#: in-training evaluation: seconds between two progress lines of one long metric task
PROGRESS_LOG_SECONDS = 30.0


def progress_lines(log: Callable[[str], None], every_s: float = PROGRESS_LOG_SECONDS,
                   clock: Callable[[], float] = time.monotonic) -> ProgressFn:
    """Metric progress as log lines (the training loop has no room for a second bar). A task that ends within
    ``every_s`` seconds of its first report stays quiet; a longer one (the classifier extractor's first training)
    gets a line every ``every_s`` seconds (done/total and its note) and one when it is done, so it is never a
    silent minute."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}

    def show(task: str, done: int, total: int, note: str = "") -> None:
        now = clock()
        first.setdefault(task, now)
        end = bool(total) and done >= total
        if end and task not in last:
            return  # short: nothing was said, nothing to close
        if not end and now - last.get(task, first[task]) < every_s:
            return
        state = "done" if end else f"{done}/{total}" if total else str(done)
        log(f"eval: {task} {state}" + (f" ({note})" if note else ""))
        last[task] = now

    return show


class TrainingEval(Callback):
    """``eval.every``: metrics at those epochs (and the last), logged and recorded; ``best.pt`` kept by FID.
    ``eval.at_end``: metrics once, when training ends (the fit's final epoch end, whichever budget ended it).

    Every rank takes part (the samples are sharded); rank 0 writes eval.json and best.pt.
    """

    def on_epoch_end(self, trainer, epoch: int, final: bool) -> None:
        ev, state = trainer.cfg.eval, trainer.state
        if not (final and (ev.at_end or ev.every > 0) or ev.every > 0 and epoch % ev.every == 0):
            return
        G = state.generator
        was_training = G.training
        G.eval()
        try:
            live = trainer.live_run(epoch)
            # evaluation must not move the training RNG (the CPU's and the training GPU's); its long parts (the
            # classifier's first training) log lines
            dev = trainer.device
            gpus = [torch.cuda.current_device() if dev.index is None else dev.index] if dev.type == "cuda" else []
            with torch.random.fork_rng(devices=gpus), progress_to(progress_lines(trainer.log) if trainer.is_main
                                                                  else no_progress):
                result = evaluate_loaded(live, EvalRequest.of_recipe(trainer.cfg))
        finally:
            G.train(was_training)
        trainer.emit_record({"step": state.step, "epoch": epoch, "kind": "eval", **flatten_results(result),
                             "protocol": protocol_id(result["protocol"])})
        if trainer.is_main:
            trainer.run.write_eval(result)
        trainer.log(f"eval at epoch {epoch}: {summary_line(result)}")
        fid = result.get("fid")
        if fid is not None and (state.best is None or fid < state.best):
            state.best = float(fid)
            trainer.request_checkpoint(best=True)  # this epoch end's one checkpoint, copied to best.pt

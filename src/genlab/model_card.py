"""The Hugging Face Hub model card of an exported generator (``genlab export RUN --format hub``).

``README.md`` starts with the YAML metadata the Hub reads (``library_name: genlab``, tags, the dataset's Hub id,
``pipeline_tag``, and a ``model-index`` with the run's evaluation: each metric with its protocol as
``args``), then says what the model is, shows ``samples.png`` (64 images from seed 0: what
``genlab.load_generator(REPO).sample(64, seed=0)`` draws), how to load it, the numbers with their intervals and
protocol, and the recipe (the run's resolved config, also written as ``recipe.yaml``).

The metrics come from the run's ``eval.json`` when it measured the exported checkpoint (same step); numbers of
another checkpoint are named, not shown as this model's. Nothing here needs ``huggingface_hub``: the test parses
the card with the Hub's own parser (``ModelCard.load``).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from genlab.config import to_yaml
from genlab.grids import save_grid
from genlab.io import atomic_write_text
from genlab.sampling import LoadedRun

CARD_FILE = "README.md"
SAMPLES_FILE = "samples.png"
RECIPE_FILE = "recipe.yaml"
#: the grid on the card: this many images from this latent seed
CARD_SAMPLES, CARD_SEED = 64, 0
#: genlab dataset name -> its dataset repo on the Hub (the card's ``datasets:``); others are named in tags only
HUB_DATASETS = {"mnist": "ylecun/mnist", "fashion-mnist": "zalando-datasets/fashion_mnist",
                "cifar10": "uoft-cs/cifar10"}
#: the Hub's task of a model by its conditioning (none | class | text)
TASKS = {"none": "unconditional-image-generation", "class": "unconditional-image-generation",
         "text": "text-to-image"}
#: metric key in eval.json -> (Hub metric type, name shown); dict-valued metrics give one entry per sub-key
METRIC_NAMES = {"fid": ("fid", "FID"), "fid_inf": ("fid", "FID-infinity"), "kid/mean": ("kid", "KID"),
                "is/mean": ("inception_score", "Inception Score"), "pr/precision": ("precision", "precision"),
                "pr/recall": ("recall", "recall"), "pr/density": ("density", "density"),
                "pr/coverage": ("coverage", "coverage (PRDC)"), "rfid": ("fid", "reconstruction FID"),
                "coverage/classes_covered": ("classes_covered", "classes covered"),
                "coverage/kl_to_real": ("kl_divergence", "class KL to real")}
#: the reference facts of a protocol the card keeps (evaluation.REFERENCE_KEYS: not paths, nor cache hits)
REFERENCE_KEYS = ("dataset", "split", "resolution", "channels", "limit", "folder", "fingerprint")
#: bootstrap intervals (metric ``ci95``) kept next to the metric they bound
INTERVALS = {"fid": ("fid_low", "fid_high"), "kid/mean": ("kid_low", "kid_high")}


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def card_metrics(result: dict) -> list[tuple[str, float, tuple[float, float] | None]]:
    """(key, value, 95% interval or None) of every metric of an eval.json result genlab knows how to name."""
    out = []
    ci = result.get("ci95") if isinstance(result.get("ci95"), dict) else {}
    for key in METRIC_NAMES:
        top, _, sub = key.partition("/")
        v = result.get(top)
        value = _number(v.get(sub)) if sub and isinstance(v, dict) else (None if sub else _number(v))
        if value is None:
            continue
        lo, hi = (_number(ci.get(k)) for k in INTERVALS[key]) if key in INTERVALS else (None, None)
        out.append((key, value, (lo, hi) if lo is not None and hi is not None else None))
    return out


def measured_here(result: dict | None, step: int, ema: bool) -> bool:
    """Whether ``result`` (eval.json) measured the exported weights: same step and the same EMA choice."""
    p = result.get("protocol") if isinstance(result, dict) else None
    return isinstance(p, dict) and p.get("step") == step and bool(p.get("ema", ema)) == ema


def protocol_args(protocol: dict) -> dict:
    """The protocol facts a reader needs to compare a number (a JSON-able subset of eval.json's protocol)."""
    keys = ("extractor", "extractor_hash", "num_generated", "num_reference", "reference", "seed", "step", "ema",
            "truncation", "genlab_version")
    args = {k: protocol[k] for k in keys if protocol.get(k) is not None}
    if isinstance(args.get("reference"), dict):  # what makes two numbers comparable, not where the files were
        args["reference"] = {k: v for k, v in args["reference"].items() if k in REFERENCE_KEYS and v is not None}
    return args


def metadata(run: LoadedRun, result: dict | None, model_name: str) -> dict:
    """The card's YAML metadata (the Hub's model card fields)."""
    cfg, cond = run.cfg, run.conditioning.name
    tags = ["genlab", "image-generation", cfg.model.name, run.spec.objective, cfg.data.name]
    if cond != "none":
        tags.append(f"{cond}-conditional")
    meta: dict[str, Any] = {"library_name": "genlab", "tags": list(dict.fromkeys(tags))}
    if cfg.data.name in HUB_DATASETS:
        meta["datasets"] = [HUB_DATASETS[cfg.data.name]]
    if cond != "class":  # the Hub has no task for class-conditional generation
        meta["pipeline_tag"] = TASKS[cond]
    metrics = card_metrics(result) if result is not None else []
    if metrics and result is not None:
        protocol = result.get("protocol") or {}
        ref = protocol.get("reference") if isinstance(protocol.get("reference"), dict) else {}
        dataset = {"type": HUB_DATASETS.get(cfg.data.name, cfg.data.name), "name": cfg.data.name,
                   "split": ref.get("split", "test")}
        entries = []
        for key, value, interval in metrics:
            mtype, name = METRIC_NAMES[key]
            entry: dict[str, Any] = {"type": mtype, "value": round(value, 6), "name": name,
                                     "args": protocol_args(protocol)}
            if interval is not None:
                entry["args"] = {**entry["args"], "ci95": [round(interval[0], 6), round(interval[1], 6)]}
            entries.append(entry)
        meta["model-index"] = [{"name": model_name, "results": [
            {"task": {"type": TASKS[cond]}, "dataset": dataset, "metrics": entries}]}]
    return meta


def _metrics_section(run: LoadedRun, result: dict | None, step: int, ema: bool) -> list[str]:
    if result is None:
        return ["Not evaluated: `genlab eval RUN` before exporting puts FID (with its interval) and the other "
                "metrics here, each with its protocol."]
    if not measured_here(result, step, ema):
        p = result.get("protocol") or {}
        return [f"The run's eval.json measured another checkpoint (step {p.get('step', '?')}), not these weights "
                f"(step {step}); `genlab eval RUN --checkpoint ...` on the exported checkpoint puts its numbers here."]
    metrics = card_metrics(result)
    if not metrics:
        return ["The run's eval.json holds no metric this card knows how to show."]
    lines = ["| metric | value | 95% interval |", "|---|---|---|"]
    for key, value, interval in metrics:
        ci = f"{interval[0]:.4g} - {interval[1]:.4g}" if interval else ""
        lines.append(f"| {METRIC_NAMES[key][1]} | {value:.4g} | {ci} |")
    p = result.get("protocol") or {}
    ref = p.get("reference") if isinstance(p.get("reference"), dict) else {}
    ext = p.get("extractor")
    lines += ["", f"Protocol: {ext.get('name') if isinstance(ext, dict) else ext} features "
              f"({str(p.get('extractor_hash', ''))[:12]}), {p.get('num_generated', '?')} generated images vs "
              f"{p.get('num_reference', '?')} of {ref.get('dataset', run.cfg.data.name)} "
              f"{ref.get('split', '')}, seed {p.get('seed', '?')}, genlab {p.get('genlab_version', '?')} "
              "(`genlab eval`; numbers from different protocols are not comparable)."]
    return lines


def _usage(run: LoadedRun, source: str) -> list[str]:
    cond = run.conditioning.name
    extra = {"class": f'images = g.sample(16, seed=0, labels=[3])     # class 3 of {run.num_classes}',
             "text": 'images = g.sample(8, seed=0, prompt="a photo of a ship")'}.get(cond)
    return ["```bash", 'pip install "genlab[hub]"', "```", "", "```python", "import genlab", "",
            f'g = genlab.load_generator("{source}")   # a Hub repo id (downloaded once, then cached) or a folder',
            "images = g.sample(16, seed=0)                 # float (16, C, H, W) in [-1, 1]",
            *([extra] if extra else []), "```", "",
            "With `HF_HUB_OFFLINE=1` the repo is loaded from the Hub cache without any network."]


def write_model_card(run: LoadedRun, folder: Path, step: int, ema: bool, repo_id: str | None = None) -> None:
    """README.md (card + metadata), samples.png and recipe.yaml of ``run``'s exported generator into ``folder``."""
    save_grid(run.sample(CARD_SAMPLES, seed=CARD_SEED), folder / SAMPLES_FILE, nrow=8)
    atomic_write_text(folder / RECIPE_FILE, to_yaml(run.cfg))
    result = run.run.read_eval()
    here = result if measured_here(result, step, ema) else None
    name = run.cfg.name or run.run.path.name
    meta = metadata(run, here, name)
    cfg = run.cfg
    what = {"none": "An unconditional", "class": f"A class-conditional ({run.num_classes} classes)",
            "text": "A text-conditional"}[run.conditioning.name]
    lines = ["---", OmegaConf.to_yaml(OmegaConf.create(meta)).rstrip(), "---", "", f"# {name}", "",
             f"{what} **{cfg.model.name}** generator ({run.spec.objective}) trained with genlab on "
             f"**{cfg.data.name}** at {cfg.data.resolution}x{cfg.data.resolution}, {cfg.data.channels} channel(s): "
             f"step {step}, epoch {run.epoch}, {'EMA' if ema else 'raw'} weights, latent dimension "
             f"{cfg.model.latent_dim}.", "",
             f"![{CARD_SAMPLES} samples, seed {CARD_SEED}]({SAMPLES_FILE})", "",
             "## Use it", "", *_usage(run, repo_id or "USER/REPO"), "",
             "## Metrics", "", *_metrics_section(run, result, step, ema), "",
             "## Recipe", "",
             f"The run's resolved config, also in `{RECIPE_FILE}`: `genlab train {RECIPE_FILE}` trains it again "
             "(`data.root` may need changing).", "", "<details><summary>recipe.yaml</summary>", "", "```yaml",
             to_yaml(cfg).rstrip(), "```", "", "</details>", "",
             "## Files", "",
             "- `model.safetensors`: the generator's weights (safetensors)",
             "- `config.json`: what genlab needs to rebuild the generator (model, options, data shape, classes, "
             "the run's config, genlab version)",
             f"- `{SAMPLES_FILE}`, `{RECIPE_FILE}`, `{CARD_FILE}` (this card)", ""]
    atomic_write_text(folder / CARD_FILE, "\n".join(lines))

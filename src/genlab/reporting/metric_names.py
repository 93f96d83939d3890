"""Metric names: which direction is better, which numbers are scores, and how they read in tables and legends.

Plain rules over strings, shared by figures, the HTML report and sweep tables (no files, no models)."""
from __future__ import annotations

from collections.abc import Sequence

#: metric names (or the part before "/": "is/mean", "pr/precision") where a larger value is better; every
#: other metric (fid, kid, losses, coverage/kl_to_real, ...) is lower-is-better
HIGHER_IS_BETTER = ("is", "inception_score", "precision", "recall", "density", "coverage", "classes_covered",
                    "entropy", "entropy_normalized", "accuracy", "acc", "vendi")
LOWER_IS_BETTER_LEAVES = ("kl_to_real",)
NON_METRIC_KEYS = {"step", "epoch", "kind", "split", "protocol", "checkpoint", "num_samples", "features", "seed"}
#: numbers in evaluation results that describe the measurement rather than score the model
NON_METRIC_LEAVES = ("std", "k", "num_classes", "classes_in_real", "num_samples", "seconds", "subsets", "subset_size",
                     "chance", "classes", "min_generated", "min_reference", "train_images", "epochs",
                     "num_generated", "num_real", "num_train", "num_images", "resamples", "level", "kid_rows",
                     "q", "real_score")  # vendi/q: its order; vendi/real_score: the real rows' diversity (a yardstick)


def _leaf(metric: str) -> str:
    return metric.lower().rsplit("/", 1)[-1]


def higher_is_better(metric: str) -> bool:
    """Direction of a metric; nested names ("pr/precision", "coverage/kl_to_real") are judged by their last
    part, then by their first ("is/mean")."""
    m = metric.lower()
    leaf, head = _leaf(m), m.split("/", 1)[0]
    if leaf in LOWER_IS_BETTER_LEAVES:
        return False
    if "/" in m and leaf in HIGHER_IS_BETTER:
        return True
    return any(head == k or head.startswith(k + "_") for k in HIGHER_IS_BETTER)


def is_score(metric: str) -> bool:
    """False for bookkeeping numbers of a result (kid/std, pr/k, coverage/num_classes, fid_std) and for the ends
    of confidence intervals (ci95/fid_low: tables show them next to the metric they bound)."""
    leaf = _leaf(metric)
    return (leaf not in NON_METRIC_LEAVES and not leaf.endswith(("_std", "_low", "_high"))
            and metric not in NON_METRIC_KEYS)


def flatten(d: dict, prefix: str = "", sep: str = "/") -> dict:
    """{"kid": {"mean": 0.1}} -> {"kid/mean": 0.1}; non-dict values are kept as they are."""
    out: dict = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k != "protocol":
            out.update(flatten(v, key + sep, sep))
        else:
            out[key] = v
    return out


def best_of(metric: str, values: Sequence[float]) -> float:
    return float(max(values) if higher_is_better(metric) else min(values))


def pretty(metric: str) -> str:
    names = {"fid": "FID", "kid": "KID", "kid/mean": "KID", "is": "IS", "is/mean": "IS", "loss_D": "loss D",
             "loss_G": "loss G", "pr/precision": "precision", "pr/recall": "recall", "pr/density": "density",
             "pr/coverage": "PR coverage", "coverage/classes_covered": "classes covered",
             "coverage/kl_to_real": "class KL to real", "coverage/entropy_normalized": "class entropy (norm.)",
             "fid_inf": "FID∞", "fd_dinov2": "FD_DINOv2", "cmmd": "CMMD", "vendi/score": "Vendi score",
             "ifid/mean": "intra-class FID", "class_acc/accuracy": "class accuracy", "cas/accuracy": "CAS",
             "rfid": "rFID", "recon/mse": "reconstruction MSE", "recon/mae": "reconstruction MAE",
             "copies/copy_rate": "copies (share of samples)", "copies/real_rate": "copies among real test images"}
    return names.get(metric, metric)

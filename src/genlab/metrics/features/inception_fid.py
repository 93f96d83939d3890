"""``inception``: the standard FID feature extractor (2048-d pool features, 1008 logits for IS).

Weights (``pt_inception-2015-12-05-6726825d.pth``, the widely used PyTorch port of the TF FID graph) are
looked for, in order:
1. ``weights=PATH`` (the CLI's ``--inception-weights PATH``);
2. ``$GENLAB_INCEPTION_WEIGHTS``;
3. ``cache_dir()/weights/pt_inception-2015-12-05-6726825d.pth``;
4. a download from the public URL into 3., verified against the sha256 prefix in the name (6726825d).
A file whose sha256 does not start with that prefix still loads (strictly) but warns: its FIDs are not
comparable with published ones. The extractor's ``hash`` is ``weights_hash`` of the loaded network.

Its input is 299px/3ch: images of any size are resized to it by the extractor (``base.to_input`` with
``resize="bilinear"``, antialiased; grey repeated to RGB). Upsizing, the case of every dataset genlab ships,
is the bilinear resize of the published FID code (equal to 2e-6); images larger than 299 are antialiased,
as clean-fid recommends, where the original code aliased.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from genlab.errors import GenlabError
from genlab.metrics.features.base import FEATURE_EXTRACTORS, FeatureExtractor, weights_hash
from genlab.metrics.features.inception_net import FEATURE_DIM, INPUT_SIZE, NUM_CLASSES, FIDInceptionV3
from genlab.metrics.features.weights import download_checked, file_sha256, find_weights
from genlab.metrics.features.weights import weights_cache_path as cached_file

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + WEIGHTS_FILE
WEIGHTS_SHA256_PREFIX = "6726825d"
WEIGHTS_ENV = "GENLAB_INCEPTION_WEIGHTS"


class InceptionWeightsWarning(UserWarning):
    """Inception weights that are not the published FID file: numbers are not comparable with papers."""


def weights_cache_path() -> Path:
    return cached_file(WEIGHTS_FILE)


def download_weights(dest: Path, url: str = WEIGHTS_URL) -> Path:
    """Download ``url`` to ``dest`` atomically; the file only appears when its sha256 prefix matches."""
    return download_checked(url, dest, lambda sha, size: None if sha.startswith(WEIGHTS_SHA256_PREFIX)
                            else f"{WEIGHTS_SHA256_PREFIX}...", "FID Inception weights")


def find_inception_weights(path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The weights file to use (see the module docstring for the search order), or one clear GenlabError."""
    return find_weights(path, option="--inception-weights", env=WEIGHTS_ENV, file=WEIGHTS_FILE, url=WEIGHTS_URL,
                        what="FID Inception weights", download=download_weights if download else None)


def load_inception(path: str | os.PathLike) -> tuple[FIDInceptionV3, str]:
    """The network with the weights at ``path`` loaded strictly; also returns the file's sha256."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise GenlabError(f"cannot read Inception weights {path}: {e}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GenlabError(f"{path} is not a state dict of tensors")
    net = FIDInceptionV3()
    # Files saved before BatchNorm counted its batches lack these counters; they never change eval outputs.
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise GenlabError(f"{path} does not fit the FID Inception network: {str(e).splitlines()[0]} ...") from None
    sha = file_sha256(path)
    if not sha.startswith(WEIGHTS_SHA256_PREFIX):
        warnings.warn(
            f"{path} (sha256 {sha[:16]}...) is not the published {WEIGHTS_FILE}: its FIDs are not comparable "
            "with published numbers",
            InceptionWeightsWarning,
            stacklevel=2,
        )
    return net, sha


@FEATURE_EXTRACTORS.register("inception")
def inception_extractor(
    dataset: object | None = None,
    resolution: int | None = None,
    channels: int | None = None,
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    download: bool = True,
    batch_size: int = 32,
) -> FeatureExtractor:
    """Inception-v3 FID features for any dataset; ``dataset``, ``resolution`` and ``channels`` are unused."""
    path = find_inception_weights(weights, download=download)
    net, sha = load_inception(path)
    return FeatureExtractor(
        net,
        name="inception",
        hash=weights_hash(net.state_dict()),
        feature_dim=FEATURE_DIM,
        num_classes=NUM_CLASSES,
        resolution=INPUT_SIZE,
        channels=3,
        resize="bilinear",  # the published FID code's (pytorch-fid), so FIDs stay comparable with papers
        batch_size=batch_size,
        device=device,
        info={
            "weights": str(path),
            "weights_sha256": sha[:16],
            "published_weights": sha.startswith(WEIGHTS_SHA256_PREFIX),
        },
    )

"""Conditional metrics (ifid, class_acc, cas): pure functions against independent references, then end to end on
the two-class bar toy data of tests/models/test_conditional_learning.py, where the answer is known: a generator that
honours the condition (real bars of the asked class) scores high class_acc and CAS and a low intra-class FID, one
whose labels are shuffled scores chance, while the overall FID cannot tell them apart."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.data.base import ImageData
from genlab.errors import GenlabError
from genlab.evaluation import evaluate_loaded
from genlab.metrics import EvalOptions, evaluate, frechet_distance_sqrtm
from genlab.metrics.conditional import class_accuracy, intra_class_fid
from genlab.metrics.features.base import FeatureExtractor, weights_hash
from genlab.metrics.features.classifier import fit_classifier
from genlab.models import MODELS
from genlab.recipe import build_networks, load_config
from genlab.rundir import RunDir
from genlab.sampling import LoadedRun, load_run

SIDE = 28


def bars(n: int, seed: int) -> ImageData:
    """The toy of tests/models/test_conditional_learning.py: class 0 a 4 px horizontal bar, class 1 a vertical one,
    near the centre, on a noisy dark background."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    x = rng.integers(0, 30, size=(n, 1, SIDE, SIDE)).astype(np.uint8)
    for i, k in enumerate(labels):
        p = rng.integers(SIDE // 2 - 5, SIDE // 2 + 1)
        if k == 0:
            x[i, 0, p:p + 4, 2:SIDE - 2] = 255
        else:
            x[i, 0, 2:SIDE - 2, p:p + 4] = 255
    return ImageData(images=torch.from_numpy(x), labels=torch.from_numpy(labels),
                     class_names=["horizontal bar", "vertical bar"], name="bars", split="test")


# ----------------------------------------------------------------------------------------------- pure functions
def test_intra_class_fid_is_the_mean_of_per_class_frechet_distances():
    rng = np.random.default_rng(0)
    gen_lab, ref_lab = np.arange(300) % 3, np.arange(240) % 3
    gen = rng.normal(size=(300, 4)) + gen_lab[:, None] * 1.0
    ref = rng.normal(size=(240, 4)) * 1.3 + ref_lab[:, None] * 0.7
    out = intra_class_fid(gen, gen_lab, ref, ref_lab)
    expected = {}
    for k in range(3):  # the scipy sqrtm route, per class, as an independent reference
        g, r = gen[gen_lab == k], ref[ref_lab == k]
        cov_g, cov_r = np.cov(g, rowvar=False), np.cov(r, rowvar=False)
        expected[str(k)] = frechet_distance_sqrtm(g.mean(0), cov_g, r.mean(0), cov_r)
    assert out["per_class"] == pytest.approx(expected, rel=1e-9)
    assert out["mean"] == pytest.approx(np.mean(list(expected.values())), rel=1e-9)
    assert (out["classes"], out["min_generated"], out["min_reference"]) == (3, 100, 80)


def test_intra_class_fid_sees_swapped_classes():
    rng = np.random.default_rng(1)
    lab = np.arange(400) % 2
    ref = rng.normal(size=(400, 3)) + lab[:, None] * 4.0
    gen = rng.normal(size=(400, 3)) + lab[:, None] * 4.0
    right = intra_class_fid(gen, lab, ref, lab)["mean"]
    swapped = intra_class_fid(gen, 1 - lab, ref, lab)["mean"]
    assert right < 0.2 and swapped > 40, (right, swapped)


def test_class_accuracy_counts_argmax_hits_per_class_and_refuses_other_classes():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0], [1.0, 0.0]])
    out = class_accuracy(logits, [0, 1, 1, 1, 1], num_classes=2)
    assert out == {"accuracy": 0.6, "per_class": {"0": 1.0, "1": 0.5}, "chance": 0.5}
    with pytest.raises(GenlabError, match="must be the dataset's 10 classes; this extractor has 2"):
        class_accuracy(logits, [0, 1, 1, 1, 1], num_classes=10)


# ----------------------------------------------------------------------------------------------- end to end
class BarsGenerator:
    """A "generator" that returns real bars (of another seed than the reference) of the classes it draws, and
    reports as drawn labels either those classes (it honours the condition) or labels that carry no information:
    in each class, exactly half of the images get the other class's label (so no classifier can learn from them)."""

    def __init__(self, shuffled: bool, seed: int = 3):
        self.pool = bars(2000, seed)
        self.g = torch.Generator().manual_seed(seed)
        self.g_shuffle = torch.Generator().manual_seed(seed + 1)  # the images do not depend on ``shuffled``
        self.shuffled = shuffled
        self.reported: list[torch.Tensor] = []

    def __call__(self, n: int) -> torch.Tensor:
        y = torch.randint(0, 2, (n,), generator=self.g)
        idx = torch.stack([torch.nonzero(self.pool.labels == int(k)).flatten()[
            torch.randint(0, 1000, (1,), generator=self.g)] for k in y]).flatten()
        reported = y.clone()
        if self.shuffled:
            for k in (0, 1):
                members = torch.nonzero(y == k).flatten()
                flip = members[torch.randperm(len(members), generator=self.g_shuffle)[:len(members) // 2]]
                reported[flip] = 1 - k
        self.reported.append(reported)
        return self.pool.images[idx].float() / 127.5 - 1

    def drawn_labels(self) -> np.ndarray:
        return torch.cat(self.reported).numpy()


@pytest.fixture(scope="module")
def bars_extractor() -> FeatureExtractor:
    """The toy dataset's classifier: genlab's compact classifier trained on bars (two epochs suffice)."""
    with torch.random.fork_rng():
        net = fit_classifier(bars(256, seed=5), epochs=2, batch_size=64)
    return FeatureExtractor(net, name="bars-classifier", hash=weights_hash(net.state_dict()), feature_dim=128,
                            num_classes=2, resolution=SIDE, channels=1)


def test_a_generator_that_honours_the_condition_scores_high_and_a_shuffled_one_chance(bars_extractor):
    reference = bars(256, seed=9)
    opts = EvalOptions(cas_epochs=2)
    metrics = ["fid", "ifid", "class_acc", "cas"]
    good = evaluate(BarsGenerator(shuffled=False), 256, reference, bars_extractor, metrics, options=opts, cache=False)
    bad = evaluate(BarsGenerator(shuffled=True), 256, reference, bars_extractor, metrics, options=opts, cache=False)
    assert good["class_acc"]["accuracy"] >= 0.95 and min(good["class_acc"]["per_class"].values()) >= 0.9
    assert 0.4 <= bad["class_acc"]["accuracy"] <= 0.6, bad["class_acc"]  # chance: 0.5
    assert good["cas"]["accuracy"] >= 0.9 and 0.3 <= bad["cas"]["accuracy"] <= 0.7, (good["cas"], bad["cas"])
    assert good["ifid"]["classes"] == 2 and good["ifid"]["mean"] * 5 < bad["ifid"]["mean"], (good["ifid"], bad["ifid"])
    assert good["fid"] == pytest.approx(bad["fid"])  # the same images: FID is blind to the condition
    assert good["protocol"]["options"]["cas_epochs"] == 2


def untrained_cgan(tmp_path) -> LoadedRun:
    cfg = load_config(None, ["model.name=cgan", f"data.resolution={SIDE}", "data.channels=1", "model.hidden_dim=8",
                             "model.latent_dim=4"])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        nets = build_networks(cfg, 2)
    return LoadedRun(run=RunDir.of(tmp_path), cfg=cfg, spec=MODELS.get("cgan"), nets=nets.eval(),
                     checkpoint=tmp_path / "none.pt", step=0, epoch=0, extra={"num_classes": 2})


def test_the_run_sampler_reports_the_labels_it_drew_in_the_seeded_order(tmp_path):
    run = untrained_cgan(tmp_path)
    sampler = run.sampler(seed=4)
    first, second = sampler(5), sampler(7)
    g = torch.Generator().manual_seed(4)  # the order metrics rely on: z then y, call after call
    expected = []
    for n in (5, 7):
        torch.randn(n, 4, generator=g)
        expected.append(torch.randint(0, 2, (n,), generator=g))
    assert np.array_equal(sampler.drawn_labels(), torch.cat(expected).numpy())
    assert first.shape == (5, 1, SIDE, SIDE) and second.shape == (7, 1, SIDE, SIDE)


def test_conditional_metrics_of_an_unconditional_run_are_one_clear_error(gan_run):
    with pytest.raises(GenlabError, match=r"^ifid, class_acc measure whether .* model dcgan is unconditional"):
        evaluate_loaded(load_run(gan_run), metrics="fid,ifid,class_acc", features="classifier")

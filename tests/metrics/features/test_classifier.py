"""The classifier extractor: one per dataset at its native size, trained on a tiny labeled dataset, cached by
weights hash, reused; images of other sizes and channels are resized and recoloured to its input."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from genlab.data.base import ImageData
from genlab.errors import GenlabError
from genlab.metrics.features import TrainedClassifier, get_extractor, train_classifier
from genlab.metrics.features import classifier as clf
from genlab.metrics.features.base import weights_hash
from genlab.metrics.reference import DatasetRef, load_split
from genlab.metrics.work_progress import progress_to

NATIVE = 28  # the tiny IDX dataset is written at Fashion-MNIST's native 28x28


@pytest.fixture
def trained(tiny_classifier, classifier_cache):
    _, t = tiny_classifier
    return TrainedClassifier(classifier_cache, t.hash, t.test_accuracy, t.train_seconds)


def test_trains_caches_and_reuses(trained, tiny_fmnist, monkeypatch):
    # well above chance (0.1) is what matters here (8 short epochs)
    assert trained.test_accuracy is not None and trained.test_accuracy >= 0.6
    assert trained.path.is_file()
    assert trained.path.parent == clf.extractor_dir()
    assert trained.path.name.startswith("classifier-fashion-mnist-root") and trained.path.name.endswith(
        f"-{NATIVE}-1-w16-{trained.hash}.pt")  # grey: width 16
    model, meta = clf.load_classifier(trained.path)
    assert weights_hash(model.state_dict()) == trained.hash == meta["hash"]

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been reused")

    monkeypatch.setattr(clf, "fit_classifier", no_training)
    again = train_classifier("fashion-mnist", NATIVE, 1, root=str(tiny_fmnist), verify=False)
    assert again.path == trained.path and again.hash == trained.hash
    # one per dataset: a reference (or a run) at 64px RGB finds the same 28px/1ch network
    for res, ch in ((NATIVE, 1), (64, 3), (16, 1)):
        ext = get_extractor("classifier", dataset=DatasetRef("fashion-mnist", "test", res, ch,
                                                             root=str(tiny_fmnist), verify=False))
        assert ext.hash == trained.hash and ext.feature_dim == 128 and ext.num_classes == 10
        assert (ext.resolution, ext.channels) == (NATIVE, 1) and ext.describe()["input"] == "28px/1ch"
    with pytest.raises(GenlabError, match="native size 28px/1ch, not 16px/1ch"):
        train_classifier("fashion-mnist", 16, 1, root=str(tiny_fmnist), verify=False)


def test_extractor_outputs(trained):
    ext = get_extractor("classifier", weights=trained.path)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (10, 1, NATIVE, NATIVE), generator=g, dtype=torch.uint8)
    feats, logits = ext.features(images)
    assert feats.shape == (10, 128) and logits.shape == (10, 10) and feats.dtype == torch.float32
    ext.batch_size = 3
    feats3, logits3 = ext.features(images)
    torch.testing.assert_close(feats3, feats, rtol=1e-5, atol=1e-5)  # eval mode: batch-size invariant
    assert torch.equal(ext.features(images)[0], feats3)  # deterministic
    bad = torch.zeros(2, 1, NATIVE, NATIVE)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(GenlabError, match="NaN"):
        ext.features(bad)
    with pytest.raises(GenlabError, match="1- or 3-channel"):
        ext.features(torch.zeros(2, 2, NATIVE, NATIVE, dtype=torch.uint8))


def test_other_sizes_and_channels_are_brought_to_its_input(trained, tiny_fmnist):
    """Grey stored as RGB (R = G = B) is the same image: the fixed luma weights sum to 1. A 2x larger copy
    of real images is resized back (antialiased) to nearly the same features."""
    ext = get_extractor("classifier", weights=trained.path)
    images = load_split(DatasetRef("fashion-mnist", "test", NATIVE, 1, root=str(tiny_fmnist), verify=False)).images
    feats, _ = ext.features(images)
    rgb, _ = ext.features(images.repeat(1, 3, 1, 1))
    torch.testing.assert_close(rgb, feats, rtol=1e-4, atol=1e-4 * float(feats.abs().max()))
    big = torch.nn.functional.interpolate(images.float(), scale_factor=2, mode="nearest").round().to(torch.uint8)
    f_big, _ = ext.features(big)
    assert f_big.shape == feats.shape and torch.isfinite(f_big).all()
    far = (feats - feats.roll(1, 0)).norm(dim=1).mean()  # how far apart two different images are
    assert (f_big - feats).norm(dim=1).mean() < 0.25 * far, ((f_big - feats).norm(dim=1).mean(), far)
def test_predictions_on_the_tiny_test_split_are_its_labels(trained, tiny_fmnist):
    """The logits head classifies: accuracy computed here from the raw label file, far above chance (0.1), is the
    accuracy the training reported; every class is predicted."""
    ext = get_extractor("classifier", weights=trained.path)
    test = load_split(DatasetRef("fashion-mnist", "test", NATIVE, 1, root=str(tiny_fmnist), verify=False))
    with gzip.open(tiny_fmnist / "t10k-labels-idx1-ubyte.gz") as f:  # 8 header bytes, then one byte per label
        labels = torch.from_numpy(np.frombuffer(f.read()[8:], np.uint8).astype(np.int64))
    assert torch.equal(test.labels.long(), labels)
    _, logits = ext.features(test.images)
    predicted = logits.argmax(1)
    accuracy = (predicted == labels).float().mean().item()
    assert accuracy >= 0.6 and accuracy == pytest.approx(trained.test_accuracy, abs=1.5 / len(labels))
    assert len(set(predicted.tolist())) >= 8  # not one class for everything


def test_tampered_checkpoint_is_refused(trained):
    payload = torch.load(trained.path, weights_only=True)
    payload["state_dict"]["head.bias"] += 1.0
    torch.save(payload, trained.path)
    with pytest.raises(GenlabError, match="does not match"):
        clf.load_classifier(trained.path)


def test_unlabeled_data_is_refused():
    data = ImageData(images=torch.zeros(8, 1, 16, 16, dtype=torch.uint8), name="x")
    with pytest.raises(GenlabError, match="labeled"):
        clf.fit_classifier(data)


def test_architecture_adapts_to_resolution():
    for res, ch in ((16, 1), (32, 3), (64, 3)):
        net = clf.CompactClassifier(ch, res, 5).eval()
        f, logits = net(torch.zeros(2, ch, res, res))
        assert f.shape == (2, 128) and logits.shape == (2, 5)


@pytest.mark.parametrize("threads", [1, 3])
def test_training_threads_are_scoped(threads):
    """While training, torch uses ``threads`` threads (read at each progress report, inside the call); after it,
    the count it had before."""
    g = torch.Generator().manual_seed(0)
    data = ImageData(images=torch.randint(0, 256, (16, 1, 8, 8), generator=g, dtype=torch.uint8),
                     labels=torch.arange(16) % 2, class_names=["a", "b"], name="tiny")
    before = torch.get_num_threads()
    inside: list[int] = []
    try:
        torch.set_num_threads(2)
        with progress_to(lambda *_a, **_k: inside.append(torch.get_num_threads())):
            clf.fit_classifier(data, epochs=1, batch_size=8, threads=threads)
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert inside and set(inside) == {threads}, inside
    assert after == 2


def test_training_reports_progress_with_the_accuracy_reached():
    g = torch.Generator().manual_seed(0)
    data = ImageData(images=torch.randint(0, 256, (64, 1, 8, 8), generator=g, dtype=torch.uint8),
                     labels=torch.arange(64) % 2, class_names=["a", "b"], name="tiny")
    calls = []
    with progress_to(lambda task, done, total, note="": calls.append((task, done, total, note))):
        clf.fit_classifier(data, epochs=2, batch_size=8)
    total = 2 * 64 // 8
    assert [c[1] for c in calls][-1] == total and all(c[2] == total for c in calls)
    assert calls[0][0] == "classifier tiny 8px/1ch"
    assert "epoch 2/2" in calls[-1][3] and "train acc" in calls[-1][3]
    assert [c[1] for c in calls] == sorted(c[1] for c in calls)


def test_cli_cached_only_trains_nothing(classifier_cache_28, tiny_fmnist, tmp_path):
    """`genlab features train-classifier --cached-only` (scripts/demo.sh asks it before training alongside)."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("genlab")
    args = [str(exe), "features", "train-classifier", "fashion-mnist", "--root", str(tiny_fmnist), "--cached-only"]
    empty = subprocess.run(args, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "GENLAB_CACHE_DIR": str(tmp_path / "empty")})
    assert empty.returncode == 1 and "no cached classifier for fashion-mnist at 28px/1ch" in empty.stdout, empty
    assert not (tmp_path / "empty" / "extractors").exists() or not any((tmp_path / "empty" / "extractors").iterdir())
    shutil.copytree(classifier_cache_28, tmp_path / "cache")
    found = subprocess.run(args, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "GENLAB_CACHE_DIR": str(tmp_path / "cache")})
    path = Path("".join(found.stdout.split()))  # Rich may wrap the long path
    assert found.returncode == 0 and path.is_file() and path.name.startswith("classifier-fashion-mnist"), found


def test_cli_width_and_epochs_measure_a_variant_without_caching_it(tiny_fmnist, tmp_path):
    """`--width/--epochs`: how the default recipe was chosen, reproducible; the metrics' yardstick is untouched."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("genlab")
    cache = tmp_path / "cache"
    r = subprocess.run([str(exe), "features", "train-classifier", "fashion-mnist", "--root", str(tiny_fmnist),
                        "--no-verify", "--width", "4", "--epochs", "1"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "GENLAB_CACHE_DIR": str(cache)})
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"width 4, 1 epochs: test accuracy (\d\.\d{4}), trained in \d+s on one thread; not cached",
                  " ".join(r.stdout.split()))
    assert m and 0 <= float(m.group(1)) <= 1, r.stdout
    assert not list(cache.rglob("classifier-*.pt")), list(cache.rglob("*"))  # nothing cached

"""The classifier extractor: trained on a tiny labeled dataset, cached by weights hash, reused."""
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

from ..conftest import TINY_RES


@pytest.fixture
def trained(tiny_classifier, classifier_cache):
    _, t = tiny_classifier
    return TrainedClassifier(classifier_cache, t.hash, t.test_accuracy, t.train_seconds)


def test_trains_caches_and_reuses(trained, tiny_fmnist, monkeypatch):
    # 10 bar positions squeezed from 28 to 16 rows overlap: well above chance (0.1) is what matters here
    assert trained.test_accuracy is not None and trained.test_accuracy >= 0.6
    assert trained.path.is_file()
    assert trained.path.parent == clf.extractor_dir()
    assert trained.path.name.startswith("classifier-fashion-mnist-root") and trained.path.name.endswith(
        f"-{TINY_RES}-1-{trained.hash}.pt")
    model, meta = clf.load_classifier(trained.path)
    assert weights_hash(model.state_dict()) == trained.hash == meta["hash"]

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been reused")

    monkeypatch.setattr(clf, "fit_classifier", no_training)
    again = train_classifier("fashion-mnist", TINY_RES, 1, root=str(tiny_fmnist), verify=False)
    assert again.path == trained.path and again.hash == trained.hash
    ext = get_extractor("classifier", dataset=DatasetRef("fashion-mnist", "test", TINY_RES, 1, root=str(tiny_fmnist),
                                                         verify=False))
    assert ext.hash == trained.hash and ext.feature_dim == 128 and ext.num_classes == 10
    assert (ext.resolution, ext.channels) == (TINY_RES, 1)


def test_extractor_outputs(trained):
    ext = get_extractor("classifier", weights=trained.path)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (10, 1, TINY_RES, TINY_RES), generator=g, dtype=torch.uint8)
    feats, logits = ext.features(images)
    assert feats.shape == (10, 128) and logits.shape == (10, 10) and feats.dtype == torch.float32
    ext.batch_size = 3
    feats3, logits3 = ext.features(images)
    torch.testing.assert_close(feats3, feats, rtol=1e-5, atol=1e-5)  # eval mode: batch-size invariant
    assert torch.equal(ext.features(images)[0], feats3)  # deterministic
    with pytest.raises(GenlabError, match=f"{TINY_RES}x{TINY_RES}"):
        ext.features(torch.zeros(2, 1, 32, 32, dtype=torch.uint8))
    with pytest.raises(GenlabError, match="1-channel"):
        ext.features(torch.zeros(2, 3, TINY_RES, TINY_RES, dtype=torch.uint8))
    bad = torch.zeros(2, 1, TINY_RES, TINY_RES)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(GenlabError, match="NaN"):
        ext.features(bad)


def test_predictions_on_the_tiny_test_split_are_its_labels(trained, tiny_fmnist):
    """The logits head classifies: accuracy computed here from the raw label file, far above chance (0.1), is the
    accuracy the training reported; every class is predicted."""
    ext = get_extractor("classifier", weights=trained.path)
    test = load_split(DatasetRef("fashion-mnist", "test", TINY_RES, 1, root=str(tiny_fmnist), verify=False))
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


def test_training_threads_are_scoped():
    g = torch.Generator().manual_seed(0)
    data = ImageData(images=torch.randint(0, 256, (16, 1, 8, 8), generator=g, dtype=torch.uint8),
                     labels=torch.arange(16) % 2, class_names=["a", "b"], name="tiny")
    torch.set_num_threads(2)
    clf.fit_classifier(data, epochs=1, batch_size=8, threads=1)
    assert torch.get_num_threads() == 2

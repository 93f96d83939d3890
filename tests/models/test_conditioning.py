"""Conditioning objects: the sample grid's, metrics' random, user labels' and prompts' conditions, and what a
training batch conditions on."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from genlab.data.captions import Vocabulary
from genlab.errors import ConfigError, GenlabError
from genlab.models import MODELS
from genlab.models.conditioning import (
    CONDITIONINGS,
    CaptionTable,
    ClassConditioning,
    Conditioning,
    TextConditioning,
    grid_labels,
    resolve,
)
from genlab.sampling import load_run
from genlab.training.phases import Batch

NONE, CLASS, TEXT = CONDITIONINGS.get("none"), CONDITIONINGS.get("class"), CONDITIONINGS.get("text")
BANK = ["a red car", "a blue ship", "two green birds"]
TEXT_EXTRA = {"text": {"vocab": sorted({w for c in BANK for w in c.split()}), "class_captions": [],
                       "caption_bank": BANK, "source": "captions"}}


def ctx(name: str = "some-model") -> SimpleNamespace:
    return SimpleNamespace(cfg=SimpleNamespace(model=SimpleNamespace(name=name)), cache={})


def test_registry_names_and_model_specs_hold_objects():
    assert CONDITIONINGS.names() == ["class", "none", "text"]
    assert isinstance(NONE, Conditioning) and isinstance(CLASS, ClassConditioning)
    assert isinstance(TEXT, TextConditioning)
    assert resolve("class") is CLASS and resolve(TEXT) is TEXT
    with pytest.raises(ConfigError, match="unknown conditioning 'audio'"):
        resolve("audio")
    assert MODELS.get("dcgan").conditioning is NONE and MODELS.get("cgan").conditioning is CLASS
    assert MODELS.get("text-dcgan").conditioning is TEXT and MODELS.get("cvae-gan").conditioning is CLASS
    assert [c.name for c in (NONE, CLASS, TEXT)] == ["none", "class", "text"]
    assert (NONE.conditional, CLASS.conditional, TEXT.conditional) == (False, True, True)
    assert (NONE.takes_labels, CLASS.takes_labels, TEXT.takes_labels) == (False, True, False)
    assert (NONE.captioned, CLASS.captioned, TEXT.captioned) == (False, False, True)


def test_fixed_grid_conditions():
    assert NONE.fixed(5, 3) is None
    assert torch.equal(CLASS.fixed(5, 3), torch.tensor([0, 1, 2, 0, 1]))
    assert torch.equal(TEXT.fixed(4, 2), torch.tensor([0, 1, 0, 1]))  # labels stand for class captions
    assert TEXT.fixed(4, 0) is None  # G cycles its bank of training captions
    assert torch.equal(grid_labels(5, 3), torch.arange(5) % 3) and grid_labels(5, 0) is None


def test_random_conditions_follow_the_generator():
    g = torch.Generator().manual_seed(0)
    assert NONE.random(4, g, {"num_classes": 3}) is None
    assert torch.equal(torch.randn(1, generator=g), torch.randn(1, generator=torch.Generator().manual_seed(0)))
    y = CLASS.random(200, torch.Generator().manual_seed(1), {"num_classes": 3})
    assert y.dtype == torch.int64 and y.shape == (200,) and set(y.tolist()) == {0, 1, 2}
    assert torch.equal(y, torch.randint(0, 3, (200,), generator=torch.Generator().manual_seed(1)))
    assert torch.equal(TEXT.random(6, torch.Generator().manual_seed(1), {"num_classes": 3, **TEXT_EXTRA}), y[:6])
    bags = TEXT.random(8, torch.Generator().manual_seed(2), TEXT_EXTRA)
    vocab = Vocabulary(tuple(TEXT_EXTRA["text"]["vocab"]))
    pick = torch.randint(0, 3, (8,), generator=torch.Generator().manual_seed(2)).tolist()
    assert bags.dtype == torch.float32 and bags.shape == (8, len(vocab))
    assert torch.equal(bags, vocab.bags([BANK[i] for i in pick]))


def test_conditions_from_user_labels():
    assert NONE.from_labels(None, 4, 10, "dcgan") is None
    assert torch.equal(CLASS.from_labels(None, 5, 3, "cgan"), torch.tensor([0, 1, 2, 0, 1]))
    assert torch.equal(CLASS.from_labels([2, 0], 5, 3, "cgan"), torch.tensor([2, 0, 2, 0, 2]))
    with pytest.raises(GenlabError, match=r"labels \[3\] are out of range: this model has classes 0..2"):
        CLASS.from_labels([1, 3], 4, 3, "cgan")
    assert TEXT.from_labels(None, 4, 3, "text-dcgan") is None
    assert torch.equal(TEXT.from_labels([1], 3, 3, "text-dcgan"), torch.tensor([1, 1, 1]))
    with pytest.raises(GenlabError, match="trained without classes"):
        TEXT.from_labels([1], 3, 0, "text-dcgan")


def test_labels_for_an_unconditional_model_are_an_error_naming_it():
    with pytest.raises(GenlabError, match="model dcgan is unconditional: it takes no labels"):
        NONE.from_labels([1, 2], 4, 10, "dcgan")


def test_text_prompts():
    notes: list[str] = []
    bags = TEXT.from_prompt("a red boat", 3, TEXT_EXTRA, "text-dcgan", log=notes.append)
    vocab = Vocabulary(tuple(TEXT_EXTRA["text"]["vocab"]))
    assert bags.shape == (3, len(vocab)) and torch.equal(bags[0], bags[2])
    assert bags[0].sum() == 2 and bags[0, vocab.index["red"]] == 1
    assert any("boat" in n for n in notes) and notes[-1] == "conditioning on: a red"
    with pytest.raises(GenlabError, match="no word of the prompt"):
        TEXT.from_prompt("purple elephant", 1, TEXT_EXTRA, "text-dcgan", log=notes.append)
    for cond in (NONE, CLASS):
        with pytest.raises(GenlabError, match="--prompt needs a text-conditional model; cgan is conditioned on"):
            cond.from_prompt("a car", 1, TEXT_EXTRA, "cgan")


def test_training_batch_conditions():
    x, y = torch.zeros(3, 1, 4, 4), torch.tensor([2, 0, 1])
    assert NONE.from_batch(Batch(x, y), ctx()) is None
    assert CLASS.from_batch(Batch(x, y), ctx()) is y
    with pytest.raises(ConfigError, match="model cgan needs labeled batches"):
        CLASS.from_batch(Batch(x), ctx("cgan"))
    assert NONE.doubled(None) is None and torch.equal(CLASS.doubled(y), torch.cat([y, y]))

    ids = torch.tensor([[0, 1, -1], [2, -1, -1], [1, 1, 2]])
    class_bags = torch.eye(3)
    text = TEXT.with_captions(CaptionTable(ids, 3, class_bags))
    assert TEXT.captions is None  # the registered object stays unbound
    per_image = text.from_batch(Batch(x, y, idx=torch.tensor([2, 0])), ctx())
    assert per_image.tolist() == [[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]]  # each image's own caption (0/1 bags)
    c = ctx()
    by_class = text.from_batch(Batch(x, y), c)
    assert torch.equal(by_class, class_bags[y]) and c.cache["bags"] is by_class
    assert text.from_batch(Batch(x, torch.tensor([0, 0, 0])), c) is by_class  # once per step: the cache
    with pytest.raises(ConfigError, match="needs each batch's image indices or labels"):
        TEXT.from_batch(Batch(x, y), ctx("text-dcgan"))


def test_class_models_need_classes():
    NONE.require_classes("dcgan", "image-folder", 0)
    TEXT.require_classes("text-dcgan", "image-folder", 0)
    CLASS.require_classes("cgan", "mnist", 10)
    with pytest.raises(ConfigError, match="model cgan is class-conditional but data.name=image-folder"):
        CLASS.require_classes("cgan", "image-folder", 0)


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs_v010"


def test_a_loaded_run_asks_its_conditioning(tmp_path):
    dcgan, cgan = load_run(FIXTURES / "dcgan-ema"), load_run(FIXTURES / "cgan")
    assert dcgan.conditioning is NONE and not dcgan.conditional and cgan.conditioning is CLASS
    with pytest.raises(GenlabError, match="model dcgan is unconditional: it takes no labels"):
        dcgan.sample(4, labels=[1])
    assert torch.equal(cgan.default_labels(4, [3]), torch.tensor([3, 3, 3, 3]))
    assert torch.equal(cgan.sample(4, seed=1), cgan.generate(cgan.latents(4, 1), torch.arange(4) % 10))

"""What a model is conditioned on, as an object: ``none``, ``class`` (int64 labels) or ``text`` (caption bags).

A :class:`Conditioning` knows every condition a caller needs, so no caller compares conditioning names:

- ``fixed(n, num_classes)``: the conditions of the loop's sample grid (labels ``arange(n) % K``);
- ``random(n, g, extra)``: random conditions for metrics, drawn from ``g`` right after the latents;
- ``from_labels(labels, n, num_classes, model)``: the conditions for user labels (``--label``) or the default;
- ``from_prompt(prompt, n, extra, model, log)``: a caption's bag of words (text models only);
- ``from_batch(batch, ctx)``: what a training batch conditions on;
- ``without(c, mask)``: the conditions with entries replaced by "no condition" (label dropout, classifier-free
  guidance's unconditional branch).

Every network takes ``(x, cond=None)``; ``None`` is what unconditional networks get (and ignore).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from genlab.data.captions import Vocabulary, bags_from_ids, describe_unknown
from genlab.errors import ConfigError, GenlabError
from genlab.registry import Registry

if TYPE_CHECKING:
    from genlab.training.phases import Batch, StepContext


def grid_labels(n: int, num_classes: int) -> torch.Tensor | None:
    """The sample grid's labels, cycling through the classes; noise.pt keeps them for every labeled run."""
    return torch.arange(n) % num_classes if num_classes > 0 else None


def repeat_labels(labels: list[int], n: int, num_classes: int) -> torch.Tensor:
    """``labels`` cycled to ``n`` entries; GenlabError names any label outside 0..num_classes-1."""
    bad = [c for c in labels if not 0 <= c < num_classes]
    if bad:
        raise GenlabError(f"labels {bad} are out of range: this model has classes 0..{num_classes - 1}")
    return torch.tensor(labels * (n // len(labels) + 1))[:n]


@dataclass(frozen=True)
class Conditioning:
    """The unconditional case (``none``) and the base of the others: every condition is ``None``."""

    name: str = "none"
    conditional: bool = False  # networks use the condition
    takes_labels: bool = False  # conditioned on class labels (class grids, per-label interpolation, encoding)
    captioned: bool = False  # conditioned on captions (random captions in reports; --prompt)

    def fixed(self, n: int, num_classes: int) -> torch.Tensor | None:
        return None

    def random(self, n: int, g: torch.Generator, extra: dict) -> torch.Tensor | None:
        return None

    def from_labels(self, labels: list[int] | None, n: int, num_classes: int, model: str) -> torch.Tensor | None:
        if labels:
            raise GenlabError(f"model {model} is unconditional: it takes no labels (drop --label)")
        return None

    def from_prompt(self, prompt: str, n: int, extra: dict, model: str, log: Callable = print) -> torch.Tensor:
        raise GenlabError(f"--prompt needs a text-conditional model; {model} is conditioned on {self.name} "
                          "(use --label for class-conditional models)")

    def from_batch(self, batch: Batch, ctx: StepContext) -> torch.Tensor | None:
        return None

    def doubled(self, c: torch.Tensor | None) -> torch.Tensor | None:
        """The conditions of a batch concatenated with itself (one forward over real + fake)."""
        return None if not self.conditional or c is None else torch.cat([c, c])

    def without(self, c: torch.Tensor | None, mask: torch.Tensor | None = None) -> torch.Tensor | None:
        """``c`` with the entries where ``mask`` (N,) bool is set (all when None) replaced by "no condition": the
        unconditional branch of classifier-free guidance, and label dropout in training."""
        return None

    def require_classes(self, model: str, data: str, num_classes: int) -> None:
        """ConfigError when the model needs classes the data lacks (only class-conditional models do)."""


@dataclass(frozen=True)
class ClassConditioning(Conditioning):
    """int64 class labels (N,)."""

    name: str = "class"
    conditional: bool = True
    takes_labels: bool = True

    def fixed(self, n: int, num_classes: int) -> torch.Tensor | None:
        return torch.arange(n) % max(num_classes, 1)

    def random(self, n: int, g: torch.Generator, extra: dict) -> torch.Tensor | None:
        return torch.randint(0, max(int(extra.get("num_classes", 0)), 1), (n,), generator=g)

    def from_labels(self, labels: list[int] | None, n: int, num_classes: int, model: str) -> torch.Tensor | None:
        return repeat_labels(labels, n, num_classes) if labels else self.fixed(n, num_classes)

    def from_batch(self, batch: Batch, ctx: StepContext) -> torch.Tensor | None:
        if batch.y is None:
            raise ConfigError(f"model {ctx.cfg.model.name} needs labeled batches")
        return batch.y

    def without(self, c: torch.Tensor | None, mask: torch.Tensor | None = None) -> torch.Tensor | None:
        """Label -1 = "no label" (class-conditional U-Nets keep an embedding row for it)."""
        if c is None:
            return None
        return torch.full_like(c, -1) if mask is None else torch.where(mask, torch.full_like(c, -1), c)

    def require_classes(self, model: str, data: str, num_classes: int) -> None:
        if num_classes <= 0:
            raise ConfigError(f"model {model} is class-conditional but data.name={data} has no labels "
                              "(an image-folder without class subfolders?); use a labeled dataset, set "
                              "model.num_classes, or pick an unconditional model")


@dataclass(frozen=True)
class CaptionTable:
    """A text run's training captions: each image's word indices and each class's caption bag."""

    ids: torch.Tensor | None  # (N, L) word indices per training image (padding: -1), or None
    vocab_size: int
    class_bags: torch.Tensor | None = None  # (K, V) bags of the class captions; None without classes


@dataclass(frozen=True)
class TextConditioning(Conditioning):
    """Float (N, V) caption bags; int64 labels stand for their class captions on labeled data.

    ``captions`` is set by the text objective's setup (``with_captions``) for the run it trains.
    """

    name: str = "text"
    conditional: bool = True
    captioned: bool = True
    captions: CaptionTable | None = None

    def with_captions(self, captions: CaptionTable) -> TextConditioning:
        return dataclasses.replace(self, captions=captions)

    def fixed(self, n: int, num_classes: int) -> torch.Tensor | None:
        return grid_labels(n, num_classes)  # None: G cycles its bank of training captions

    def random(self, n: int, g: torch.Generator, extra: dict) -> torch.Tensor | None:
        """Random classes (their captions) or random training captions from the checkpoint's caption bank."""
        num_classes = int(extra.get("num_classes", 0))
        if num_classes:
            return torch.randint(0, num_classes, (n,), generator=g)
        text = extra["text"]
        bank = text["caption_bank"]
        pick = torch.randint(0, len(bank), (n,), generator=g).tolist()
        return Vocabulary(tuple(text["vocab"])).bags([bank[i] for i in pick])

    def from_labels(self, labels: list[int] | None, n: int, num_classes: int, model: str) -> torch.Tensor | None:
        if not labels:
            return None
        if not num_classes:
            raise GenlabError(f"model {model} is text-conditional and was trained without classes: it takes "
                              "no labels (use --prompt)")
        return repeat_labels(labels, n, num_classes)  # the bag of "a photo of a <class>"

    def from_prompt(self, prompt: str, n: int, extra: dict, model: str, log: Callable = print) -> torch.Tensor:
        if "text" not in extra:
            raise GenlabError(f"model {model} has no vocabulary in its checkpoint; --prompt needs one")
        vocab = Vocabulary(tuple(extra["text"]["vocab"]))
        known, unknown = vocab.split(prompt)
        if unknown:
            log(describe_unknown(unknown, vocab))
        if not known:
            raise GenlabError(f"no word of the prompt {prompt!r} is in the model's vocabulary; "
                              f"known words: {', '.join(vocab.words)}")
        log(f"conditioning on: {' '.join(known)}")
        bag, _ = vocab.encode(prompt)
        return bag.expand(n, -1).clone()

    def from_batch(self, batch: Batch, ctx: StepContext) -> torch.Tensor | None:
        """Each image's own caption (``batch.idx``), else its class caption; computed once per step."""
        cached = ctx.cache.get("bags")
        if cached is not None:
            return cached
        t = self.captions
        if t is not None and batch.idx is not None and t.ids is not None:
            bags = bags_from_ids(t.ids[batch.idx], t.vocab_size)
        elif t is not None and batch.y is not None and t.class_bags is not None:
            bags = t.class_bags[batch.y]
        else:
            raise ConfigError(f"model {ctx.cfg.model.name} needs each batch's image indices or labels for its "
                              "captions")
        ctx.cache["bags"] = bags
        return bags


CONDITIONINGS: Registry[Conditioning] = Registry("conditioning")
CONDITIONINGS.add("none", Conditioning())
CONDITIONINGS.add("class", ClassConditioning())
CONDITIONINGS.add("text", TextConditioning())


def resolve(conditioning: Conditioning | str) -> Conditioning:
    """A conditioning object from itself or its registered name."""
    return conditioning if isinstance(conditioning, Conditioning) else CONDITIONINGS.get(conditioning)

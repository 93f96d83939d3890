"""Captions for text conditioning: template captions from class names and a bag-of-words vocabulary.

A labeled dataset without captions gets template captions built from its class names ("a photo of a ship",
"a picture of a car", ...; image i uses template i mod T, and class synonyms in turn), so a prompt such as
"a red car" finds "car" in CIFAR-10's vocabulary. An image-folder may ship its own captions (``data.captions``).
The vocabulary is every word of the training captions, sorted; a caption becomes a 0/1 vector over it.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from genlab.errors import ConfigError

TEMPLATES = ("a photo of {a} {name}", "a picture of {a} {name}", "an image of {a} {name}", "{a} {name}")

#: extra names a class answers to (lower-case class name -> words), so that everyday prompts find a class
SYNONYMS: dict[str, tuple[str, ...]] = {
    "airplane": ("plane",), "automobile": ("car",), "truck": ("lorry",), "ankle boot": ("boot",),
    "t-shirt/top": ("t-shirt", "top"), "0": ("zero",), "1": ("one",), "2": ("two",), "3": ("three",),
    "4": ("four",), "5": ("five",), "6": ("six",), "7": ("seven",), "8": ("eight",), "9": ("nine",),
}

_TOKEN = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-case words (letters, digits, inner hyphens/apostrophes): "A T-shirt, red!" -> [a, t-shirt, red]."""
    return _TOKEN.findall(text.lower())


def class_phrases(name: str) -> list[str]:
    """The phrases that name one class: its name (split on "/"), then its synonyms."""
    base = name.strip().lower().replace("_", " ")
    phrases = [p.strip() for p in base.split("/") if p.strip()] if "/" in base else [base]
    phrases += [s for s in SYNONYMS.get(base, ()) if s not in phrases]
    return phrases or [base]


def _article(phrase: str) -> str:
    return "an" if phrase[:1] in "aeiou" else "a"


def caption(template: str, phrase: str) -> str:
    return template.format(a=_article(phrase), name=phrase)


def class_caption(name: str) -> str:
    """The one caption that stands for a class: "a photo of a ship"."""
    phrase = class_phrases(name)[0]
    return caption(TEMPLATES[0], phrase)


def template_captions(class_names: Sequence[str], labels: Sequence[int]) -> list[str]:
    """One caption per image from its class: image i uses template i mod T and the class's phrases in turn."""
    phrases = [class_phrases(n) for n in class_names]
    out = []
    for i, k in enumerate(int(v) for v in labels):
        ph = phrases[k]
        out.append(caption(TEMPLATES[i % len(TEMPLATES)], ph[(i // len(TEMPLATES)) % len(ph)]))
    return out


def dataset_captions(data) -> tuple[list[str], str]:
    """(one caption per image, where they came from) for an ``ImageData``; ConfigError when there are none."""
    if data.captions is not None:
        return [c or "" for c in data.captions], "captions"
    if data.labels is not None and data.class_names:
        return template_captions(data.class_names, data.labels.tolist()), "class templates"
    raise ConfigError(f"text conditioning needs captions: {data.name or 'this dataset'} has neither labels (for "
                      "template captions such as 'a photo of a ship') nor captions (image-folder: data.captions)")


@dataclass(frozen=True)
class Vocabulary:
    """The words a text-conditional model knows; position i of a bag-of-words vector is ``words[i]``."""

    words: tuple[str, ...]
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {w: i for i, w in enumerate(self.words)})

    @classmethod
    def from_captions(cls, captions: Sequence[str]) -> Vocabulary:
        words = sorted({w for c in captions for w in tokenize(c)})
        if not words:
            raise ConfigError("the captions hold no words; text conditioning needs a vocabulary")
        return cls(tuple(words))

    def __len__(self) -> int:
        return len(self.words)

    def split(self, text: str) -> tuple[list[str], list[str]]:
        """(known words, unknown words) of a text, in order."""
        toks = tokenize(text)
        return [w for w in toks if w in self.index], [w for w in toks if w not in self.index]

    def encode(self, text: str) -> tuple[torch.Tensor, list[str]]:
        """A caption -> (0/1 bag-of-words vector (V,), words outside the vocabulary)."""
        known, unknown = self.split(text)
        bag = torch.zeros(len(self))
        for w in known:
            bag[self.index[w]] = 1.0
        return bag, unknown

    def bags(self, captions: Sequence[str]) -> torch.Tensor:
        """Captions -> (N, V) float 0/1 bag-of-words matrix (unknown words are ignored)."""
        return bags_from_ids(self.token_ids(captions), len(self))

    def token_ids(self, captions: Sequence[str], pad: int = -1) -> torch.Tensor:
        """Captions -> (N, L) int64 word indices padded with ``pad``: a compact per-image store."""
        ids = [[self.index[w] for w in tokenize(c) if w in self.index] for c in captions]
        width = max((len(r) for r in ids), default=0) or 1
        out = torch.full((len(ids), width), pad, dtype=torch.int64)
        for i, r in enumerate(ids):
            if r:
                out[i, :len(r)] = torch.tensor(r)
        return out


def bags_from_ids(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """(N, L) word indices (negative = padding) -> (N, V) 0/1 float bags, on ids' device."""
    valid = ids >= 0
    bags = torch.zeros(ids.shape[0], vocab_size, device=ids.device)
    bags.scatter_add_(1, ids.clamp(min=0), valid.float())
    return bags.clamp_(max=1.0)


def describe_unknown(unknown: Sequence[str], vocab: Vocabulary | None = None, show: int = 40) -> str:
    """A one-line note naming words a prompt used that the model never saw."""
    msg = f"not in the model's vocabulary (ignored): {', '.join(dict.fromkeys(unknown))}"
    if vocab is not None:
        words = list(vocab.words)
        msg += f"; it knows {len(words)} words: {', '.join(words[:show])}{' ...' if len(words) > show else ''}"
    return msg

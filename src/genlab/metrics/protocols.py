"""``PROTOCOLS``: named evaluation protocols, the settings that make a number comparable with a published table.

A protocol fixes what "FID" means: the feature extractor, the number of generated images, the reference split
and the resize. ``genlab`` is genlab's own default (any extractor, 10,000 images against the test split);
``paper`` is the protocol of the tables most GAN papers print (pytorch-fid's, and StudioGAN's and clean-fid's
with the same settings): Inception pool3 features of the ``pt_inception-2015-12-05`` network, 50,000 generated
images against the statistics of the whole *training* split, with the resize the compared table used:

- ``legacy`` (the default): pytorch-fid's bilinear resize to 299 without antialiasing. TTUR's original
  TensorFlow code resizes inside its graph, slightly differently; pytorch-fid's README calls the gap small.
- ``clean``: clean-fid's resize (Pillow's bicubic on float pixels), for clean-fid's "clean" tables.

``resolve`` fills the settings a caller left open (None) from the protocol. ``conformance`` checks a finished
evaluation's protocol record against the protocol and says, in words, whether it matches the published one and
what differs (fewer images, other weights, another split...); evaluations write it into their protocol record
(``published_protocol``) and the CLI prints it. A number that does not conform is still a valid genlab number
(its own protocol is recorded); it is just not the published table's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genlab.errors import GenlabError
from genlab.registry import Registry


@dataclass(frozen=True)
class Protocol:
    name: str
    summary: str  # one line for --help
    features: str  # the extractor (a FEATURE_EXTRACTORS name, or "auto")
    num_samples: int  # generated images
    split: str  # the reference split of the run's dataset
    resizes: tuple[str, ...] = ()  # the resizes it allows (the first is its default); () = the extractor's own
    tables: dict[str, str] | None = None  # resize -> the published tables it matches (None: genlab's own)


#: images per batch of sampling and feature extraction: every evaluation's default (`genlab eval --batch-size`)
BATCH_SIZE = 250

PROTOCOLS: Registry[Protocol] = Registry("protocol")
GENLAB, PAPER = "genlab", "paper"

PROTOCOLS.add(GENLAB, Protocol(
    GENLAB, "genlab's default: --features auto, 10,000 generated images vs the test split",
    features="auto", num_samples=10_000, split="test"))
PROTOCOLS.add(PAPER, Protocol(
    PAPER, "published FID tables: Inception, 50,000 generated images vs the training split, --resize legacy "
           "(pytorch-fid, the default) or clean (clean-fid)",
    features="inception", num_samples=50_000, split="train", resizes=("legacy", "clean"),
    tables={"legacy": "pytorch-fid's FID tables (Inception pt_inception-2015-12-05, 50k samples vs the training "
                      "split, bilinear resize); StudioGAN's and TTUR's use the same settings",
            "clean": "clean-fid's FID tables in clean mode (Inception pt_inception-2015-12-05, 50k samples vs the "
                     "training split, Pillow bicubic resize)"}))


@dataclass(frozen=True)
class Settings:
    """A protocol with every open setting filled in."""

    protocol: str
    features: str
    num_samples: int
    split: str
    resize: str | None


def resolve(protocol: str | None = None, *, features: str | None = None, num_samples: int | None = None,
            split: str | None = None, resize: str | None = None) -> Settings:
    """The settings of an evaluation: what the caller gave, else the protocol's. A resize the protocol does not
    allow is refused (the paper protocol: legacy or clean); genlab's protocol allows none (each extractor keeps
    its own) unless given."""
    p = PROTOCOLS.get(protocol or GENLAB)
    if resize is not None and p.resizes and resize not in p.resizes:
        raise GenlabError(f"--resize {resize} is not one of the {p.name} protocol's: {', '.join(p.resizes)}")
    return Settings(p.name, features if features is not None else p.features,
                    num_samples if num_samples is not None else p.num_samples,
                    split if split is not None else p.split,
                    resize if resize is not None else (p.resizes[0] if p.resizes else None))


def conformance(protocol: str, record: dict[str, Any], resize: str | None) -> dict[str, Any] | None:
    """``{"protocol", "resize", "tables", "matches": bool, "differences": [...]}`` for an evaluation's protocol
    ``record`` under a published protocol (None for genlab's own, which has no published tables)."""
    p = PROTOCOLS.get(protocol)
    if p.tables is None:
        return None
    resize = resize or p.resizes[0]
    differences = []
    info = record.get("extractor_info") or {}
    if record.get("extractor") != p.features:
        differences.append(f"features {record.get('extractor')} (the protocol: {p.features})")
    elif info.get("published_weights") is not True:
        differences.append("the Inception weights are not the published pt_inception-2015-12-05 file")
    if info.get("resize", "").split(":")[0] != resize:
        differences.append(f"resize {info.get('resize')} (the protocol: {resize})")
    if record.get("num_generated") != p.num_samples:
        differences.append(f"{record.get('num_generated')} generated images (the protocol: {p.num_samples})")
    ref = record.get("reference") or {}
    if "stats_sha256" not in ref:  # a published statistics file is the table's own reference
        if ref.get("split") != p.split:
            where = ref.get("split") or ref.get("folder") or "another reference"
            differences.append(f"reference {where} (the protocol: the whole {p.split} split)")
        elif ref.get("limit"):
            differences.append(f"the reference is limited to {ref['limit']} images (the protocol: the whole split)")
    return {"protocol": p.name, "resize": resize, "tables": p.tables[resize], "matches": not differences,
            "differences": differences}


def conformance_line(check: dict[str, Any] | None) -> str | None:
    """One human line from ``conformance``'s result (None when there is nothing to say)."""
    if not check:
        return None
    head = f"protocol {check['protocol']} ({check['resize']} resize)"
    if check["matches"]:
        return f"{head}: comparable with {check['tables']}"
    return f"{head}: NOT comparable with published tables: {'; '.join(check['differences'])}"

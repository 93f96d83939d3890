"""Class-conditional grids: one row per class, the same latent in every column, so a column shows how one
noise vector renders across the classes and a row shows the variety inside one class."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from genlab.errors import GenlabError
from genlab.models import MODELS


@dataclass
class ClassGrid:
    images: torch.Tensor  # (len(classes) * per_class, C, H, W), row i = classes[i]
    classes: list[int]
    class_names: list[str]  # one per row
    per_class: int


def conditional_models() -> list[str]:
    return [name for name, spec in MODELS.items() if spec.conditioning.takes_labels]


def class_grid(run, per_class: int = 8, seed: int = 0, classes: Sequence[int] | None = None,
               shared_noise: bool = True) -> ClassGrid:
    """A row per class for class-conditional runs; ``shared_noise`` reuses one set of latents for every row."""
    if not run.conditioning.takes_labels:
        others = ", ".join(conditional_models()) or "none registered yet"
        raise GenlabError(f"run {run.run.path} (model {run.cfg.model.name}) is not class-conditional; "
                          f"class grids need a class-conditional model (registered: {others})")
    if per_class < 1:
        raise GenlabError(f"per_class={per_class}: at least one image per class")
    k = run.num_classes
    classes = list(range(k)) if classes is None else [int(c) for c in classes]
    bad = [c for c in classes if not 0 <= c < k]
    if bad:
        raise GenlabError(f"classes {bad} are out of range: this model has classes 0..{k - 1}")
    if shared_noise:
        z = run.latents(per_class, seed).cpu().repeat(len(classes), 1)
    else:
        z = run.latents(per_class * len(classes), seed).cpu()
    y = torch.tensor(classes).repeat_interleave(per_class)
    names = run.class_names
    row_names = [names[c] if c < len(names) else str(c) for c in classes]
    return ClassGrid(images=run.generate(z, y), classes=classes, class_names=row_names, per_class=per_class)

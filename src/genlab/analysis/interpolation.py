"""Latent interpolation: paths through latent space (linear or spherical) decoded into strips, grids and GIFs.

Works for every model that ``genlab.sampling.load_run`` loads: a GAN's generator and a VAE's decoder both
turn latents into images. Latent points come from seeds, from a saved tensor (e.g. the run's ``noise.pt``) or,
for models with an encoder, from encoded images. Strips and GIFs are written by ``genlab.grids``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from genlab.errors import GenlabError

METHODS = ("slerp", "lerp")


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Straight line: ``(1 - t) a + t b`` for each ``t`` -> (len(t), D)."""
    t = t.reshape(-1, 1).to(a.dtype)
    return (1 - t) * a.reshape(1, -1) + t * b.reshape(1, -1)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation: follows the great circle between ``a`` and ``b`` while interpolating their norms.

    Gaussian latents live near a sphere of radius sqrt(D); a straight line between two of them passes through
    the low-density middle, a great-circle path stays where the generator was trained. Falls back to ``lerp``
    for (anti)parallel vectors, where the circle is undefined.
    """
    a64, b64 = a.double().reshape(-1), b.double().reshape(-1)
    t = t.double().reshape(-1, 1)
    na, nb = a64.norm(), b64.norm()
    if na < eps or nb < eps:
        return lerp(a, b, t.to(a.dtype))
    ua, ub = a64 / na, b64 / nb
    cos = (ua * ub).sum().clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4 or (torch.pi - omega).abs() < 1e-4:
        return lerp(a, b, t.to(a.dtype))
    so = torch.sin(omega)
    direction = (torch.sin((1 - t) * omega) / so) * ua + (torch.sin(t * omega) / so) * ub
    radius = (1 - t) * na + t * nb
    return (direction * radius).to(a.dtype)


def interpolate_path(points: torch.Tensor, steps: int, method: str = "slerp") -> torch.Tensor:
    """Latents (K, D), K >= 2 -> a path (1 + (K - 1) * (steps - 1), D) through all of them, ends included."""
    if method not in METHODS:
        raise GenlabError(f"interpolation method {method!r} is unknown; choose one of: {', '.join(METHODS)}")
    if points.ndim != 2 or len(points) < 2:
        raise GenlabError(f"interpolation needs at least two latent points, got shape {tuple(points.shape)}")
    if steps < 2:
        raise GenlabError(f"steps={steps} is too few: at least 2 (the two end points)")
    fn = slerp if method == "slerp" else lerp
    t = torch.linspace(0, 1, steps)
    legs = [fn(points[i], points[i + 1], t if i == 0 else t[1:]) for i in range(len(points) - 1)]
    return torch.cat(legs)


def seed_latents(run, seeds: Sequence[int]) -> torch.Tensor:
    """One latent per seed, exactly the first latent ``run.sample(n, seed)`` would use."""
    return torch.cat([run.latents(1, int(s)).cpu() for s in seeds])


def load_latents(path: str | Path, indices: Sequence[int] | None = None) -> torch.Tensor:
    """A saved latent tensor (K, D), or a dict holding one under ``"z"`` (a run's ``noise.pt``), -> rows."""
    p = Path(path)
    want = "a (K, latent_dim) tensor saved with torch.save, or a dict with one under 'z' (e.g. RUN/noise.pt)"
    if not p.is_file():
        raise GenlabError(f"latent file {str(p)!r} does not exist; give {want}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # not a torch file, truncated, or pickled objects other than tensors
        raise GenlabError(f"latent file {str(p)!r} is not a tensor file ({type(e).__name__}); give {want}") from None
    if isinstance(obj, dict):
        if "z" not in obj:
            raise GenlabError(f"{p} holds a dict without a 'z' entry (keys: {', '.join(map(str, obj))}); give {want}")
        obj = obj["z"]
    if not isinstance(obj, torch.Tensor) or obj.ndim != 2 or not obj.is_floating_point():
        what = f"a {obj.dtype} tensor" if isinstance(obj, torch.Tensor) else f"a {type(obj).__name__}"
        raise GenlabError(f"{p} holds {what} of shape {tuple(getattr(obj, 'shape', ()))}; give {want}")
    if indices:
        bad = [i for i in indices if not -len(obj) <= i < len(obj)]
        if bad:
            raise GenlabError(f"latent indices {bad} are out of range: {p} holds {len(obj)} latents")
        obj = obj[list(indices)]
    return obj.float()


def check_latents(run, z: torch.Tensor) -> torch.Tensor:
    d = run.cfg.model.latent_dim
    if z.ndim != 2 or z.shape[1] != d:
        raise GenlabError(f"latents have shape {tuple(z.shape)} but this model takes latent_dim={d}: give "
                          f"(K, {d}) latents, e.g. this run's noise.pt")
    return z


def labels_for(run, n: int, label: int | None) -> torch.Tensor | None:
    """A constant class label for conditional models (default class 0); None for unconditional ones."""
    cond = run.conditioning
    if not cond.conditional:
        if label is not None:
            raise GenlabError(f"--label was given but model {run.cfg.model.name} is not class-conditional")
        return None
    if not cond.takes_labels:
        raise GenlabError(f"model {run.cfg.model.name} is {cond.name}-conditional; interpolation supports "
                          "unconditional and class-conditional models")
    label = 0 if label is None else int(label)
    if not 0 <= label < max(run.num_classes, 1):
        raise GenlabError(f"label {label} is out of range: this model has classes 0..{run.num_classes - 1}")
    return torch.full((n,), label, dtype=torch.long)


def interpolate(run, points: torch.Tensor, steps: int = 10, method: str = "slerp",
                label: int | None = None) -> torch.Tensor:
    """Decode a path through ``points`` (K, D) -> images (1 + (K - 1)(steps - 1), C, H, W) in [-1, 1]."""
    path = interpolate_path(check_latents(run, points), steps, method)
    return run.generate(path, labels_for(run, len(path), label))


def interpolation_rows(run, rows: int = 4, steps: int = 10, method: str = "slerp", seed: int = 0,
                       label: int | None = None) -> torch.Tensor:
    """``rows`` independent pairs of seeded latents, one interpolation per row -> (rows * steps, C, H, W)."""
    ends = run.latents(2 * rows, seed).cpu()
    paths = [interpolate_path(ends[2 * i:2 * i + 2], steps, method) for i in range(rows)]
    z = torch.cat(paths)
    return run.generate(z, labels_for(run, len(z), label))


def encode_images(run, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Images in [-1, 1] -> the encoder's means (N, D). Needs a model with an encoder network "E"."""
    if "E" not in run.nets:
        raise GenlabError(f"model {run.cfg.model.name} has no encoder; encoding images needs a VAE")
    E = run.nets["E"]
    out = []
    with torch.no_grad():
        for i in range(0, len(images), 256):
            x = images[i:i + 256].to(run.device)
            y = labels[i:i + 256].to(run.device) if labels is not None and run.conditioning.takes_labels else None
            res = E(x, y)
            mu = res[0] if isinstance(res, (tuple, list)) else res
            out.append(mu.float().cpu().reshape(len(x), -1))
    return torch.cat(out) if out else torch.empty(0, run.cfg.model.latent_dim)


def frame_count(num_points: int, steps: int) -> int:
    return 1 + (num_points - 1) * (steps - 1)


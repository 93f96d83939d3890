"""The recipe files that ship inside the package, so ``genlab train demo`` works after ``pip install genlab``
from any folder.

The repository's ``configs/`` folder is the one source of truth: ``src/genlab/configs`` is a symlink to it, and
setuptools copies it into the wheel as package data (``[tool.setuptools.package-data]`` in pyproject.toml), so a
new recipe is one new file in ``configs/`` for the clone, an editable install and the wheel alike. Keeping the
folder's name ``configs`` inside the package means a reference such as ``base: configs/x.yaml`` in a shipped
sweep file resolves there too (the sweep loader looks upwards from the sweep file's folder).

A recipe argument is, in order:
  1. a file that exists (relative to the working directory): that file;
  2. a name: ``fashion_mnist_fast``, ``sweeps/mnist_latent_hidden`` (a path under configs/ without ``.yaml``),
     or an alias from :data:`ALIASES` (``demo``): the shipped file;
  3. a relative path ``configs/...`` that does not exist here (the README's commands, run outside the clone):
     the shipped file of that path.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genlab.errors import ConfigError

#: the folder of shipped recipes: configs/ of the repository, package data of the wheel
SHIPPED = Path(__file__).resolve().parent / "configs"
#: short names for recipes people type often
ALIASES = {"demo": "demo_fashion_mnist_dcgan"}
SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class RecipeFile:
    name: str  # the path under configs/ without its suffix: "fashion_mnist_fast", "sweeps/mnist_latent_hidden"
    path: Path

    @property
    def kind(self) -> str:
        """"recipe" for a file directly in configs/, else its folder ("sweeps", ...)."""
        return self.name.split("/")[0] if "/" in self.name else "recipe"


def shipped() -> list[RecipeFile]:
    """Every YAML file under the shipped configs/ folder, sorted by name."""
    if not SHIPPED.is_dir():
        return []
    files = [p for p in SHIPPED.rglob("*") if p.suffix in SUFFIXES and p.is_file()]
    return sorted((RecipeFile(p.relative_to(SHIPPED).with_suffix("").as_posix(), p) for p in files),
                  key=lambda r: (r.kind != "recipe", r.name))


def shipped_path(name: str) -> Path | None:
    """The shipped file of a name, alias or ``configs/...`` path; None when genlab ships no such file."""
    name = ALIASES.get(name, name)
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        return None
    if rel.parts and rel.parts[0] == "configs":  # the README's `configs/x.yaml`
        rel = Path(*rel.parts[1:])
    for candidate in ([SHIPPED / rel] if rel.suffix in SUFFIXES else []) + [SHIPPED / (str(rel) + s)
                                                                         for s in SUFFIXES]:
        if candidate.is_file():
            return candidate
    return None


def locate(recipe: str | Path) -> Path:
    """A recipe argument (a file, a shipped recipe's name or its ``configs/...`` path) -> the file to read.

    A path that exists is returned as it is (a folder too: the reader says what is wrong with it); otherwise
    the shipped file of that name, else a ConfigError that names the shipped recipes."""
    p = Path(recipe).expanduser()
    if p.exists():
        return p
    found = shipped_path(str(recipe))
    if found is not None:
        return found
    names = [r.name for r in shipped() if r.kind == "recipe"]
    raise ConfigError(f"recipe {str(recipe)!r} does not exist: neither a file nor the name of a recipe that ships "
                      f"with genlab; give a YAML file, or one of: {', '.join(sorted(ALIASES) + names)} "
                      "(`genlab recipes list`)")

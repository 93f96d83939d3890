"""The run folder: the contract between training, evaluation, analysis and reporting.

``RunDir`` owns every file of a run; nothing else builds these paths or opens these files::

    runs/<name>/config.yaml      the resolved config                         write_config / read_config
                metrics.jsonl    one record per log window, eval records     append_record / read_records
                status.json      running | finished | interrupted | diverged  write_status / read_status
                runtime.json     the resolved speed settings                 write_runtime / read_runtime
                eval.json        the last `genlab eval` result               write_eval / read_eval
                trackers.json    each experiment tracker's run id (resumes)  write_tracker_ids / read_tracker_ids
                noise.pt         the fixed noise behind every sample grid    save_noise / load_noise
                samples/         epoch_0010.png (+ recon_epoch_0010.png)     sample_path / sample_grids
                checkpoints/     step_*.pt, best.pt                          step_checkpoint / checkpoint_files
                analysis/        artifacts of analysis commands              artifact / write_artifact_json
                tb/              TensorBoard event files                     tb
                .genlab-run      marks a folder genlab created (its version)  create / is_run_folder
                .lock            held (flock) by the process training it      lock / lock_owner
                report.html      `genlab report RUN` (its default path)

``--overwrite`` only ever replaces a folder genlab can prove is a run folder of its own (``RUN_LAYOUT``: the
marker and nothing but the entries above; a genlab 0.1.0 run, which has no marker, by its full set of files),
never the current folder, a parent of it, $HOME, ``/`` or a mount point (``genlab.deletion``). An output path
given to any command never names one of a run's own files (``check_output_file``).
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genlab import __version__
from genlab.deletion import Layout, check_replaceable, empty_folder, read_marker
from genlab.deletion import check_output_file as _check_output_file
from genlab.errors import ConfigError, RunError
from genlab.io import atomic_torch_save, atomic_write_bytes, atomic_write_text, content_digest

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock file is written but does not exclude
    fcntl = None  # type: ignore[assignment]

MARKER_FILE = ".genlab-run"
LOCK_FILE = ".lock"
#: a sweep folder's manifest (written by genlab.sweeps.grid.write_manifest, read by the sweep tables)
SWEEP_MANIFEST = "sweep.json"
#: an export folder's files (genlab.export) and its marker
EXPORT_MARKER = ".genlab-export"
EXPORT_WEIGHTS, EXPORT_META = "generator.safetensors", "generator.json"

#: every entry genlab writes at the top of a run folder (RunDir's files below, and `genlab report`'s default)
RUN_NAMES = ("config.yaml", "metrics.jsonl", "status.json", "runtime.json", "eval.json", "noise.pt", "tb", "samples",
             "checkpoints", "analysis", "report.html", "trackers.json")
#: the entries of a run that are the run itself: an output path of any command must never replace them
#: (eval.json, report.html and analysis/ are outputs of commands and may be written again)
RUN_OWNED = ("config.yaml", "metrics.jsonl", "status.json", "runtime.json", "noise.pt", "tb", "samples",
             "checkpoints", "trackers.json", MARKER_FILE, LOCK_FILE)


def _genlab_config(path: Path) -> bool:
    """Whether ``path`` is a YAML mapping with genlab's config sections (data, model, train, log)."""
    from omegaconf import OmegaConf

    try:
        cfg = OmegaConf.to_container(OmegaConf.load(path))
    except Exception:
        return False
    return isinstance(cfg, dict) and all(isinstance(cfg.get(k), dict) for k in ("data", "model", "train", "log"))


def _legacy_run(folder: Path) -> str | None:
    """A run of genlab 0.1.0 (no marker): recognised by its whole set of files, not by two common names
    (config.yaml and checkpoints/ are also the layout of Lightning and Hydra projects)."""
    files = {"config.yaml", "metrics.jsonl", "status.json"}
    folders = {"checkpoints", "samples"}
    missing = sorted(n for n in files if not (folder / n).is_file()) + sorted(
        n + "/" for n in folders if not (folder / n).is_dir() or (folder / n).is_symlink())
    if missing:
        return f"no {', '.join(missing)}"
    if not _genlab_config(folder / "config.yaml"):
        return "its config.yaml is not a genlab config"
    strays = [p.name for p in (folder / "checkpoints").iterdir()
              if not (p.name.startswith("step_") or p.name == "best.pt" or p.name.startswith("."))]
    if strays:
        return f"checkpoints/ holds {strays[0]!r}, which genlab does not write"
    return None


#: how genlab proves a folder is one of its runs before --overwrite empties it (genlab.deletion)
RUN_LAYOUT = Layout(kind="run", marker=MARKER_FILE, names=RUN_NAMES, legacy=_legacy_run, keep=(LOCK_FILE,))


def _legacy_export(folder: Path) -> str | None:
    """An export written before export folders had a marker: exactly generator.safetensors + generator.json."""
    names = {p.name for p in folder.iterdir()}
    if names != {EXPORT_WEIGHTS, EXPORT_META}:
        return f"not exactly {EXPORT_WEIGHTS} and {EXPORT_META}"
    try:
        meta = json.loads((folder / EXPORT_META).read_text())
    except (OSError, ValueError):
        return f"{EXPORT_META} is not readable"
    return None if isinstance(meta, dict) and meta.get("format") == "genlab-generator" else \
        f"{EXPORT_META} is not a genlab generator description"


#: an export folder (genlab export): what --overwrite may replace (its marker lists the files it wrote)
EXPORT_LAYOUT = Layout(kind="export", marker=EXPORT_MARKER, names=(EXPORT_WEIGHTS, EXPORT_META), legacy=_legacy_export)


def _genlab_folder_of(path: Path) -> tuple[str, Path] | None:
    """The nearest folder above ``path`` that genlab owns: ("run" | "sweep" | "export", folder), or None."""
    for folder in Path(path).absolute().parents:
        legacy_run = (folder / "config.yaml").is_file() and (folder / "checkpoints").is_dir()
        if (folder / MARKER_FILE).is_file() or legacy_run:
            return "run", folder
        if (folder / SWEEP_MANIFEST).is_file():
            return "sweep", folder
        if (folder / EXPORT_MARKER).is_file() or (folder / EXPORT_META).is_file():
            return "export", folder
    return None


def genlab_file_at(path: str | os.PathLike) -> str | None:
    """What genlab file ``path`` would replace (a run's records, config, checkpoints, noise, grids, TensorBoard
    files, marker or lock; a sweep's manifest or logs; an export's files), or None."""
    found = _genlab_folder_of(Path(path))
    if found is None:
        return None
    kind, folder = found
    rel = Path(path).absolute().relative_to(folder)
    top = rel.parts[0]
    listed = (read_marker(folder / EXPORT_MARKER) or {}).get("files", []) if kind == "export" else []
    owned = {"run": RUN_OWNED, "sweep": (SWEEP_MANIFEST, "logs"),  # an export: also what its marker lists (hub)
             "export": (EXPORT_MARKER, EXPORT_WEIGHTS, EXPORT_META, *(n for n in listed if isinstance(n, str)))}[kind]
    if top in owned:
        return f"{rel} of the genlab {kind} folder {str(folder)!r}"
    return None


def check_output_file(path: str | os.PathLike, suffixes: tuple[str, ...], option: str = "-o") -> None:
    """RunError of one line unless a command may write its ``suffixes`` file to ``path``: the suffix fits, it
    is not a folder, and it is none of a run's (sweep's, export's) own files (``genlab.deletion``)."""
    _check_output_file(path, suffixes, option, owner=lambda p: genlab_file_at(p))


def _read_owner(fd: int) -> dict:
    """The owner a lock file names ({} when empty or unreadable)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 4096).decode("utf-8", "replace").strip()
        owner = json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _describe_owner(owner: dict) -> str:
    return f"genlab process {owner.get('pid', '?')} on {owner.get('host', '?')}"


class RunLock:
    """An exclusive ``flock`` on RUN/.lock, held while one process trains the run (``RunDir.lock``).

    The kernel drops a flock when its holder ends, however it ends, so a lock left by a killed process is free
    again: ``stale_owner`` then names that process (the file still holds its pid) and the new holder takes
    over. Released (file emptied, lock dropped) by ``release``, by ``with``, or when garbage-collected.
    """

    def __init__(self, path: Path, fd: int, stale_owner: dict | None) -> None:
        self.path, self.stale_owner = path, stale_owner
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def describe_takeover(self) -> str | None:
        """A line for the log when this lock was taken over from a process that ended without releasing it."""
        if not self.stale_owner:
            return None
        return (f"{self.path} was left by {_describe_owner(self.stale_owner)}, which has ended (its flock is gone); "
                "taking the run over")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # empty = not held; the file stays (unlinking it would race with a new holder)
        except OSError:
            pass
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # interpreter shutdown: the kernel drops the flock with the process anyway
            pass


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def of(cls, path: str | Path | RunDir) -> RunDir:
        return path if isinstance(path, RunDir) else cls(Path(path))

    config = property(lambda self: self.path / "config.yaml")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    status_json = property(lambda self: self.path / "status.json")
    runtime_json = property(lambda self: self.path / "runtime.json")
    eval_json = property(lambda self: self.path / "eval.json")
    trackers_json = property(lambda self: self.path / "trackers.json")
    noise = property(lambda self: self.path / "noise.pt")
    tb = property(lambda self: self.path / "tb")
    samples = property(lambda self: self.path / "samples")
    checkpoints = property(lambda self: self.path / "checkpoints")
    analysis = property(lambda self: self.path / "analysis")
    best_checkpoint = property(lambda self: self.checkpoints / "best.pt")

    # ------------------------------------------------------------------------------------ the folder
    def exists(self) -> bool:
        return self.config.is_file()

    marker = property(lambda self: self.path / MARKER_FILE)
    lock_file = property(lambda self: self.path / LOCK_FILE)

    def is_run_folder(self) -> bool:
        """A folder genlab provably made (``RUN_LAYOUT``): its marker and only a run's entries, or a genlab 0.1.0
        run's full set of files."""
        return self.path.is_dir() and RUN_LAYOUT.why_not_owned(self.path) is None

    def _own_entries(self) -> list[Path]:
        """What the folder holds besides the lock file."""
        return [p for p in self.path.iterdir() if p.name != LOCK_FILE] if self.path.is_dir() else []

    def create(self, overwrite: bool = False) -> RunLock:
        """Make the run folder (samples/, checkpoints/, the marker) and return its lock, held.

        A non-empty folder is refused, or with ``overwrite`` emptied when genlab can prove it is a run folder of
        its own (``RUN_LAYOUT``) that no process is training and not the current folder, a parent of it, $HOME,
        ``/`` or a mount point (``genlab.deletion``); everything else is refused with a RunError before anything
        is written or removed.
        """
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"--run-dir {str(self.path)!r} is a file, not a folder; pick another --run-dir")
        replace = bool(self._own_entries())
        if replace:
            owner = self.lock_owner()
            if owner is not None:
                raise self._in_use(owner)
            if not overwrite:
                raise RunError(
                    f"run folder {str(self.path)!r} already exists; resume it with `genlab train --resume "
                    f"{self.path}`, pick another --run-dir, or pass --overwrite to replace it"
                )
            check_replaceable(self.path, RUN_LAYOUT)
        self.path.mkdir(parents=True, exist_ok=True)
        lock = self.lock()  # a process that started in between holds it: refused here, nothing removed
        try:
            if replace:
                empty_folder(self.path, RUN_LAYOUT)  # proven again under the lock
            for p in (self.samples, self.checkpoints):
                p.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.marker, json.dumps({"genlab_version": __version__}) + "\n")
        except BaseException:
            lock.release()
            raise
        return lock

    # ------------------------------------------------------------------------------------ the lock
    def _in_use(self, owner: dict) -> RunError:
        pid = owner.get("pid", "?")
        return RunError(f"run folder {str(self.path)!r} is in use: {_describe_owner(owner)} is training it (it "
                        f"holds {self.lock_file}); wait for it to end, or stop it (kill {pid}) and continue with "
                        f"`genlab train --resume {self.path}`")

    def lock(self) -> RunLock:
        """Take RUN/.lock (rank 0 only under torchrun); RunError naming the holder's pid when another process
        has it. A lock left by a process that ended is taken over (``RunLock.describe_takeover``)."""
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise self._in_use(_read_owner(fd)) from None
            stale = _read_owner(fd) or None
            me = {"pid": os.getpid(), "host": socket.gethostname(), "genlab_version": __version__}
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(me) + "\n").encode())
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        return RunLock(self.lock_file, fd, stale)

    def lock_owner(self) -> dict | None:
        """Who holds RUN/.lock ({"pid", "host"}), or None when nobody does; creates nothing."""
        if fcntl is None or not self.lock_file.is_file():
            return None
        try:
            fd = os.open(self.lock_file, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_owner(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def require(self) -> RunDir:
        if not self.exists():
            raise RunError(f"{str(self.path)!r} is not a genlab run folder (no config.yaml); "
                           "train one with `genlab train RECIPE --run-dir PATH`")
        return self

    # ------------------------------------------------------------------------------------ config
    def write_config(self, yaml_text: str) -> Path:
        return atomic_write_text(self.config, yaml_text)

    def read_config_text(self) -> str:
        """config.yaml as written ("" when the folder has none), for showing it to people."""
        return self.config.read_text() if self.config.is_file() else ""

    def read_config(self) -> dict:
        """config.yaml as a plain dict (``genlab.recipe.from_dict`` makes it a Config)."""
        from omegaconf import OmegaConf

        self.require()
        fix = "restore it from a checkpoint's config or train the run again"
        try:
            loaded = OmegaConf.to_container(OmegaConf.load(self.config))
        except Exception as e:  # YAML syntax, binary data, an unreadable file
            what = " ".join(str(getattr(e, "problem", None) or type(e).__name__).split())
            raise ConfigError(f"{self.config} is not a readable genlab config ({what}); {fix}") from None
        if not isinstance(loaded, dict):
            kind = "list" if isinstance(loaded, list) else type(loaded).__name__
            raise ConfigError(f"{self.config} holds a YAML {kind}, not a genlab config mapping; {fix}")
        return loaded  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------ records
    def append_record(self, record: dict) -> None:
        """One record (a training window, an evaluation) appended to metrics.jsonl."""
        with self.metrics.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def read_records(self) -> list[dict]:
        """Every record of metrics.jsonl in order; a torn last line (a crash mid-write) and a line that is not a
        record (``null``, a number, a list: a damaged or hand-edited file) are skipped."""
        if not self.metrics.is_file():
            return []
        out = []
        with self.metrics.open() as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict):
                    out.append(rec)
        return out

    def truncate_records(self, max_step: int) -> None:
        """Drop records past ``max_step`` (left by a run killed after its last checkpoint)."""
        if not self.metrics.is_file():
            return
        keep = []
        with self.metrics.open() as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    break  # a torn last line from a crash
                if not isinstance(rec, dict):
                    continue  # not a record (null, a number): dropped
                try:
                    step = int(rec.get("step", 0))
                except (TypeError, ValueError):
                    continue  # a record whose step is not a number
                if step <= max_step:
                    keep.append(line if line.endswith("\n") else line + "\n")
        atomic_write_text(self.metrics, "".join(keep))

    # ------------------------------------------------------------------------------------ small JSON files
    def _write_json(self, path: Path, obj: Any) -> Path:
        return atomic_write_text(path, json.dumps(obj, indent=1, default=float))

    @staticmethod
    def _read_json(path: Path) -> dict | None:
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None

    def write_status(self, state: str, **fields: Any) -> Path:
        return self._write_json(self.status_json, {"state": state, **fields})

    def read_status(self) -> dict | None:
        return self._read_json(self.status_json)

    def write_runtime(self, runtime: dict) -> Path:
        return self._write_json(self.runtime_json, runtime)

    def read_runtime(self) -> dict | None:
        return self._read_json(self.runtime_json)

    def write_eval(self, result: dict, path: str | Path | None = None) -> Path:
        """An evaluation result (``genlab eval``): eval.json, or ``path`` when the user named one."""
        return self._write_json(Path(path) if path else self.eval_json, result)

    def read_eval(self) -> dict | None:
        return self._read_json(self.eval_json)

    def write_tracker_ids(self, tracker: str, ids: dict) -> Path:
        """What identifies this run in an experiment tracker (``{"run_id": ...}``), so a resume continues the
        same tracker run instead of starting a second one."""
        saved = self.read_tracker_ids()
        saved[tracker] = ids
        return self._write_json(self.trackers_json, saved)

    def read_tracker_ids(self) -> dict[str, dict]:
        """Tracker name -> the ids :meth:`write_tracker_ids` kept ({} when none)."""
        saved = self._read_json(self.trackers_json)
        return {k: v for k, v in saved.items() if isinstance(v, dict)} if isinstance(saved, dict) else {}

    # ------------------------------------------------------------------------------------ noise and samples
    def save_noise(self, fixed: dict) -> Path:
        return atomic_torch_save({**fixed, "digest": content_digest(fixed)}, self.noise)

    def load_noise(self) -> dict | None:
        import torch

        if not self.noise.is_file():
            return None
        fix = ("delete it to draw new fixed noise (later sample grids will not match the earlier ones), or "
               "restore it from a copy of the run")
        try:
            fixed = torch.load(self.noise, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated, not a torch file, not weights-only
            raise RunError(f"{self.noise} is not a readable noise file ({type(e).__name__}); {fix}") from None
        if not isinstance(fixed, dict):
            raise RunError(f"{self.noise} holds a {type(fixed).__name__}, not genlab's fixed noise; {fix}")
        digest = fixed.pop("digest", None)  # noise of genlab 0.1.0 has none
        if digest is not None and digest != content_digest(fixed):
            raise RunError(f"{self.noise} does not match the checksum it was written with (a damaged file); {fix}")
        return fixed

    def sample_path(self, epoch: int, tag: str = "") -> Path:
        """samples/epoch_0010.png, or samples/<tag>_epoch_0010.png (e.g. a VAE's reconstructions)."""
        return self.samples / (f"{tag}_epoch_{epoch:04d}.png" if tag else f"epoch_{epoch:04d}.png")

    def sample_grids(self, tag: str = "") -> list[Path]:
        """The saved grids of one kind, oldest first."""
        pattern = f"{tag}_epoch_*.png" if tag else "epoch_*.png"
        return sorted(self.samples.glob(pattern)) if self.samples.is_dir() else []

    # ------------------------------------------------------------------------------------ checkpoints
    def step_checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:09d}.pt"

    def checkpoint_files(self) -> list[Path]:
        """Step checkpoints, oldest first (names sort by step)."""
        return sorted(self.checkpoints.glob("step_*.pt")) if self.checkpoints.is_dir() else []

    def checkpoint_path(self, which: str = "last") -> Path:
        """``last``, ``best`` or an explicit path -> an existing checkpoint file."""
        if which == "last":
            files = self.checkpoint_files()
            if not files:
                raise RunError(f"run {str(self.path)!r} has no checkpoint yet")
            return files[-1]
        if which == "best":
            p = self.best_checkpoint
            if not p.is_file():
                raise RunError(f"run {str(self.path)!r} has no best.pt (it is kept when eval.every > 0); "
                               "use --checkpoint last")
            return p
        p = Path(which)
        if not p.is_file():
            p = self.checkpoints / which
        if not p.is_file():
            raise RunError(f"checkpoint {which!r} not found; use last, best, or a path to a .pt file")
        return p

    def keep_as_best(self, checkpoint: Path) -> Path:
        """Copy a step checkpoint to best.pt atomically."""
        return atomic_write_bytes(self.best_checkpoint, Path(checkpoint).read_bytes())

    # ------------------------------------------------------------------------------------ analysis artifacts
    def artifact(self, name: str) -> Path:
        """analysis/<name>: where an analysis command writes what it made (figures, JSON)."""
        return self.analysis / name

    def write_artifact_json(self, name: str, obj: Any) -> Path:
        return self._write_json(self.artifact(name), obj)

    def read_artifact_json(self, name: str) -> dict | None:
        return self._read_json(self.artifact(name))


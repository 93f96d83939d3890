"""The Hugging Face Hub: load a generator by repo id, push a run's generator to a repo.

Everything goes through ``huggingface_hub`` (the ``genlab[hub]`` extra), so its usual settings apply:
the token from ``HF_TOKEN`` or ``hf auth login``, the cache in ``HF_HUB_CACHE`` (default
``~/.cache/huggingface/hub``), ``HF_HUB_OFFLINE=1`` to use only the cache, ``HF_ENDPOINT`` for a mirror.
What is uploaded is ``genlab export RUN --format hub`` (``genlab.export``, ``genlab.model_card``); what is
downloaded is read back by the same ``export.load_generator``.
"""
from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from genlab import __version__
from genlab.deletion import remove_created
from genlab.errors import HubError
from genlab.export import EXPORT_FORMATS, ExportedGenerator, export_generator
from genlab.export import load_generator as load_folder
from genlab.io import make_temp_dir
from genlab.rundir import RunDir

#: a Hub repo id: "user/name" (letters, digits, '-', '_', '.')
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: the files a download fetches: the two files of either export layout (not the card's picture)
LOAD_PATTERNS = sorted({name for _, f in EXPORT_FORMATS.items() for name in (f.weights, f.meta)})
NETWORK_MODULES = ("httpx", "httpx2", "httpcore", "requests", "urllib3")


def _hub() -> ModuleType:
    try:
        import huggingface_hub
    except ImportError:
        raise HubError("the Hugging Face Hub needs the huggingface_hub package: pip install 'genlab[hub]'") from None
    return huggingface_hub


def is_repo_id(source: str | Path) -> bool:
    """``user/name`` that is not a path on this machine: the Hub's repo id syntax."""
    return not Path(source).expanduser().exists() and bool(REPO_ID.match(str(source)))


def _network_error(e: BaseException) -> bool:
    return isinstance(e, (ConnectionError, TimeoutError)) or type(e).__module__.split(".")[0] in NETWORK_MODULES


def _explain(e: Exception, what: str, repo_id: str) -> str | None:
    """One line for a failure of the Hub client, or None when it is not one the user can fix."""
    from huggingface_hub import constants, errors

    name, first = type(e).__name__, (str(e).strip().splitlines() or [""])[0]
    if isinstance(e, errors.OfflineModeIsEnabled):
        return f"cannot {what}: HF_HUB_OFFLINE is set; unset it to reach the Hub"
    if isinstance(e, errors.LocalTokenNotFoundError):
        return f"cannot {what}: no Hub token; log in with `hf auth login` or set HF_TOKEN"
    if isinstance(e, errors.GatedRepoError):
        return f"cannot {what}: {repo_id!r} is gated; accept its terms on the Hub with the account of your token"
    if isinstance(e, errors.RepositoryNotFoundError):
        return (f"cannot {what}: no model repo {repo_id!r} on the Hub, or it is private and your token "
                "(HF_TOKEN, `hf auth login`) cannot read it")
    if isinstance(e, errors.RevisionNotFoundError):
        return f"cannot {what}: {first}"
    if isinstance(e, errors.LocalEntryNotFoundError):  # offline, or online and the Hub unreachable
        if constants.HF_HUB_OFFLINE:
            return (f"cannot {what}: {repo_id!r} is not in the Hub cache ({constants.HF_HUB_CACHE}) and "
                    "HF_HUB_OFFLINE is set; download it once with the network, or give an export folder")
        return (f"cannot {what}: the Hub ({constants.ENDPOINT}) cannot be reached and {repo_id!r} is not in the "
                "cache; check the network, or give an export folder")
    if isinstance(e, errors.HfHubHTTPError):
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 403):
            return (f"cannot {what}: the Hub refused your token (HTTP {status}); log in with `hf auth login` or "
                    f"set HF_TOKEN to a token that may write to {repo_id!r}")
        return f"cannot {what}: the Hub answered {first}"
    if _network_error(e):
        return (f"cannot {what}: the Hub ({constants.ENDPOINT}) cannot be reached ({name}: {first}); check the "
                "network, or write the folder with `genlab export RUN --format hub -o DIR` and upload it later")
    return None


@contextmanager
def _one_line(what: str, repo_id: str) -> Iterator[None]:
    """A failure of the Hub client the user can fix (:func:`_explain`) -> HubError; anything else as it is."""
    try:
        yield
    except Exception as e:
        message = _explain(e, what, repo_id)
        if message is None:
            raise
        raise HubError(message) from None


def download(repo_id: str, revision: str | None = None) -> Path:
    """A Hub repo's export files in the local Hub cache (downloaded on first use) -> the snapshot folder."""
    hub = _hub()
    with _one_line(f"load {repo_id!r}", repo_id):
        path = hub.snapshot_download(repo_id, revision=revision, allow_patterns=LOAD_PATTERNS,
                                     library_name="genlab", library_version=__version__)
    return Path(path)


def load_generator(source: str | Path, device: str = "auto", revision: str | None = None) -> ExportedGenerator:
    """An export folder or a Hub repo id (``user/name``, through ``huggingface_hub``'s download and cache;
    ``HF_HUB_OFFLINE=1`` uses the cache only) -> the generator, on ``device`` (auto: CUDA, then MPS, then the
    CPU). ``revision``: a branch, tag or commit of the repo."""
    if is_repo_id(source):
        return load_folder(download(str(source), revision), device)
    return load_folder(source, device)


def push_to_hub(run_dir: str | Path | RunDir, repo_id: str, checkpoint: str = "last", private: bool | None = None,
                revision: str | None = None, commit_message: str | None = None, log=print) -> str:
    """Export ``run_dir``'s generator in the Hub layout (card included) and upload it to the model repo
    ``repo_id`` (created when missing; ``private`` sets the visibility of a new repo) on branch ``revision``
    (default main; created when missing) -> the URL of the commit."""
    if not REPO_ID.match(repo_id):
        raise HubError(f"{repo_id!r} is not a Hub repo id; use USER/NAME (letters, digits, '-', '_', '.')")
    hub = _hub()
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:  # before the export: it would be for nothing
        raise HubError(f"cannot push to {repo_id!r}: HF_HUB_OFFLINE is set; unset it to reach the Hub, or write "
                       "the folder with `genlab export RUN --format hub -o DIR`")
    RunDir.of(run_dir).require()
    api = hub.HfApi(library_name="genlab", library_version=__version__)
    what = f"push to {repo_id!r}"
    with _one_line(what, repo_id):  # the repo first: no network or no token fails before any export work
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None:  # a branch of its own (e.g. one per experiment): created from main when new
            api.create_branch(repo_id, branch=revision, exist_ok=True)
    tmp = make_temp_dir(Path(tempfile.gettempdir()), prefix="genlab-push-")
    try:
        folder = export_generator(run_dir, tmp / "export", checkpoint=checkpoint, format="hub", repo_id=repo_id)
        log(f"exported to a temporary folder; uploading to {repo_id}")
        with _one_line(what, repo_id):
            info = api.upload_folder(repo_id=repo_id, folder_path=folder, revision=revision,
                                     commit_message=commit_message or f"genlab {__version__}: export of "
                                                                      f"{Path(RunDir.of(run_dir).path).name}")
    finally:
        remove_created(tmp, None)  # the temporary folder this call made
    return str(getattr(info, "commit_url", info))

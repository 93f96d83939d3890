"""The reporting tests' helpers (gan_run and vae_run are in tests/conftest.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def _load_helper(name: str):
    """Import a helper module that sits next to this file (tests are imported with --import-mode=importlib)."""
    import importlib.util

    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"genlab_tests_reporting_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def with_eval():
    """with_eval(src_run, dst, fids) -> a copy of the run with eval records and an eval.json."""
    return _load_helper("report_helpers").with_eval


@pytest.fixture(scope="session")
def inspect_page():
    """inspect_page(binary, profile_dir, url, width) -> facts and problems of a page in headless Chromium."""
    return _load_helper("chromium_cdp").inspect_page


# The analysis tests write artifacts (RUN/analysis/..., eval.json) into the shared runs, and the report reuses
# artifacts: the reporting tests get copies of the trained runs without them, so test order does not matter.
_AS_TRAINED = shutil.ignore_patterns("analysis", "eval.json")
@pytest.fixture(scope="session")
def gan_run(gan_run, tmp_path_factory) -> Path:
    return Path(shutil.copytree(gan_run, tmp_path_factory.mktemp("report_gan") / "run", ignore=_AS_TRAINED))


@pytest.fixture(scope="session")
def vae_run(vae_run, tmp_path_factory) -> Path:
    return Path(shutil.copytree(vae_run, tmp_path_factory.mktemp("report_vae") / "run", ignore=_AS_TRAINED))

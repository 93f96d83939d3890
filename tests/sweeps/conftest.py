"""A real PostgreSQL server for the search tests: Debian's ``postgresql`` package, started by the test itself in a
temporary data folder as the ``postgres`` user (the server refuses to run as root), listening on a Unix socket
only, stopped and removed at teardown. Missing package: the tests fail with the install command (`.ci/run`
installs it)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE_HINT = "PostgreSQL is not installed: apt-get install postgresql (as root; .ci/run does it before make test)"


def pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        pytest.fail(PACKAGE_HINT)
    return found[-1].parent


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """``postgresql://postgres@/genlab?host=<socket folder>``: a server of our own with database ``genlab``."""
    bin_dir = pg_bin()
    as_user: dict = {}
    # a short folder of its own: the socket path must stay under ~107 bytes, and the server's user must own it
    base = Path(tempfile.mkdtemp(prefix="genlab-pg-"))
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    data = base / "data"

    def run(*args: str) -> None:
        subprocess.run([str(bin_dir / args[0]), *args[1:]], check=True, capture_output=True, timeout=120, cwd=base,
                       **as_user)

    try:
        run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        run("pg_ctl", "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60", "-o",
            f"-k {base} -c listen_addresses='' -c fsync=off -c full_page_writes=off", "start")
        run("createdb", "-h", str(base), "-U", "postgres", "genlab")
        yield f"postgresql://postgres@/genlab?host={base}"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60, cwd=base, **as_user)
        shutil.rmtree(base, ignore_errors=True)


TINY_RECIPE = """name: tiny
data: {{name: fashion-mnist, root: {root}, verify: false, resolution: 28, limit: 64}}
model: {{name: dcgan, latent_dim: 8, hidden_dim: 8}}
train: {{epochs: {epochs}, batch_size: 32, channels_last: "false", threads: 1}}
log: {{every_steps: 2, tensorboard: false, num_samples: 16, progress: false}}
eval: {{features: classifier, num_samples: 32}}
"""


@pytest.fixture(scope="module")
def search_world(tiny_fmnist, classifier_cache_28, tmp_path_factory) -> dict:
    """A folder with tiny recipes (2 steps per epoch, 32 evaluated samples; ``tiny.yaml`` 2 epochs, ``slow.yaml``
    4) and a cache holding the classifier features, plus the environment for `genlab` subprocesses."""
    folder = tmp_path_factory.mktemp("search")
    for name, epochs in (("tiny", 2), ("slow", 4)):
        (folder / f"{name}.yaml").write_text(TINY_RECIPE.format(root=tiny_fmnist, epochs=epochs))
    cache = folder / "cache"
    shutil.copytree(classifier_cache_28, cache)
    env = {**os.environ, "GENLAB_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
           "COLUMNS": "400"}  # Rich wraps at COLUMNS: one log line per line
    return {"folder": folder, "cache": cache, "env": env}

"""scripts/test_setup.sh, `make test`'s first step: every system package the tests need is there, or it is
installed (root with apt), or the script stops with one line naming the package and the install command.

The refusals are tested for real without uninstalling anything: a package list (read from stdin) holding a
package whose check fails, run as an unprivileged user (setpriv to nobody when the tests run as root) or with a
PATH that has no apt-get."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "test_setup.sh"
BASH = shutil.which("bash")
GHOST = "genlab-test-no-such-package"
LIST = f"{GHOST}  test -e /nonexistent/genlab-test\nchromium  test -x /usr/bin/chromium\n"


def run(args: list[str], stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60, env=env)


def test_every_package_present_does_nothing():
    # make test ran this script before the tests: the packages are installed, so it passes silently
    assert Path("/usr/bin/chromium").is_file() and Path("/usr/share/datasets/fashion-mnist").is_dir()
    r = run([BASH, str(SCRIPT)])
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r


def test_missing_package_without_root_stops_with_one_line():
    as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    r = run([*as_user, BASH, str(SCRIPT), "-"], stdin=LIST)
    assert r.returncode == 1 and r.stdout == "", r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert GHOST in lines[0] and f"apt-get install -y {GHOST}" in lines[0] and "chromium" not in lines[0], lines


def test_missing_package_without_apt_stops_with_one_line(tmp_path):
    bin_dir = tmp_path / "bin"  # bash and cat only: the script sees no apt-get
    bin_dir.mkdir()
    for tool in ("bash", "cat", "id"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    assert shutil.which("apt-get", path=str(bin_dir)) is None
    r = run([str(bin_dir / "bash"), str(SCRIPT), "-"], stdin=LIST, env={"PATH": str(bin_dir)})
    assert r.returncode == 1 and r.stdout == "", r
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no apt-get" in lines[0] and f"apt-get install -y {GHOST}" in lines[0], r.stderr


def test_make_test_runs_the_setup_before_lint_and_pytest():
    # a dry run (-n) against a venv that does not exist lists every step, the venv's build included
    r = run(["make", "-n", "--no-print-directory", "-C", str(REPO), "test", "VENV=/nonexistent-venv-for-dry-run"])
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    setup = next(i for i, line in enumerate(lines) if "scripts/test_setup.sh" in line)
    pytest = next(i for i, line in enumerate(lines) if "-m pytest" in line)
    assert setup == 0 and "-m venv" in "\n".join(lines[setup:pytest]), lines  # first, even before the venv


def test_ci_runs_the_readme_test_command_only():
    body = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert body[-1] == "make test" and "apt-get" not in "\n".join(body), body


def test_make_installs_torch_from_torch_index_when_given():
    # the README's way to force a build: TORCH_INDEX on the first make command reaches scripts/install_torch.sh
    # (what the script then does with it: tests/test_packaging.py)
    cpu = "https://download.pytorch.org/whl/cpu"
    args = ["make", "-n", "--no-print-directory", "-C", str(REPO), "install", "VENV=/nonexistent-venv-for-dry-run"]
    plain, with_index = run(args), run([*args, f"TORCH_INDEX={cpu}"])
    assert plain.returncode == with_index.returncode == 0, (plain, with_index)
    torch_line = [line for line in plain.stdout.splitlines() if "install_torch.sh" in line]
    assert len(torch_line) == 1 and 'TORCH_INDEX=""' in torch_line[0], plain.stdout
    assert f'TORCH_SPEC="torch==2.13.0" TORCH_INDEX="{cpu}" bash scripts/install_torch.sh' in with_index.stdout, \
        with_index.stdout

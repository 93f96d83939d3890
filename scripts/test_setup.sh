#!/usr/bin/env bash
# `make test`'s first step: the system packages the tests need. Each one missing is installed with apt (as root,
# the way `make data` gets Fashion-MNIST); otherwise this stops before the tests with one line naming the
# package(s) and the command that installs them. Nothing is done when every check passes.
#
#   scripts/test_setup.sh [LIST]    LIST: a file in PACKAGES' format instead of PACKAGES (-: read it from stdin)
set -euo pipefail

# One package a line, `PACKAGE  CHECK...`: CHECK is a shell command that succeeds once the package is installed.
# A new system package for the tests is one more line here.
PACKAGES='
dataset-fashion-mnist  test -d /usr/share/datasets/fashion-mnist
chromium               test -x /usr/bin/chromium
postgresql             compgen -G "/usr/lib/postgresql/*/bin/initdb"
'
if [ "${1:-}" = - ]; then
  PACKAGES=$(cat)
elif [ -n "${1:-}" ]; then
  [ -r "$1" ] || { echo "error: cannot read the package list $1" >&2; exit 2; }
  PACKAGES=$(cat "$1")
fi

missing() {  # the packages of the list whose check fails, one a line
  local pkg check
  while read -r pkg check; do
    case "$pkg" in ''|'#'*) continue ;; esac
    bash -c "$check" >/dev/null 2>&1 </dev/null || echo "$pkg"
  done <<<"$PACKAGES"
}

mapfile -t need < <(missing)
[ "${#need[@]}" -eq 0 ] && exit 0
cmd="apt-get install -y ${need[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: the tests need ${need[*]} (not installed, and there is no apt-get here): install ${need[*]} with" \
       "this system's package manager (on Debian: $cmd), then run make test again" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "error: the tests need ${need[*]} (not installed): run \`sudo $cmd\` (or make test as root, which" \
       "installs them), then run make test again" >&2
  exit 1
fi
echo "make test: installing ${need[*]} for the tests ($cmd)"
export DEBIAN_FRONTEND=noninteractive
# a fresh machine has no package lists yet: install, else update the lists once and install again
apt-get install -y -q --no-install-recommends "${need[@]}" ||
  { apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"; } ||
  { echo "error: \`$cmd\` failed (apt's messages above); the tests need ${need[*]}" >&2; exit 1; }
mapfile -t still < <(missing)
if [ "${#still[@]}" -gt 0 ]; then
  echo "error: ${still[*]} installed, but its check still fails (scripts/test_setup.sh); the tests need it" >&2
  exit 1
fi

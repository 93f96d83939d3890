#!/usr/bin/env bash
# `make demo`: genlab's fastest good recipe (configs/demo_fashion_mnist_dcgan.yaml) on Fashion-MNIST, from a fresh
# clone to a grid, its classifier FID and class coverage, and the HTML report, printing how long each stage took.
# On a first run the FID classifier (genlab's yardstick for the dataset, trained once and cached) trains on one
# core while the GAN trains on the other; the GAN's budget is a number of steps, so its result is the same either way.
set -euo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
RUN=${DEMO_RUN:-runs/demo}
RECIPE=configs/demo_fashion_mnist_dcgan.yaml
GENLAB=.venv/bin/genlab

names=() secs=()
now() { date +%s.%N; }
timed() {  # timed NAME CMD...: run CMD and keep how long it took
  local name=$1 t0 rc=0
  shift
  t0=$(now)
  "$@" || rc=$?
  names+=("$name") secs+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')")
  return "$rc"
}

start=$(now)
echo "== install (the venv in .venv; instant when it is up to date)"
timed install "$MAKE" -s install
echo "== data (Fashion-MNIST)"
timed data "$MAKE" -s data

clf_pid=
threads=0  # auto: every core for the GAN
mkdir -p "$(dirname "$RUN")"
if ! "$GENLAB" features train-classifier fashion-mnist --cached-only >/dev/null 2>&1; then
  threads=1
  echo "== the FID classifier for Fashion-MNIST is not cached yet: it trains once on one core while the GAN trains" \
       "on the other (log: $RUN.classifier.log)"
  "$GENLAB" features train-classifier fashion-mnist >"$RUN.classifier.log" 2>&1 &
  clf_pid=$!
fi
echo "== training: $RECIPE -> $RUN"
timed training "$GENLAB" train "$RECIPE" --run-dir "$RUN" --overwrite "train.threads=$threads" || {
  [ -z "$clf_pid" ] || kill "$clf_pid" 2>/dev/null || true
  exit 1
}

evaluation() {
  if [ -n "$clf_pid" ] && ! wait "$clf_pid"; then
    echo "error: training the FID classifier failed; its log is $RUN.classifier.log" >&2
    return 1
  fi
  "$GENLAB" eval "$RUN" --metrics fid,coverage --features classifier
}
echo "== evaluation: classifier FID and class coverage of 10,000 samples"
timed evaluation evaluation
echo "== report"
timed report "$GENLAB" report "$RUN" -o "$RUN/report.html"

total=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
line=""
for i in "${!names[@]}"; do line+="${line:+, }${names[$i]} ${secs[$i]} s"; done
echo
echo "demo done in $((total / 60)) min $((total % 60)) s: $line${clf_pid:+ (the FID classifier trained alongside)}"
.venv/bin/python - "$RUN" <<'PY'
import json, pathlib, sys
run = pathlib.Path(sys.argv[1])
ev = json.loads((run / "eval.json").read_text())
cov = ev["coverage"]
grid = sorted((run / "samples").glob("epoch_*.png"))[-1]
print(f"classifier FID {ev['fid']:.2f}; class coverage {cov['classes_covered']}/{cov['classes_in_real']} classes, "
      f"KL to the real class histogram {cov['kl_to_real']:.4f}")
print(f"grid: {grid}; report: {run / 'report.html'}")
PY

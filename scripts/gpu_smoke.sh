#!/usr/bin/env bash
# The first GPU run, in one command (issue 31): every model family trains a few steps with the auto speed settings
# (bf16/fp16, torch.compile, TF32, channels_last), resumes from a mid-run checkpoint, and is evaluated; the exact
# resume is checked where genlab claims it (the CPU defaults); with 2+ GPUs a 2-rank torchrun trains under a
# wall-clock budget with a cosine schedule. Prints a pass/fail table; exits 1 if anything failed.
#
#   scripts/gpu_smoke.sh [OUT]        # OUT: a scratch folder (default runs/gpu_smoke; replaced when this
#                                     # script made it, refused otherwise)
#
# Environment: GENLAB (default .venv/bin/genlab), DATA_ROOT (Fashion-MNIST's IDX files; default the Debian copy at
# /usr/share/datasets/fashion-mnist when present, else genlab's download), FAMILIES (default every model; e.g.
# FAMILIES="dcgan wgan-gp r3gan vae-gan"), STEPS (default 10: each family trains 2*STEPS steps, the resume
# continues from STEPS), DEVICE (default cuda; DEVICE=cpu runs the same checks on the CPU, to check this script
# where there is no GPU). Every run's output is in OUT/logs/. Expect ~1-2 minutes per family on a first run (most
# of it torch.compile; the inductor cache makes later runs faster) and ~2 minutes for the FID classifier, trained
# once and cached.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu_smoke}
GENLAB=${GENLAB:-.venv/bin/genlab}
PY=${PY:-$(dirname "$GENLAB")/python}
[ -x "$PY" ] || PY=python3
STEPS=${STEPS:-10}
DEVICE=${DEVICE:-cuda}
DATA_ROOT=${DATA_ROOT:-}
[ -z "$DATA_ROOT" ] && [ -d /usr/share/datasets/fashion-mnist ] && DATA_ROOT=/usr/share/datasets/fashion-mnist

if [ "$DEVICE" = cuda ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "error: no CUDA GPU is visible to $PY (torch.cuda.is_available() is False); run this on a GPU machine" \
       "(DEVICE=cpu checks the script itself on the CPU)" >&2
  exit 2
fi
if [ -e "$OUT" ] && [ ! -e "$OUT/.gpu-smoke" ]; then  # replace only a folder this script made
  echo "error: $OUT exists and is not a gpu_smoke folder; give another OUT" >&2
  exit 2
fi
rm -rf "$OUT"
mkdir -p "$OUT/logs"
touch "$OUT/.gpu-smoke"
GPUS=0
[ "$DEVICE" = cuda ] && GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())")
"$PY" -c "
import torch
print(f'torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s) visible')
for i in range(torch.cuda.device_count()):
    major, minor = torch.cuda.get_device_capability(i)
    print(f'  cuda:{i} {torch.cuda.get_device_name(i)} (compute capability {major}.{minor})')
"
FAMILIES=${FAMILIES:-$("$PY" -c "from genlab.models import MODELS; print(' '.join(MODELS.names()))")}

# compare.py A B [--exact]: max |a - b| over the networks of two runs' last checkpoints (same step required)
cat >"$OUT/compare.py" <<'PYTHON'
import sys

from genlab.rundir import RunDir
from genlab.checkpoint import load_checkpoint

a, b = (load_checkpoint(RunDir.of(p).checkpoint_path("last"), "cpu") for p in sys.argv[1:3])
if a["step"] != b["step"]:
    sys.exit(f"the runs ended at steps {a['step']} and {b['step']}")
diff = max((x.float() - y.float()).abs().max().item() for n in a["nets"] for x, y in
           zip(a["nets"][n].values(), b["nets"][n].values()) if x.is_floating_point())
print(f"step {a['step']}: largest weight difference {diff:.3g}")
if "--exact" in sys.argv and diff != 0:
    sys.exit("the resumed run is not bit-identical to the uninterrupted one")
PYTHON

names=() results=() secs=() notes=()
record() {  # record NAME RESULT SECONDS NOTE
  names+=("$1") results+=("$2") secs+=("$3") notes+=("$4")
  printf '%-26s %-5s %5ss  %s\n' "$1" "$2" "$3" "$4"
}
check() {  # check NAME CMD...: run CMD (output in OUT/logs/NAME.log) and record PASS/FAIL with its last line
  local name=$1 t0 rc=0 note
  shift
  t0=$(date +%s)
  "$@" >"$OUT/logs/${name//:/_}.log" 2>&1 || rc=$?
  note=$(grep -v '^[[:space:]]*$' "$OUT/logs/${name//:/_}.log" | tail -n 1 | cut -c1-110)
  if [ "$rc" = 0 ]; then
    record "$name" PASS $(($(date +%s) - t0)) "$note"
  else
    record "$name" FAIL $(($(date +%s) - t0)) "exit $rc: $note"
  fi
  return "$rc"
}
common() {  # common FAMILY [DEVICE]: the overrides of every run (a critic's own loss; a width tensor cores like)
  local loss
  loss=$("$PY" -c "from genlab.models import MODELS; print((MODELS.get('$1').losses or ('bce',))[0])")
  echo "model.name=$1 train.loss=$loss data.name=fashion-mnist data.resolution=28 data.limit=2048" \
       "${DATA_ROOT:+data.root=$DATA_ROOT} model.hidden_dim=32 train.batch_size=64 train.epochs=100" \
       "log.every_steps=5 log.sample_every=0 log.progress=false log.tensorboard=false eval.every=0" \
       "train.device=${2:-$DEVICE}"
}
speed() {  # what auto became for a run: precision and the compiled networks
  "$PY" -c "import json; r = json.load(open('$1/runtime.json'))
print(r['device'], r['precision'], 'compiled ' + ','.join(r.get('compiled', [])) if r['compile'] else 'eager')"
}

for F in $FAMILIES; do
  straight=$OUT/$F/straight half=$OUT/$F/resumed
  # shellcheck disable=SC2046  # common's words are separate overrides
  if check "train:$F" "$GENLAB" train $(common "$F") train.max_steps=$((2 * STEPS)) --run-dir "$straight"; then
    notes[${#notes[@]} - 1]="$(speed "$straight")"
    # on a GPU close, not bit-identical (TF32, autotuning, atomics: docs/scaling.md); the note says how close
    check "resume:$F" bash -c "'$GENLAB' train $(common "$F") train.max_steps=$STEPS --run-dir '$half' &&
      '$GENLAB' train --resume '$half' train.max_steps=$((2 * STEPS)) && '$PY' '$OUT/compare.py' '$straight' '$half'"
    check "eval:$F" "$GENLAB" eval "$straight" --metrics fid --features classifier --num-samples 1000 \
      --device "$DEVICE" && notes[${#notes[@]} - 1]="$(grep -m1 -o 'FID [0-9.]*' "$OUT/logs/eval_$F.log")"
  fi
done

# where genlab claims an exact resume (the CPU defaults): bit-identical weights after a resume
cpu=$OUT/cpu
check "resume-exact:cpu" bash -c "'$GENLAB' train $(common dcgan cpu) train.max_steps=$((2 * STEPS)) \
  --run-dir '$cpu/straight' && '$GENLAB' train $(common dcgan cpu) train.max_steps=$STEPS --run-dir '$cpu/resumed' \
  && '$GENLAB' train --resume '$cpu/resumed' train.max_steps=$((2 * STEPS)) &&
  '$PY' '$OUT/compare.py' '$cpu/straight' '$cpu/resumed' --exact"

# the issue's second reproduction: 2 ranks, a wall-clock budget and a cosine schedule (gloo with DEVICE=cpu)
if [ "$GPUS" -ge 2 ] || [ "$DEVICE" = cpu ]; then
  # shellcheck disable=SC2046
  check "torchrun:2-ranks" "$PY" -m torch.distributed.run --standalone --nproc_per_node=2 -m genlab train \
    $(common dcgan) train.minutes=0.5 train.lr_schedule=cosine --run-dir "$OUT/ddp"
else
  record "torchrun:2-ranks" SKIP 0 "$GPUS GPU(s) visible: needs 2"
fi

echo
echo "| check | result | seconds | note |"
echo "|---|---|---|---|"
failed=0
for i in "${!names[@]}"; do
  echo "| ${names[$i]} | ${results[$i]} | ${secs[$i]} | ${notes[$i]} |"
  [ "${results[$i]}" = FAIL ] && failed=$((failed + 1))
done
echo
echo "$failed failed of ${#names[@]} checks; logs in $OUT/logs/"
[ "$failed" = 0 ]

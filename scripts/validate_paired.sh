#!/usr/bin/env bash
# Validation of the paired design against a long isolated design, on both zoo models (docs/paired.md).
#   scripts/validate_paired.sh [ISOLATED_PER_SIDE=30] [LOOKS=10,20,40]
# For each model: builds the default variants (cached), then `odbench compare fp32 int8-dyn --isolated N`:
# the paired ratio with its 95% CI, the isolated ratio from N fresh processes a side, whether they agree,
# and each member's paired median against its isolated median (the pairing cost). Prints its wall time.
set -euo pipefail
N=${1:-30}
LOOKS=${2:-10,20,40}
ODB=${ODBENCH:-.venv/bin/odbench}
start=$(date +%s)
echo "load at start: $(cat /proc/loadavg)"
for pair in "ctr-ml100k rank-200" "minilm-l6-query query"; do
  set -- $pair
  $ODB compress --model "$1" >/dev/null
  echo "== $1 ($2): fp32 vs int8-dyn, paired looks $LOOKS, isolated $N a side"
  $ODB compare "$1/fp32" "$1/int8-dyn" --scenario "$2" --looks "$LOOKS" --isolated "$N" \
    --out "results/paired-validation/$1" || true   # exit 1/3 are verdicts, not failures
done
echo "load at end: $(cat /proc/loadavg)"
echo "wall time: $(( $(date +%s) - start )) s"

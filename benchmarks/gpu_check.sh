#!/usr/bin/env bash
# The checks a lent GPU gets (issue #18, 7(c)), in one script under 8 minutes:
#
#   1. ResNet-20 images/s, growdsl's loop against a hand-written loop with the same settings, in
#      fp32 and bf16, uncompiled and compiled (goals: growdsl >= 0.95 of hand-written; bf16 >= 1.5x
#      fp32), and channels_last against contiguous in bf16: benchmarks/resnet_throughput.py
#   2. a split step's and a firefly step's cost in epochs on the GPU: benchmarks/split_cost.py,
#      benchmarks/firefly_cost.py
#   3. `growdsl run --device cuda` of every growth method's spec and every search's spec (shortened
#      with --set), plus split_cnn with precision bf16, compile and channels_last, and with fp16;
#      each must finish with exit code 0
#   4. a compile and a recompile after growth against a step and an epoch: benchmarks/compile_cost.py
#   5. a small population placed on cuda:0, two members per GPU (issue #19, 5):
#      benchmarks/gpu_population.py (`growdsl check` states the concurrency; every member trains on
#      cuda:0, two at once); --dry runs the same population in 2 CPU workers
#
# Every section has its own time limit, and the whole script stops at TOTAL seconds (default 470:
# under 8 minutes with the machine's start-up outside it). A section that fails or runs out of
# time is reported and the script goes on; the summary at the end lists every section's result,
# and the exit code is the number of sections that did not pass.
#
#   benchmarks/gpu_check.sh            # on the GPU (CUDA must be there)
#   benchmarks/gpu_check.sh --dry      # on the CPU with tiny sizes: checks that everything it
#                                      # calls runs (minutes on a 2-core machine, not figures)
#   GPU_CHECK_ONLY=REGEX benchmarks/gpu_check.sh [--dry]   # only the sections whose name matches
#
# Output: a log of each section under $GPU_CHECK_OUT (default a new temporary folder), the tables
# on standard output. Run from the repository root with growdsl importable (python -m growdsl).
set -u

PYTHON=${PYTHON:-python}
TOTAL=${TOTAL:-470}
OUT=${GPU_CHECK_OUT:-$(mktemp -d -t gpu_check.XXXXXX)}
mkdir -p "$OUT"
START=$(date +%s)

if [[ "${1:-}" == "--dry" ]]; then
    DEVICE=cpu
    THROUGHPUT=(--images 16 --batch 8 --rounds 1 --compile none aot_eager)
    SPLIT=(--widths 64 --repeats 1 --samples 64)
    FIREFLY=(--width 16 --repeats 1)
    COMPILE_BACKEND=aot_eager
    EPOCHS=(--set train.epochs=2)  # no growth step at 2 epochs for most specs: the runs only start
    POPULATION=(--dry)
    TOTAL=${TOTAL_DRY:-5400}
    SCALE=${DRY_SCALE:-10}  # the CPU is slower than the GPU: every section's limit times this
else
    DEVICE=cuda
    THROUGHPUT=(--images 10240 --batch 128 --rounds 3 --compile none inductor)
    SPLIT=(--widths 256 1024 --repeats 3)
    FIREFLY=(--width 256 --repeats 3)
    COMPILE_BACKEND=inductor
    EPOCHS=()
    POPULATION=()
    SCALE=1
fi

declare -a RESULTS=()
FAILED=0

# section NAME LIMIT COMMAND...: run COMMAND with at most LIMIT seconds (and never past TOTAL)
section() {
    local name=$1 limit=$(($2 * SCALE))
    shift 2
    [[ -n "${GPU_CHECK_ONLY:-}" && ! "$name" =~ $GPU_CHECK_ONLY ]] && return
    local left=$((TOTAL - ($(date +%s) - START)))
    if ((left < 10)); then
        RESULTS+=("SKIPPED (out of time)  $name")
        FAILED=$((FAILED + 1))
        return
    fi
    ((limit > left)) && limit=$left
    local log="$OUT/$(echo "$name" | tr -c 'A-Za-z0-9_.-' '_').log"
    echo
    echo "## $name  (limit ${limit}s; log $log)"
    local t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
    local rc=$?
    local took=$(($(date +%s) - t0))
    grep -E '^(\||#|torch|digits|[A-Za-z_/.]+: )' "$log" | grep -v '^# *$' | head -40
    if ((rc == 0)); then
        RESULTS+=("ok      ${took}s  $name")
    elif ((rc == 124 || rc == 137)); then
        RESULTS+=("TIMEOUT ${took}s  $name")
        FAILED=$((FAILED + 1))
    else
        RESULTS+=("FAILED  ${took}s  $name (exit $rc; last lines below)")
        tail -5 "$log" | sed 's/^/    /'
        FAILED=$((FAILED + 1))
    fi
}

echo "# gpu_check on $DEVICE, $(date -u '+%Y-%m-%d %H:%M UTC'), logs in $OUT"
"$PYTHON" -c "import torch; print('# torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')"
if [[ "$DEVICE" == cuda ]] && ! "$PYTHON" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "CUDA is not available here: run with --dry for the CPU check" >&2
    exit 2
fi

# 1. throughput: compiled inductor warm-ups dominate (4 compiles of ResNet-20, forward and backward)
# Section limits are for the GPU; --dry multiplies them by SCALE
section "ResNet-20 throughput, fp32 and bf16" 240 \
    "$PYTHON" benchmarks/resnet_throughput.py --device "$DEVICE" --precisions fp32 bf16 "${THROUGHPUT[@]}"

section "ResNet-20 channels_last against contiguous, bf16" 60 \
    "$PYTHON" benchmarks/resnet_throughput.py --device "$DEVICE" --precisions bf16 \
    --memory-formats contiguous channels_last "${THROUGHPUT[@]:0:6}" --compile none

# 2. growth step costs on the device, in epochs
section "split step cost" 45 "$PYTHON" benchmarks/split_cost.py --device "$DEVICE" "${SPLIT[@]}"
section "firefly step cost" 45 "$PYTHON" benchmarks/firefly_cost.py --device "$DEVICE" "${FIREFLY[@]}"

# 3. every method and search on the device
RUNS="$OUT/runs"
run_spec() {  # run_spec NAME SPEC [--set ...]
    local name=$1 spec=$2
    shift 2
    section "run $name" 60 "$PYTHON" -m growdsl run "$spec" --device "$DEVICE" --quiet --force \
        --out "$RUNS/$name" "${EPOCHS[@]}" "$@"
}
run_spec split_mlp specs/split_mlp.grow
run_spec split_cnn specs/split_cnn.grow
run_spec firefly_mlp specs/firefly_mlp.grow
run_spec firefly_cnn specs/firefly_cnn.grow
run_spec firefly_continual specs/firefly_continual.grow
run_spec pathlevel_cell specs/pathlevel_cell.grow
run_spec split_cnn_bf16_compiled specs/split_cnn.grow --set train.precision=bf16 \
    --set train.compile="$COMPILE_BACKEND" --set train.memory_format=channels_last
run_spec split_cnn_fp16 specs/split_cnn.grow --set train.precision=fp16
run_spec random_search specs/random_search.grow --set search.trials=3
run_spec pbt specs/pbt_digits.grow --set search.population=4 --set train.epochs=4
run_spec pathlevel_search specs/pathlevel_search.grow

# 4. a compile and a recompile after growth, against a step and an epoch
section "compile and recompile cost" 120 \
    "$PYTHON" benchmarks/compile_cost.py --spec specs/split_cnn.grow --backend "$COMPILE_BACKEND" --device "$DEVICE"

# 5. a small population on cuda:0, two members at once
section "population on cuda:0, 2 members per GPU" 90 "$PYTHON" benchmarks/gpu_population.py "${POPULATION[@]}"

echo
echo "## summary ($(($(date +%s) - START))s of ${TOTAL}s)"
printf '%s\n' "${RESULTS[@]}"
exit "$FAILED"

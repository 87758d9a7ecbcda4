#!/usr/bin/env bash
# Every GPU check in one run: the `gpu`-marked tests, the parity tests on the GPU backend, the
# three speed benchmarks in their GPU mode, and the main job. Sized for a short GPU lease: each
# section has its own time limit and the whole run a budget; a section that would start after the
# budget is spent is skipped (and says so), so one slow part cannot starve the rest.
#
#   bash benchmarks/gpu_checks.sh [OUT_DIR] [BUDGET_S] [SECTION ...]
#
# OUT_DIR (default /tmp/gpu_checks) gets one log per section; BUDGET_S defaults to 480. With
# SECTION names only those sections run (env tests parity sampler grpo mcts_puct mcts_gumbel
# demo alphazero; the exp_* experiments at the end run only when named). Python is `python3` (the GPU image's, with jax[cuda] and torch); the missing pure-Python
# packages are expected on PYTHONPATH (see BENCHMARKS.md, "GPU"). All sections take about 12
# minutes on an H200, more than one 10-minute call: run them as two calls, e.g.
#   bash benchmarks/gpu_checks.sh OUT 480 env tests sampler grpo
#   bash benchmarks/gpu_checks.sh OUT 480 mcts_puct mcts_gumbel parity demo
#   bash benchmarks/gpu_checks.sh OUT 240 alphazero            (if the lease has time left)
set -u
OUT=${1:-/tmp/gpu_checks}
BUDGET=${2:-480}
shift $(( $# < 2 ? $# : 2 ))
ONLY=" $* "
if ! command -v nvidia-smi > /dev/null && [ -z "${GPU_CHECKS_ON_CPU:-}" ]; then
  echo "gpu_checks.sh: no nvidia-smi here; this script is for a GPU machine" \
    "(GPU_CHECKS_ON_CPU=1 runs it anyway, to try the script itself)" >&2
  exit 2
fi
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# JAX and torch share the card in one process: JAX takes memory as it needs it.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
PY=${PY:-python3}
START=$(date +%s)
SUMMARY=()

section() {  # section NAME LIMIT_S COMMAND...
  local name=$1 limit=$2
  shift 2
  if [ "$ONLY" != "  " ] && [[ "$ONLY" != *" $name "* ]]; then return; fi
  # exp_* sections are experiments for the next profiling session: run only when named.
  if [[ "$name" == exp_* ]] && [[ "$ONLY" != *" $name "* ]]; then return; fi
  local left=$(( BUDGET - ($(date +%s) - START) ))
  if [ "$left" -lt 20 ]; then
    SUMMARY+=("$name: skipped, budget spent")
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $name (limit ${limit} s, $(date -u +%H:%M:%S) UTC)"
  local t0=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  local took=$(( $(date +%s) - t0 ))
  [ "$rc" = 124 ] && SUMMARY+=("$name: TIMED OUT after $took s") || SUMMARY+=("$name: rc=$rc, $took s")
  tail -n "${TAIL:-25}" "$OUT/$name.log"
}

section env 60 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv; \
  $PY -c 'import jax, flax, optax, orbax.checkpoint, chex, torch, transformers, pgx, mctx, trl; \
print(jax.devices(), jax.__version__, flax.__version__, optax.__version__, chex.__version__, \
torch.__version__, torch.cuda.get_device_name(), transformers.__version__, pgx.__version__, trl.__version__)'"
# The checks that need a GPU, with the CPU backend beside it as the reference.
section tests 120 env JAX_PLATFORMS=cuda,cpu $PY -m pytest -q -p no:cacheprovider -m gpu -s tests/gpu
section sampler 210 $PY benchmarks/sampler.py --device=gpu
section grpo 150 $PY benchmarks/grpo_step.py --device=gpu
section mcts_puct 120 $PY benchmarks/mcts.py --nets mlp,conv --batches 1,64,256 --sims 32,128 --repeats 5
section mcts_gumbel 120 $PY benchmarks/mcts.py --variant gumbel --shared --nets mlp,conv \
  --batches 1,64,256 --sims 32,128 --repeats 5
# Parity and search tests on the GPU backend, full fp32 matmuls (XLA's default would use TF32).
# (115 s on the H200 on 2026-11-26; the stacked-layout parity cases added since need more.)
section parity 160 env JAX_PLATFORMS=cuda,cpu JAX_DEFAULT_MATMUL_PRECISION=highest \
  $PY -m pytest -q -p no:cacheprovider -n 4 -m "not slow" tests/models/test_hf_parity.py \
  tests/sampling tests/mcts/test_parity.py tests/loops/test_rlvr_smoke.py
# The README's main job (GRPO on arithmetic), as a user would run it on a GPU.
section demo 150 $PY experiments/train.py --workdir=/tmp/gpu_demo_run --overwrite
# AlphaZero self-play (ours, mctx, ours with subtree reuse) and training speed, full sizes.
section alphazero 180 $PY benchmarks/alphazero.py

# Experiments (only when named), each with its baseline in the same process tree:
# - XLA command buffers for loops: both searches spend 170-950 us per simulation on the H200 against
#   17-67 us of network and game step, so per-kernel and per-loop-iteration costs dominate.
MCTS_CELLS="--nets mlp --batches 1,64 --sims 32 --repeats 5"
section exp_mcts_cmdbuf 240 bash -c "$PY benchmarks/mcts.py $MCTS_CELLS; \
  $PY benchmarks/mcts.py --variant gumbel $MCTS_CELLS; \
  export XLA_FLAGS=--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,CUDNN,WHILE,CONDITIONAL; \
  echo \"with XLA_FLAGS=\$XLA_FLAGS\"; \
  $PY benchmarks/mcts.py $MCTS_CELLS; $PY benchmarks/mcts.py --variant gumbel $MCTS_CELLS"
# - Tree walks taking 2 or 4 levels per loop iteration (`walk_unroll`): the same search with a
#   quarter to a half of the descent and backup loop iterations (each a device-to-host predicate
#   copy on a GPU); neutral to slower on the CPU. Timed alongside walk_unroll 1 and mctx.
#   The state-row read of a simulation sits in a conditional on the CPU only (on a GPU a
#   conditional is one more predicate copy per simulation); the last line is the GPU with it.
UNROLL_CELLS="--nets mlp,conv --batches 1,256 --sims 32,128 --repeats 5 --walk-unroll 1,2,4"
section exp_mcts_unroll 360 bash -c "$PY benchmarks/mcts.py $UNROLL_CELLS; \
  $PY benchmarks/mcts.py --variant gumbel $UNROLL_CELLS; \
  $PY benchmarks/mcts.py --variant gumbel --rows-read cond --nets mlp,conv --batches 1,256 --sims 32 --repeats 5"
# - The sampler's GPU compile time (6-34 s wall against 3-5 s on the CPU): autotuning off.
section exp_sampler_autotune 240 bash -c "$PY benchmarks/sampler.py --device=gpu --batches 64; \
  XLA_FLAGS=--xla_gpu_autotune_level=0 $PY benchmarks/sampler.py --device=gpu --batches 64"

echo "=== summary ($(( $(date +%s) - START )) s of a ${BUDGET} s budget)"
printf '%s\n' "${SUMMARY[@]}"

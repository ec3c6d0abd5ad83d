#!/usr/bin/env bash
# Issue 15's GPU check (target 5), one prepared run on a borrowed H100/H200:
#   here:     bash scripts/gpu/pack.sh
#   device:   run(command: "bash scripts/gpu/check.sh", carry: [".gpu", ".gl"], timeout_s: 580)
# Writes to $OUT (and prints), the target's figures first, each stage under a timeout of its own so a slow
# one leaves the rest their time (the stages' timeouts add up to 540 s):
#   1. the GPT-2-124M-sized training step, PyTorch fp32 with TF32 off (torch.json) and ours
#      (`bench.ts --gpt2`, gpt2.log) on the same GPU in the same run (the target: within 2×);
#   2. matmul 1024³–4096³: cuBLAS fp32, TF32 off (cublas.json), the engine's kernel table with every version
#      (kernels.log) and the two side by side (matmul.txt, scripts/gpu/matmul-compare.ts);
#   3. the engine's tests on the GPU adapter (tests.log; scripts/gpu/kernel-tests.sh: every kernel family
#      against the float64 reference and the PyTorch fixtures, the whole model, windows and shards);
#   4. the training table, quick (training.txt).
# Issue 19's recipe is a call of its own (both would not fit one 10-minute command):
#   device:   run(command: "RECIPE=1 bash scripts/gpu/check.sh", carry: [".gpu", ".gl"], timeout_s: 540)
# scripts/gpu/recipe.ts: random-weight GPT-2 124M → GPT-2-medium 355M on an imported JSONL task, its time
# per step and end to end in $OUT/recipe.json.
set -u
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export DENO_DIR=$PWD/.gpu/cache DENO_NO_UPDATE_CHECK=1 XDG_CACHE_HOME=/tmp/cache
xz -dc .gpu/deno.xz >/tmp/deno && chmod +x /tmp/deno
[ -d .gpu/cache ] || tar -C .gpu -xJf .gpu/cache.tar.xz
flags=(-A --no-check --lock=.gpu/deno.lock --cached-only --config .gpu/deno.json)
source scripts/gpu/kernel-tests.sh
nvidia-smi -L | tee "$OUT/gpu.txt"
run_recipe() {
  echo "== issue 19's recipe: GPT-2 124M → GPT-2-medium 355M (random weights) on an imported JSONL task"
  timeout 480 /tmp/deno run "${flags[@]}" scripts/gpu/recipe.ts --out "$OUT" >"$OUT/recipe.log" 2>&1
  echo "recipe exit $?"
  tr '\r' '\n' <"$OUT/recipe.log" | grep -v '█' | tail -20
}
if [ "${RECIPE:-0}" = 1 ]; then
  run_recipe
  exit 0
fi
echo "== 1. GPT-2-124M-sized step: PyTorch fp32 (TF32 off), then ours, on the same GPU"
# The peer's AdamW settings are the engine's own (DEFAULT_ADAMW in kernels/config.ts).
adamw=$(/tmp/deno eval "${flags[@]:1}" \
  'const { DEFAULT_ADAMW } = await import("./kernels/config.ts"); console.log(JSON.stringify(DEFAULT_ADAMW))')
timeout 90 python3 kernels/bench/peers/torch-gpt.py --gpt2 --adamw "$adamw" | tee "$OUT/torch.json"
timeout 120 /tmp/deno run "${flags[@]}" scripts/bench.ts --gpt2 --json 2>&1 | tee "$OUT/gpt2.log" | tail -8
echo "== 2. matmul 1024³–4096³: cuBLAS fp32 (TF32 off), the engine's kernel table (every version), side by side"
timeout 60 python3 kernels/bench/peers/torch-gpt.py --matmul 1024,2048,4096 | tee "$OUT/cublas.json"
timeout 90 /tmp/deno run "${flags[@]}" scripts/bench.ts --kernels-only --json >"$OUT/kernels.log" 2>&1
echo "kernel table exit $?"
/tmp/deno run "${flags[@]}" scripts/gpu/matmul-compare.ts "$OUT/kernels.log" "$OUT/cublas.json" |
  tee "$OUT/matmul.txt"
echo "== 3. the engine's tests on the GPU adapter"
timeout 150 /tmp/deno test "${flags[@]}" "${KERNEL_TESTS[@]}" >"$OUT/tests.log" 2>&1
echo "tests exit $?"
grep -E "passed|FAILED" "$OUT/tests.log" | tail -5
echo "== 4. the training table (quick)"
timeout 30 /tmp/deno run "${flags[@]}" scripts/bench.ts --training-only --quick 2>&1 | tee "$OUT/training.txt" | tail -40

#!/usr/bin/env bash
# Prepares what the GPU check (scripts/gpu/check.sh, issue 15's target 5) needs on a borrowed H100/H200,
# which has no registry: run here once, then on the device `bash scripts/gpu/check.sh` with carry
# [".gpu", ".gl"].
#   .gpu/deno.xz     this machine's Deno 2.9.6 binary, xz-compressed (~31 MB)
#   .gpu/deno.json   the repository's import map (the kernels need webgpu-utils; issue 19's recipe,
#                    scripts/gpu/recipe.ts, also zod, drizzle, PGlite and gpt-tokenizer's GPT-2 table)
#   .gpu/deno.lock   the lockfile those packages were resolved with
#   .gpu/cache.tar.xz a DENO_DIR with those packages, xz-compressed (~100 MB unpacked), so the device
#                    runs with --cached-only
#   .gl/*.deb        the Vulkan loader (libvulkan1), unpacked there with dpkg -x
# Both folders are listed in .git/info/exclude; together they stay under the 64 MiB that travels.
set -euo pipefail
cd "$(dirname "$0")/../.."
for dir in .gpu .gl; do grep -qx "/$dir/" .git/info/exclude || echo "/$dir/" >>.git/info/exclude; done
rm -rf .gpu && mkdir -p .gpu .gl
# The Deno that runs here: one on PATH, else the one `npx -y deno@2.9.6` (the README's commands) unpacked.
deno_bin=$(command -v deno || npx -y deno@2.9.6 eval 'console.log(Deno.execPath())')
deno_bin=$(readlink -f "$deno_bin")
"$deno_bin" --version | head -1
xz -T2 -6 -c "$deno_bin" >.gpu/deno.xz
"$deno_bin" eval 'const { imports } = JSON.parse(Deno.readTextFileSync("deno.json"));
console.log(JSON.stringify({ imports, nodeModulesDir: "none", unstable: ["webgpu"] }))' >.gpu/deno.json
source scripts/gpu/kernel-tests.sh
# A lockfile, used again on the device: without one, Deno there resolves drizzle-orm's peer dependencies
# to a copy of the package that this cache never made.
DENO_DIR=.gpu/cache "$deno_bin" cache --config .gpu/deno.json --lock=.gpu/deno.lock \
  "${KERNEL_TESTS[@]}" scripts/bench.ts scripts/gpu/recipe.ts
# Unpacked, the cache would not fit beside Deno in what travels.
tar -C .gpu -cf - cache | xz -T2 -6 >.gpu/cache.tar.xz && rm -rf .gpu/cache
(cd .gl && apt-get download libvulkan1)
du -sh .gpu .gl

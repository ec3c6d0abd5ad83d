#!/usr/bin/env bash
# Prepares what issue 7's GPU check needs on a borrowed H100/H200, which has no
# registry: run here once, then on the device `bash scripts/gpu/check.sh` with carry [".gpu", ".gl"].
#   .gpu/deno.xz     this machine's Deno 2.9.6 binary, xz-compressed (~31 MB)
#   .gpu/deno.json   an import map holding only webgpu-utils, the engine's one package
#   .gpu/cache/      a DENO_DIR with that package (~12 MB), so the device runs with --cached-only
#   .gl/*.deb        the Vulkan loader (libvulkan1), unpacked there with dpkg -x
# Both folders are listed in .git/info/exclude; together they stay under the 64 MiB that travels.
set -euo pipefail
cd "$(dirname "$0")/../.."
for dir in .gpu .gl; do grep -qx "/$dir/" .git/info/exclude || echo "/$dir/" >>.git/info/exclude; done
rm -rf .gpu && mkdir -p .gpu .gl
deno_bin=$(readlink -f "$(command -v deno)")
"$deno_bin" --version | head -1
xz -T2 -6 -c "$deno_bin" >.gpu/deno.xz
cat >.gpu/deno.json <<'JSON'
{ "imports": { "webgpu-utils": "npm:webgpu-utils@2.1.1" }, "nodeModulesDir": "none", "unstable": ["webgpu"] }
JSON
DENO_DIR=.gpu/cache "$deno_bin" cache --config .gpu/deno.json --no-lock \
  tests/matmul.test.ts tests/attention.test.ts tests/layernorm.test.ts tests/crossentropy.test.ts \
  tests/embedding.test.ts tests/elementwise.test.ts tests/optimizer.test.ts tests/gpt.test.ts \
  tests/gpt-torch.test.ts scripts/bench.ts
(cd .gl && apt-get download libvulkan1)
du -sh .gpu .gl

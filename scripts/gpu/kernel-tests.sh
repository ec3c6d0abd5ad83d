# The engine's tests the GPU check runs on the GPU adapter (check.sh) and pack.sh caches for it: every
# kernel family against the float64 reference and the PyTorch fixtures, the whole model, windows and
# shards. None of them imports the server, so the device needs only webgpu-utils.
KERNEL_TESTS=(tests/matmul.test.ts tests/matmul-split-k.test.ts tests/matmul-texture.test.ts tests/bias-grad.test.ts
  tests/attention.test.ts
  tests/layernorm.test.ts tests/crossentropy.test.ts tests/lm-vocab.test.ts tests/embedding.test.ts
  tests/elementwise.test.ts tests/optimizer.test.ts tests/gpt.test.ts tests/gpt-torch.test.ts
  tests/windows.test.ts tests/shards.test.ts)

"""Peer benchmark: the GPT training step of kernels/gpt.ts in PyTorch on the CPU.

Run by `deno task bench --peers` with Debian's /usr/bin/python3 (python3-torch). Same model as the
engine: token + position embedding, pre-LN blocks, causal multi-head attention, tanh-GELU 4x MLP,
tied LM head, mean softmax cross-entropy, AdamW (weight decay on matrices only, gradient norm
clipping), batch 32 x 64, vocabulary 256, width / layers as --models names them (heads: width / 32).
Prints one JSON line: tokens/s per (width, layers) on THREADS threads,
and under "blas" which BLAS ran (kernels/bench/peers/blas.ts classifies it).
The AdamW settings come from the caller as JSON (the engine's DEFAULT_ADAMW, kernels/config.ts).

    /usr/bin/python3 kernels/bench/peers/torch-gpt.py --adamw JSON [--quick] [--models 64/2,128/4,192/4]
        [--threads N]

--threads N (default 1) is every thread the process computes on: torch's own (set_num_threads) and the
BLAS's, which keeps its own pool, sized when the library loads (OPENBLAS_NUM_THREADS, set here before torch
is imported). Debian's torch is built against the generic BLAS interface, so set_num_threads does not reach
OpenBLAS: "one thread" left OpenBLAS on every core (sgemm 512^3 at 226 GFLOP/s on two cores against 112 on
one), and two threads ran four on two cores. One thread count per process, then (run.ts runs one per count),
and OpenMP's threads wait passively, so they leave the cores to the BLAS's.

With --gpt2 it times the GPT-2-124M-sized step instead (vocabulary 50257, context 1024, width 768,
12 layers, 12 heads, batch 4 x 1024) on CUDA when present, in fp32 with TF32 off: the GPU-session
baseline (scripts/gpu/check.sh), compared with `deno task bench --gpt2`.

With --matmul 1024,2048,4096 it times square fp32 products C = A B instead (cuBLAS on CUDA when present,
TF32 off), for scripts/gpu/matmul-compare.ts to set beside the engine's kernel table. It needs no --adamw.
"""

import json
import math
import os
import sys
import time


def threads_arg():
    if "--threads" not in sys.argv:
        return 1
    value = sys.argv[sys.argv.index("--threads") + 1]
    if not value.isdigit() or int(value) < 1:
        sys.exit(f"torch-gpt.py: --threads takes one whole number >= 1 (one process per count), got {value!r}")
    return int(value)


THREADS = threads_arg()
# Before torch loads its BLAS: the pools are sized then (see the docstring).
for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[name] = str(THREADS)
# torch's OpenMP threads spin between parallel regions by default, on the cores OpenBLAS's own pool needs:
# on two cores that halved torch on two threads (128/4: 6,676-7,317 tokens/s spinning, 15,532-16,979 passive).
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import torch  # noqa: E402 (the environment above must be set first)
import torch.nn.functional as F


class Block(torch.nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.h = h
        self.ln1 = torch.nn.LayerNorm(c)
        self.qkv = torch.nn.Linear(c, 3 * c)
        self.proj = torch.nn.Linear(c, c)
        self.ln2 = torch.nn.LayerNorm(c)
        self.fc = torch.nn.Linear(c, 4 * c)
        self.fc_proj = torch.nn.Linear(4 * c, c)

    def forward(self, x, mask):
        b, t, c = x.shape
        d = c // self.h
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.h, d).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        att = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1) @ v
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, c))
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Gpt(torch.nn.Module):
    def __init__(self, vocab, context, c, layers, heads):
        super().__init__()
        self.wte = torch.nn.Embedding(vocab, c)
        self.wpe = torch.nn.Embedding(context, c)
        self.blocks = torch.nn.ModuleList(Block(c, heads) for _ in range(layers))
        self.lnf = torch.nn.LayerNorm(c)
        mask = torch.triu(torch.ones(context, context, dtype=torch.bool), diagonal=1)
        self.register_buffer("mask", mask)
        # GPT-2 initialization, as the engine's: N(0, 0.02) matrices, zero biases, unit LN gains.
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                torch.nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("bias"):
                torch.nn.init.zeros_(p)

    def forward(self, tokens, targets):
        b, t = tokens.shape
        x = self.wte(tokens) + self.wpe.weight[:t]
        for block in self.blocks:
            x = block(x, self.mask[:t, :t])
        logits = self.lnf(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.view(b * t, -1), targets.view(-1))


SMALL = {"B": 32, "T": 64, "V": 256, "L": 4}
GPT2 = {"B": 4, "T": 1024, "V": 50257, "L": 12, "H": 12}


def bench(width, threads, steps, adamw, shape=SMALL, device="cpu"):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    B, T, V, L = shape["B"], shape["T"], shape["V"], shape["L"]
    model = Gpt(V, T, width, L, shape.get("H", width // 32)).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": adamw["weightDecay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=adamw["lr"],
        betas=(adamw["beta1"], adamw["beta2"]),
        eps=adamw["eps"],
    )
    ids = torch.tensor([(i * 31 + 7) % V for i in range(B * T)], device=device).view(B, T)
    targets = torch.roll(ids, -1, dims=1)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(ids, targets)
        loss.backward()
        if adamw["maxGradNorm"] > 0:  # the engine's rule: <= 0 turns clipping off
            torch.nn.utils.clip_grad_norm_(model.parameters(), adamw["maxGradNorm"])
        opt.step()
        return loss

    step()  # warm-up
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync()
    seconds = (time.perf_counter() - start) / steps
    return {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "width": width,
        "layers": L,
        "batch": B,
        "context": T,
        "vocab": V,
        "threads": threads,
        "tokensPerSecond": B * T / seconds,
        "msPerStep": seconds * 1000,
        "loss": float(loss),
    }


def blas_probe():
    """The build's config text, the BLAS libraries mapped into this process, a 512^3 sgemm on THREADS threads."""
    torch.set_num_threads(THREADS)
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    a @ b  # loads the BLAS library, so it shows in the maps
    start = time.perf_counter()
    for _ in range(5):
        a @ b
    seconds = (time.perf_counter() - start) / 5
    try:
        with open("/proc/self/maps") as maps:
            libraries = sorted({line.split()[-1] for line in maps if "blas" in line.split()[-1].lower()})
    except OSError:
        libraries = []
    return {"config": torch.__config__.show(), "libraries": libraries, "sgemmGflops": 2 * 512**3 / seconds / 1e9}


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_bench(sizes, device):
    """Square fp32 products: GFLOP/s over a run of back-to-back calls (about 0.2 TFLOP each), after two."""
    results = []
    for s in sizes:
        a, b = torch.randn(s, s, device=device), torch.randn(s, s, device=device)
        calls = max(5, round(2e11 / (2 * s**3)))
        for _ in range(2):
            a @ b
        sync(device)
        start = time.perf_counter()
        for _ in range(calls):
            a @ b
        sync(device)
        seconds = (time.perf_counter() - start) / calls
        results.append({"size": s, "ms": seconds * 1e3, "gflops": 2 * s**3 / seconds / 1e9})
    return results


def models_arg(fallback):
    """--models 64/2,128/4: (width, layers) pairs."""
    if "--models" not in sys.argv:
        return fallback
    names = sys.argv[sys.argv.index("--models") + 1].split(",")
    return [tuple(int(x) for x in name.split("/")) for name in names]


def main():
    quick = "--quick" in sys.argv
    if "--matmul" in sys.argv:
        value = sys.argv[sys.argv.index("--matmul") + 1]
        if not all(part.isdigit() and int(part) > 0 for part in value.split(",")):
            sys.exit(f"torch-gpt.py: --matmul takes sizes such as 1024,2048,4096, got {value!r}")
        device = "cuda" if torch.cuda.is_available() else "cpu"
        torch.backends.cuda.matmul.allow_tf32 = False
        name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
        results = matmul_bench([int(part) for part in value.split(",")], device)
        print(json.dumps({"torch": torch.__version__, "device": name, "matmul": results}))
        return
    if "--adamw" not in sys.argv:
        sys.exit("torch-gpt.py: --adamw JSON is required (lr, beta1, beta2, eps, weightDecay, maxGradNorm)")
    adamw = json.loads(sys.argv[sys.argv.index("--adamw") + 1])
    if "--gpt2" in sys.argv:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        # fp32 on the GPU: no TF32 in matmuls or convolutions.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        results = [bench(768, 1, 3 if quick else 10, adamw, GPT2, device)]
        print(json.dumps({"torch": torch.__version__, "training": results}))
        return
    results = [
        bench(width, THREADS, 3 if quick else 8, adamw, {**SMALL, "L": layers})
        for width, layers in models_arg([(128, 4), (192, 4)])
    ]
    print(json.dumps({"torch": torch.__version__, "blas": blas_probe(), "training": results}))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""The LM loss and its gradients in PyTorch, on the weights and batch scripts/gpt2-check.ts wrote.

Run by `deno run -A scripts/gpt2-check.ts` with Debian's /usr/bin/python3 (python3-torch): it reads
DIR/layout.json (config, the flat buffer's specs as kernels/config.ts lays them out, B, T), DIR/params.f32
(the flat float32 parameter buffer) and DIR/tokens.i32 (B·T ids, every row full), and prints one JSON line:
per dtype (float32, float64) the mean next-token loss, the global gradient norm and per named parameter
the gradient norm. Same model as kernels/gpt.ts: x0 = wte[tok] + wpe[t]; pre-LN blocks (eps 1e-5);
Conv1D weights y = x·W + b; causal attention scaled 1/sqrt(hs); tanh GELU; LM head tied to wte; each
position predicts the next token of its row, the last one is ignored.

    /usr/bin/python3 scripts/torch-lm-check.py DIR [--dtypes float32,float64] [--forward-only]
"""

import json
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F


def load(directory):
    with open(f"{directory}/layout.json") as f:
        layout = json.load(f)
    flat = np.fromfile(f"{directory}/params.f32", dtype=np.float32)
    tokens = np.fromfile(f"{directory}/tokens.i32", dtype=np.int32)
    params = {
        s["name"]: flat[s["offset"] : s["offset"] + s["size"]].reshape(s["shape"]) for s in layout["specs"]
    }
    tokens = torch.from_numpy(tokens.astype(np.int64)).view(layout["B"], layout["T"])
    return layout, params, tokens


def lm_loss(P, cfg, tokens):
    B, T = tokens.shape
    C, H = cfg["width"], cfg["heads"]
    hs = C // H
    x = P["wte.weight"][tokens] + P["wpe.weight"][:T]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    for l in range(cfg["layers"]):
        p = f"h.{l}."
        h = F.layer_norm(x, (C,), P[p + "ln_1.weight"], P[p + "ln_1.bias"], eps=1e-5)
        qkv = h @ P[p + "attn.c_attn.weight"] + P[p + "attn.c_attn.bias"]
        q, k, v = (t.view(B, T, H, hs).transpose(1, 2) for t in qkv.split(C, dim=-1))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hs)
        y = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1) @ v
        x = x + y.transpose(1, 2).reshape(B, T, C) @ P[p + "attn.c_proj.weight"] + P[p + "attn.c_proj.bias"]
        h = F.layer_norm(x, (C,), P[p + "ln_2.weight"], P[p + "ln_2.bias"], eps=1e-5)
        h = F.gelu(h @ P[p + "mlp.c_fc.weight"] + P[p + "mlp.c_fc.bias"], approximate="tanh")
        x = x + h @ P[p + "mlp.c_proj.weight"] + P[p + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (C,), P["ln_f.weight"], P["ln_f.bias"], eps=1e-5)
    logits = x[:, :-1] @ P["wte.weight"].T
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def run(layout, params, tokens, dtype, forward_only):
    P = {
        name: torch.tensor(value, dtype=dtype, requires_grad=not forward_only)
        for name, value in params.items()
    }
    if forward_only:
        with torch.no_grad():
            return {"loss": lm_loss(P, layout["config"], tokens).item()}
    loss = lm_loss(P, layout["config"], tokens)
    loss.backward()
    norms = {name: (p.grad.norm().item() if p.grad is not None else 0.0) for name, p in P.items()}
    return {
        "loss": loss.item(),
        "gradNorm": math.sqrt(sum(n * n for n in norms.values())),
        "gradNorms": norms,
    }


def main():
    directory = sys.argv[1]
    dtypes = ["float32", "float64"]
    if "--dtypes" in sys.argv:
        dtypes = sys.argv[sys.argv.index("--dtypes") + 1].split(",")
    forward_only = "--forward-only" in sys.argv
    torch.set_num_threads(2)
    layout, params, tokens = load(directory)
    out = {dt: run(layout, params, tokens, getattr(torch, dt), forward_only) for dt in dtypes}
    print(json.dumps(out))


if __name__ == "__main__":
    main()

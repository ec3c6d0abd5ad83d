#!/usr/bin/python3
"""PyTorch reference fixtures for the lab's GPT-2 (CPU reference and WGSL engine are tested against them).

Run with Debian's torch (not the pyenv python):
    apt-get update && apt-get install -y python3-torch
    /usr/bin/python3 scripts/torch-fixtures.py            # writes tests/fixtures/, deterministic

The GPT-2 is written here in float64 with the lab's conventions (kernels/reference.ts header):
x0 = wte[tok] + wpe[t]; pre-LN blocks (LN eps 1e-5, biased variance); Conv1D weights y = x·W + b;
attention scale 1/sqrt(hs), key j visible to query i iff j <= i and j < len[b] (a query with no visible
key outputs 0: every position of an empty row); tanh GELU; LM head tied to wte, targets -1 ignored, mean
over the rest; classification head on ln_f(x) at token len-1, soft-target cross-entropy averaged over
rows with len > 0, empty rows get logits 0; reward head r = ln_f(x)[len-1] . reward.weight (no bias, empty
rows 0), rows 2i, 2i+1 are pair i, loss = soft-target cross-entropy over the pair logits [r_2i, r_2i+1]
(Bradley-Terry) averaged over pairs whose two rows have len > 0. AdamW: torch's clip_grad_norm_(all
params, 1.0) and torch.optim.AdamW with two param groups (weight decay 0.1 on matrices, 0 on vectors),
lr 1e-3, betas (0.9, 0.95), eps 1e-8. Parameters whose loss gradient is None (the heads under the LM
loss) get a zero gradient, so every matrix decays on every step, as in the engine.

Model: vocab 37, context 9, width 16, 2 layers, 4 heads (head size 4). Batch: B = 4, T = 8 (< context),
lengths [8, 5, 1, 0] (full, shorter, one token, empty), pad id 0; for the reward head pair 0 (rows 0, 1)
is compared and pair 1 (rows 2, 3: row 3 is empty) is excluded. Parameters are drawn in float64 at a
visible scale (not GPT-2's 0.02, which would make attention uniform) and rounded to float32 once; all
math then runs in float64 on those float32 values. reward.weight is drawn last (after the batch), so
adding it left every earlier draw, and the lm and cls values, as they were.

Files written (total ~0.4 MB):
  tests/fixtures/gpt2-tiny/config.json        HF GPT-2 config (vocab_size, n_positions, n_ctx, n_embd,
                                              n_layer, n_head, activation_function gelu_new, ...)
  tests/fixtures/gpt2-tiny/model.safetensors  F32 tensors named `transformer.wte.weight`,
                                              `transformer.h.0.attn.c_attn.weight`, ... in Conv1D layout,
                                              plus `lm_head.weight` (tied copy) and `transformer.h.N.attn.bias`
                                              (HF's causal-mask buffer) that an importer must ignore. No cls.*
                                              or reward.*: HF GPT-2 has neither head.
  tests/fixtures/torch-reference.safetensors  tensors below (F64 unless stated)
      batch.tokens         I32 [B, T]     right-padded token ids
      batch.lengths        I32 [B]
      batch.targets        I32 [B, T]     LM targets, -1 = ignored
      batch.class_targets  F64 [B, 2]     soft class targets (row 3 is empty and ignored)
      batch.pair_targets   F64 [B/2, 2]   soft pair targets [t_first, t_second] (pair 1 is excluded)
      init.cls.weight      F32 [C, 2]     the classification head to put over the HF checkpoint's zeros
      init.cls.bias        F32 [2]
      init.reward.weight   F32 [C, 1]     the reward head, likewise
      lm.logits            [B, T, V]      LM logits, every position (padding ones too)
      cls.logits           [B, 2]
      reward.logits        [B]            the rewards, one per row (0 for the empty row)
      features.0 .. features.L  [B, C]    residual stream after l blocks at token len-1 (0 = embedding)
      features.ln_f        [B, C]         ln_f output at token len-1 (rows of empty sequences are 0)
      lm.grad.<name>       shape of <name>   d(LM loss)/d(param) for every parameter (<name> as in
      cls.grad.<name>                        kernels/config.ts: wte.weight, h.0.ln_1.weight, cls.bias, ...)
      reward.grad.<name>                     ... and of the reward (pair) loss
      lm.adamw3.<name>     shape of <name>   every parameter after 3 AdamW steps on the LM loss
      cls.adamw3.<name>                      ... after 3 steps on the cls loss (same batch each step)
      reward.adamw3.<name>                   ... and after 3 steps on the reward loss
  tests/fixtures/torch-reference.json         config, batch shape, AdamW hyperparameters, lm.loss,
                                              cls.loss, reward.loss, and per AdamW step the loss before
                                              it and the unclipped global gradient norm.
"""

import json
import math
import os
import struct

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)

VOCAB, CONTEXT, WIDTH, LAYERS, HEADS = 37, 9, 16, 2, 4
NUM_CLASSES = 2
HEAD_PARAMS = ("cls.weight", "cls.bias", "reward.weight")  # ours, not in an HF checkpoint
B, T = 4, 8
LENGTHS = [8, 5, 1, 0]
HYPER = dict(lr=1e-3, beta1=0.9, beta2=0.95, eps=1e-8, weightDecay=0.1, maxGradNorm=1.0)
ADAMW_STEPS = 3
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")


def parameter_shapes():
    """Names and shapes in the order of kernels/config.ts (matrices first, then vectors)."""
    C, L = WIDTH, LAYERS
    matrices = [("wte.weight", [VOCAB, C]), ("wpe.weight", [CONTEXT, C])]
    vectors = []
    for l in range(L):
        p = f"h.{l}."
        matrices += [
            (p + "attn.c_attn.weight", [C, 3 * C]),
            (p + "attn.c_proj.weight", [C, C]),
            (p + "mlp.c_fc.weight", [C, 4 * C]),
            (p + "mlp.c_proj.weight", [4 * C, C]),
        ]
        vectors += [
            (p + "ln_1.weight", [C]),
            (p + "ln_1.bias", [C]),
            (p + "attn.c_attn.bias", [3 * C]),
            (p + "attn.c_proj.bias", [C]),
            (p + "ln_2.weight", [C]),
            (p + "ln_2.bias", [C]),
            (p + "mlp.c_fc.bias", [4 * C]),
            (p + "mlp.c_proj.bias", [C]),
        ]
    matrices += [("cls.weight", [C, NUM_CLASSES]), ("reward.weight", [C, 1])]
    vectors += [("ln_f.weight", [C]), ("ln_f.bias", [C]), ("cls.bias", [NUM_CLASSES])]
    return matrices + vectors


def initial_parameters(generator):
    """Float64 draws at a visible scale, rounded to float32 (what a checkpoint can hold); reward.weight
    is left to initial_reward_head, drawn after the batch."""
    params = {}
    for name, shape in parameter_shapes():
        if name == "reward.weight":
            continue
        noise = torch.randn(shape, generator=generator)
        if name in ("wte.weight",):
            value = 0.5 * noise
        elif name == "wpe.weight":
            value = 0.1 * noise
        elif name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
            value = 1 + 0.1 * noise
        elif len(shape) >= 2:
            value = 0.25 * noise
        else:
            value = 0.1 * noise
        params[name] = value.float().double()
    return params


def initial_reward_head(generator):
    return (0.25 * torch.randn([WIDTH, 1], generator=generator)).float().double()


def make_batch(generator):
    tokens = torch.zeros(B, T, dtype=torch.long)
    targets = torch.full((B, T), -1, dtype=torch.long)
    for b, length in enumerate(LENGTHS):
        tokens[b, :length] = torch.randint(1, VOCAB, (length,), generator=generator)
        targets[b, : max(length - 1, 0)] = tokens[b, 1:length]
    targets[0, 3] = -1  # an ignored position inside a sequence
    targets[0, T - 1] = 5  # the last token of the full row predicts something too
    class_targets = torch.tensor([[0.9, 0.1], [0.25, 0.75], [0.0, 1.0], [0.5, 0.5]])
    pair_targets = torch.tensor([[0.1, 0.9], [0.8, 0.2]])
    return tokens, torch.tensor(LENGTHS, dtype=torch.long), targets, class_targets, pair_targets


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def layernorm(x, weight, bias):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), weight, bias, eps=1e-5)


def last_token_rows(stream, lengths):
    """stream[b, len[b]-1] per row, zeros for empty rows."""
    index = (lengths - 1).clamp(min=0)
    rows = stream[torch.arange(stream.shape[0]), index]
    return torch.where((lengths > 0)[:, None], rows, torch.zeros_like(rows))


def forward(P, tokens, lengths):
    """Returns (ln_f output [B, T, C], features list). Conventions in the module docstring."""
    Bn, Tn = tokens.shape
    C, H = WIDTH, HEADS
    hs = C // H
    x = P["wte.weight"][tokens] + P["wpe.weight"][:Tn]
    position = torch.arange(Tn)
    causal = position[None, :] <= position[:, None]  # [query i, key j]
    key_valid = position[None, :] < lengths[:, None]  # [b, key j]
    visible = causal[None, :, :] & key_valid[:, None, :]  # [b, i, j]
    has_key = visible.any(-1)  # [b, i]
    features = [last_token_rows(x, lengths)]
    for l in range(LAYERS):
        p = f"h.{l}."
        h = layernorm(x, P[p + "ln_1.weight"], P[p + "ln_1.bias"])
        qkv = h @ P[p + "attn.c_attn.weight"] + P[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(C, dim=-1)
        q, k, v = (t.view(Bn, Tn, H, hs).transpose(1, 2) for t in (q, k, v))  # [B, H, T, hs]
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hs)
        scores = scores.masked_fill(~visible[:, None], float("-inf"))
        # Rows with no visible key: softmax of zeros, then multiplied out to 0 (no NaN anywhere).
        scores = torch.where(has_key[:, None, :, None], scores, torch.zeros_like(scores))
        att = torch.softmax(scores, dim=-1) * has_key[:, None, :, None]
        y = (att @ v).transpose(1, 2).reshape(Bn, Tn, C)
        x = x + y @ P[p + "attn.c_proj.weight"] + P[p + "attn.c_proj.bias"]
        h = layernorm(x, P[p + "ln_2.weight"], P[p + "ln_2.bias"])
        h = gelu_tanh(h @ P[p + "mlp.c_fc.weight"] + P[p + "mlp.c_fc.bias"])
        x = x + h @ P[p + "mlp.c_proj.weight"] + P[p + "mlp.c_proj.bias"]
        features.append(last_token_rows(x, lengths))
    lnf = layernorm(x, P["ln_f.weight"], P["ln_f.bias"])
    features.append(last_token_rows(lnf, lengths))
    return lnf, features


def lm_loss(P, batch):
    tokens, lengths, targets = batch[:3]
    lnf, _ = forward(P, tokens, lengths)
    logits = lnf @ P["wte.weight"].T
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), ignore_index=-1)
    return loss, logits


def cls_loss(P, batch):
    tokens, lengths, _, class_targets, _ = batch
    lnf, _ = forward(P, tokens, lengths)
    valid = lengths > 0
    pooled = last_token_rows(lnf, lengths)
    logits = pooled @ P["cls.weight"] + P["cls.bias"]
    logits = torch.where(valid[:, None], logits, torch.zeros_like(logits))
    per_row = -(class_targets * torch.log_softmax(logits, dim=-1)).sum(-1)
    return per_row[valid].mean(), logits


def reward_loss(P, batch):
    tokens, lengths, _, _, pair_targets = batch
    lnf, _ = forward(P, tokens, lengths)
    rewards = (last_token_rows(lnf, lengths) @ P["reward.weight"]).squeeze(-1)
    rewards = torch.where(lengths > 0, rewards, torch.zeros_like(rewards))
    pairs = rewards.view(-1, 2)  # [r_first, r_second] per pair
    valid = (lengths.view(-1, 2) > 0).all(-1)
    per_pair = -(pair_targets * torch.log_softmax(pairs, dim=-1)).sum(-1)
    return per_pair[valid].mean(), rewards


def fresh_leaves(params):
    return {name: value.clone().requires_grad_(True) for name, value in params.items()}


def gradients(loss_fn, params, batch):
    P = fresh_leaves(params)
    loss, logits = loss_fn(P, batch)
    loss.backward()
    grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)) for n, p in P.items()}
    return loss.item(), logits.detach(), grads


def adamw_steps(loss_fn, params, batch, steps):
    P = fresh_leaves(params)
    ordered = [P[name] for name, _ in parameter_shapes()]
    groups = [
        {"params": [p for p in ordered if p.dim() >= 2], "weight_decay": HYPER["weightDecay"]},
        {"params": [p for p in ordered if p.dim() < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(
        groups, lr=HYPER["lr"], betas=(HYPER["beta1"], HYPER["beta2"]), eps=HYPER["eps"], foreach=False
    )
    history = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss, _ = loss_fn(P, batch)
        loss.backward()
        for p in ordered:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        norm = torch.nn.utils.clip_grad_norm_(ordered, HYPER["maxGradNorm"])
        optimizer.step()
        history.append({"loss": loss.item(), "gradNorm": norm.item()})
    return {n: p.detach().clone() for n, p in P.items()}, history


def write_safetensors(path, tensors):
    """Minimal safetensors writer: 8-byte LE header length, JSON header padded to 8 bytes, LE data."""
    dtypes = {np.float64: ("F64", "<f8"), np.float32: ("F32", "<f4"), np.int32: ("I32", "<i4")}
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, array in tensors.items():
        tag, layout = dtypes[array.dtype.type]
        blob = np.ascontiguousarray(array, dtype=layout).tobytes()
        header[name] = {"dtype": tag, "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for blob in blobs:
            f.write(blob)


def f64(t):
    return t.detach().numpy().astype(np.float64)


def main():
    generator = torch.Generator().manual_seed(20231214)
    params = initial_parameters(generator)
    batch = make_batch(generator)
    params["reward.weight"] = initial_reward_head(generator)
    tokens, lengths, targets, class_targets, pair_targets = batch

    # The HF-layout checkpoint: float32, `transformer.` prefix, tied lm_head copy, mask buffers, no cls.*.
    hf_dir = os.path.join(ROOT, "gpt2-tiny")
    os.makedirs(hf_dir, exist_ok=True)
    hf_tensors = {}
    for name, _ in parameter_shapes():
        if name not in HEAD_PARAMS:
            hf_tensors["transformer." + name] = params[name].numpy().astype(np.float32)
    for l in range(LAYERS):
        mask = torch.tril(torch.ones(CONTEXT, CONTEXT)).view(1, 1, CONTEXT, CONTEXT)
        hf_tensors[f"transformer.h.{l}.attn.bias"] = mask.numpy().astype(np.float32)
    hf_tensors["lm_head.weight"] = params["wte.weight"].numpy().astype(np.float32)
    write_safetensors(os.path.join(hf_dir, "model.safetensors"), hf_tensors)
    hf_config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": VOCAB,
        "n_positions": CONTEXT,
        "n_ctx": CONTEXT,
        "n_embd": WIDTH,
        "n_layer": LAYERS,
        "n_head": HEADS,
        "n_inner": None,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-05,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "tie_word_embeddings": True,
    }
    with open(os.path.join(hf_dir, "config.json"), "w") as f:
        json.dump(hf_config, f, indent=2)
        f.write("\n")

    lm_value, lm_logits, lm_grads = gradients(lm_loss, params, batch)
    cls_value, cls_logits, cls_grads = gradients(cls_loss, params, batch)
    reward_value, rewards, reward_grads = gradients(reward_loss, params, batch)
    with torch.no_grad():
        _, features = forward(params, tokens, lengths)
    lm_after, lm_history = adamw_steps(lm_loss, params, batch, ADAMW_STEPS)
    cls_after, cls_history = adamw_steps(cls_loss, params, batch, ADAMW_STEPS)
    reward_after, reward_history = adamw_steps(reward_loss, params, batch, ADAMW_STEPS)

    out = {
        "batch.tokens": tokens.numpy().astype(np.int32),
        "batch.lengths": lengths.numpy().astype(np.int32),
        "batch.targets": targets.numpy().astype(np.int32),
        "batch.class_targets": f64(class_targets),
        "batch.pair_targets": f64(pair_targets),
        **{"init." + name: params[name].numpy().astype(np.float32) for name in HEAD_PARAMS},
        "lm.logits": f64(lm_logits),
        "cls.logits": f64(cls_logits),
        "reward.logits": f64(rewards),
    }
    for l in range(LAYERS + 1):
        out[f"features.{l}"] = f64(features[l])
    out["features.ln_f"] = f64(features[LAYERS + 1])
    for name, _ in parameter_shapes():
        out["lm.grad." + name] = f64(lm_grads[name])
    for name, _ in parameter_shapes():
        out["cls.grad." + name] = f64(cls_grads[name])
    for name, _ in parameter_shapes():
        out["lm.adamw3." + name] = f64(lm_after[name])
    for name, _ in parameter_shapes():
        out["cls.adamw3." + name] = f64(cls_after[name])
    for name, _ in parameter_shapes():
        out["reward.grad." + name] = f64(reward_grads[name])
    for name, _ in parameter_shapes():
        out["reward.adamw3." + name] = f64(reward_after[name])
    write_safetensors(os.path.join(ROOT, "torch-reference.safetensors"), out)

    summary = {
        "generator": "scripts/torch-fixtures.py",
        "torch": torch.__version__,
        "config": {"vocabSize": VOCAB, "contextLength": CONTEXT, "width": WIDTH, "layers": LAYERS, "heads": HEADS},
        "batch": {"B": B, "T": T, "lengths": LENGTHS},
        "adamw": {**HYPER, "steps": ADAMW_STEPS},
        "lm": {"loss": lm_value, "adamwSteps": lm_history},
        "cls": {"loss": cls_value, "adamwSteps": cls_history},
        "reward": {"loss": reward_value, "adamwSteps": reward_history},
    }
    with open(os.path.join(ROOT, "torch-reference.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    print(json.dumps({"lm.loss": lm_value, "cls.loss": cls_value, "reward.loss": reward_value}))


if __name__ == "__main__":
    main()

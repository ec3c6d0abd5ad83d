#!/usr/bin/python3
"""Checks that a folder written by `deno task lab export` is what Hugging Face's GPT2LMHeadModel loads.

No `transformers`: GPT-2 is built here in plain PyTorch (float64) from config.json alone, the way
GPT2LMHeadModel reads it (n_embd, n_layer, n_head, n_positions, vocab_size, layer_norm_epsilon,
activation_function gelu_new, tied lm_head), and model.safetensors is read by a small reader (8-byte
header length, JSON header, raw little-endian F32). It checks that every tensor GPT2LMHeadModel's state
dict needs is there with its shape and nothing else is, that vocab.json + added tokens cover vocab_size
and merges.txt holds vocab.json's merges, then runs the forward pass on full rows of token ids.

Run with Debian's torch (python3-torch, not a pyenv python):
    deno task lab export --size nano --out /tmp/nano-hf
    /usr/bin/python3 scripts/hf-check.py /tmp/nano-hf --tokens 5,17,3,99,12
        prints {"loss": x}: the mean next-token loss, equal to
        `deno task lab lm-loss --checkpoint /tmp/nano-hf --tokens 5,17,3,99,12` (the engine reads the export)
    /usr/bin/python3 scripts/hf-check.py DIR --tokens "1,2,3;4,5,6" --fixture OUT.json
        writes {tokens, logits} (rows × T × V) — how tests/fixtures/hf-export/tiny-logits.json was made
        (tests/fixtures/hf-export/tiny-model.ts writes the tiny folder it reads)
"""

import argparse
import json
import math
import os
import struct
import sys

import torch

DTYPES = {"F32": (torch.float32, 4), "F64": (torch.float64, 8)}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_length])
    body = data[8 + header_length :]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, size = DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        count = math.prod(entry["shape"])
        if end - begin != count * size:
            sys.exit(f"{path}: tensor {name} spans {end - begin} bytes, its shape needs {count * size}")
        flat = torch.frombuffer(bytearray(body[begin:end]), dtype=dtype) if count else torch.zeros(0, dtype=dtype)
        tensors[name] = flat.reshape(entry["shape"]).to(torch.float64)
    return tensors


def expected_shapes(cfg):
    C, V, P = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    inner = cfg.get("n_inner") or 4 * C
    shapes = {"wte.weight": [V, C], "wpe.weight": [P, C], "ln_f.weight": [C], "ln_f.bias": [C]}
    for l in range(cfg["n_layer"]):
        block = {
            "ln_1.weight": [C], "ln_1.bias": [C],
            "attn.c_attn.weight": [C, 3 * C], "attn.c_attn.bias": [3 * C],
            "attn.c_proj.weight": [C, C], "attn.c_proj.bias": [C],
            "ln_2.weight": [C], "ln_2.bias": [C],
            "mlp.c_fc.weight": [C, inner], "mlp.c_fc.bias": [inner],
            "mlp.c_proj.weight": [inner, C], "mlp.c_proj.bias": [C],
        }
        shapes.update({f"h.{l}.{k}": v for k, v in block.items()})
    return shapes


FILES = ["config.json", "model.safetensors", "vocab.json", "merges.txt", "added_tokens.json"]


def load(folder):
    missing = [name for name in FILES if not os.path.isfile(f"{folder}/{name}")]
    if missing:
        sys.exit(f"{folder}: {', '.join(missing)} missing (write the folder with: deno task lab export --size S --out DIR)")
    with open(f"{folder}/config.json") as f:
        cfg = json.load(f)
    problems = []
    if cfg.get("model_type") != "gpt2":
        problems.append(f'model_type is {cfg.get("model_type")!r}, not "gpt2"')
    if "GPT2LMHeadModel" not in cfg.get("architectures", []):
        problems.append("architectures does not list GPT2LMHeadModel")
    if cfg.get("activation_function") != "gelu_new":
        problems.append(f'activation_function is {cfg.get("activation_function")!r}, not "gelu_new"')
    if cfg["n_embd"] % cfg["n_head"] != 0:
        problems.append("n_embd is not a multiple of n_head")
    raw = read_safetensors(f"{folder}/model.safetensors")
    # GPT2LMHeadModel loads names with or without its "transformer." prefix; lm_head is tied to wte.
    params = {k.removeprefix("transformer."): v for k, v in raw.items() if k != "lm_head.weight"}
    if "lm_head.weight" in raw and not cfg.get("tie_word_embeddings", True):
        problems.append("lm_head.weight is stored but tie_word_embeddings is false")
    shapes = expected_shapes(cfg)
    for name, shape in shapes.items():
        if name not in params:
            problems.append(f"missing tensor {name}")
        elif list(params[name].shape) != shape:
            problems.append(f"tensor {name} has shape {list(params[name].shape)}, expected {shape}")
    problems += [f"unexpected tensor {name}" for name in params if name not in shapes]
    problems += tokenizer_problems(folder, cfg)
    if problems:
        sys.exit(f"{folder}: " + "; ".join(problems))
    return cfg, params


def tokenizer_problems(folder, cfg):
    with open(f"{folder}/vocab.json", encoding="utf-8") as f:
        vocab = json.load(f)
    with open(f"{folder}/added_tokens.json", encoding="utf-8") as f:
        added = json.load(f)
    with open(f"{folder}/merges.txt", encoding="utf-8") as f:
        merges = [line.rstrip("\n") for line in f if line.strip() and not line.startswith("#version")]
    problems = []
    ids = sorted(list(vocab.values()) + list(added.values()))
    if ids != list(range(cfg["vocab_size"])):
        problems.append(f"vocab.json and added_tokens.json do not hold the ids 0..{cfg['vocab_size'] - 1} once each")
    for rank, line in enumerate(merges):
        left, right = line.split(" ")
        if vocab.get(left + right) != 256 + rank:
            problems.append(f"merges.txt line {rank + 1} ({line!r}) does not make token {256 + rank}")
            break
    return problems


def layer_norm(x, w, b, eps):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, eps)


def gelu_new(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def forward(cfg, p, tokens):
    """GPT2LMHeadModel's logits for full rows (B × T ids) in float64."""
    B, T = tokens.shape
    C, H, eps = cfg["n_embd"], cfg["n_head"], cfg.get("layer_norm_epsilon", 1e-5)
    hs = C // H
    x = p["wte.weight"][tokens] + p["wpe.weight"][torch.arange(T)]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(cfg["n_layer"]):
        q_k_v = layer_norm(x, p[f"h.{l}.ln_1.weight"], p[f"h.{l}.ln_1.bias"], eps) @ p[f"h.{l}.attn.c_attn.weight"]
        q, k, v = (q_k_v + p[f"h.{l}.attn.c_attn.bias"]).split(C, dim=-1)
        q, k, v = (t.reshape(B, T, H, hs).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hs)
        attn = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1) @ v
        attn = attn.transpose(1, 2).reshape(B, T, C)
        x = x + attn @ p[f"h.{l}.attn.c_proj.weight"] + p[f"h.{l}.attn.c_proj.bias"]
        h = layer_norm(x, p[f"h.{l}.ln_2.weight"], p[f"h.{l}.ln_2.bias"], eps)
        h = gelu_new(h @ p[f"h.{l}.mlp.c_fc.weight"] + p[f"h.{l}.mlp.c_fc.bias"])
        x = x + h @ p[f"h.{l}.mlp.c_proj.weight"] + p[f"h.{l}.mlp.c_proj.bias"]
    return layer_norm(x, p["ln_f.weight"], p["ln_f.bias"], eps) @ p["wte.weight"].T


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--tokens", required=True, help='ids of one row "1,2,3", or rows "1,2;3,4" (same length)')
    parser.add_argument("--fixture", help="write {tokens, logits} to this JSON file")
    args = parser.parse_args()
    cfg, params = load(args.folder)
    rows = [[int(t) for t in row.split(",")] for row in args.tokens.split(";")]
    if len({len(r) for r in rows}) != 1 or len(rows[0]) < 2 or len(rows[0]) > cfg["n_positions"]:
        sys.exit(f"--tokens: rows must have one length in 2..{cfg['n_positions']}")
    tokens = torch.tensor(rows)
    if tokens.min() < 0 or tokens.max() >= cfg["vocab_size"]:
        sys.exit(f"--tokens: ids must be in 0..{cfg['vocab_size'] - 1}")
    logits = forward(cfg, params, tokens)
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
    if args.fixture:
        rounded = [[[float(f"{v:.9g}") for v in position] for position in row] for row in logits.tolist()]
        with open(args.fixture, "w") as f:
            json.dump({"tokens": rows, "loss": loss.item(), "logits": rounded}, f, separators=(",", ":"))
            f.write("\n")
    print(json.dumps({"loss": loss.item()}))


if __name__ == "__main__":
    main()

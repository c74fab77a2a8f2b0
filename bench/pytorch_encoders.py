#!/usr/bin/env python3
"""PyTorch CPU reference throughput for Lightbulb's two encoders.

Same weights (the safetensors files under .deps/models), same inputs and batch sizes as
`cargo bench --bench encoders`, so the two can be compared side by side:

* MobileNetV2, batch 32, 224 px, PIL decode + resize(256, bilinear) + centre crop 224 +
  normalise, then the network up to the 1280-d pooled features. Variants: eager (NCHW),
  eager channels-last, TorchScript traced + frozen channels-last, and that plus
  `torch.jit.optimize_for_inference` (oneDNN fusions).
* MiniLM-L6 (BERT, 6 layers), batch 64 real rotten-tomatoes reviews: padded to a fixed 128
  tokens, and padded to the longest text of each batch. Mean pooling + L2 norm.

The models are written here with plain torch.nn (no torchvision / transformers needed).

    python bench/pytorch_encoders.py [--assets .deps] [--seconds 20] [--reference]

`--reference` prints the values the Rust tests compare against instead of timing.
"""
import argparse
import csv
import io
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from tokenizers import Tokenizer

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


# ---------------------------------------------------------------- MobileNetV2 (torchvision)
class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, k=3, stride=1, groups=1):
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, er):
        super().__init__()
        hidden = cin * er
        self.use_res = stride == 1 and cin == cout
        layers = []
        if er != 1:
            layers.append(ConvBNReLU(cin, hidden, k=1))
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self):
        super().__init__()
        feats = [ConvBNReLU(3, 32, stride=2)]
        cin = 32
        for er, c, n, s in self.SETTINGS:
            for i in range(n):
                feats.append(InvertedResidual(cin, c, s if i == 0 else 1, er))
                cin = c
        feats.append(ConvBNReLU(cin, 1280, k=1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def forward(self, x):  # pooled features, the embedding
        return self.features(x).mean((2, 3))

    def logits(self, x):
        return self.classifier(self.forward(x))


def load_mobilenet(assets):
    m = MobileNetV2()
    res = m.load_state_dict(load_file(os.path.join(assets, "models/mobilenet_v2/model.safetensors")), strict=False)
    # The file has no BatchNorm step counters (unused in eval); anything else must match.
    assert not res.unexpected_keys and all(k.endswith("num_batches_tracked") for k in res.missing_keys), res
    return m.eval()


def preprocess(data: bytes) -> np.ndarray:
    """torchvision's eval transform with PIL: Resize(256) + CenterCrop(224) + normalise."""
    img = Image.open(io.BytesIO(data))
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    img = img.convert("RGB")
    w, h = img.size
    if w <= h:
        nw, nh = 256, int(256 * h / w)
    else:
        nw, nh = int(256 * w / h), 256
    img = img.resize((nw, nh), Image.BILINEAR)
    left, top = int(round((nw - 224) / 2.0)), int(round((nh - 224) / 2.0))
    img = img.crop((left, top, left + 224, top + 224))
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return ((arr - MEAN) / STD).transpose(2, 0, 1)


def image_batch(assets):
    """The benchmark batch (same list as benches/encoders.rs): 16 photos, 16 MNIST digits."""
    photos = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "horse.png"]
    files = [os.path.join(assets, "data/skimage", photos[i % len(photos)]) for i in range(16)]
    files += [os.path.join(assets, "data/mnist/images/%05d.png" % i) for i in range(16)]
    return [open(f, "rb").read() for f in files]


# ---------------------------------------------------------------- MiniLM (BERT)
class Bert(nn.Module):
    def __init__(self, sd, layers=6, heads=12, eps=1e-12):
        super().__init__()
        self.sd = {k: v.float() for k, v in sd.items()}
        self.layers, self.heads, self.eps = layers, heads, eps

    def ln(self, x, p):
        return F.layer_norm(x, x.shape[-1:], self.sd[p + ".weight"], self.sd[p + ".bias"], self.eps)

    def lin(self, x, p):
        return F.linear(x, self.sd[p + ".weight"], self.sd[p + ".bias"])

    def forward(self, ids, mask):
        sd = self.sd
        b, t = ids.shape
        x = F.embedding(ids, sd["embeddings.word_embeddings.weight"])
        x = x + sd["embeddings.position_embeddings.weight"][:t] + sd["embeddings.token_type_embeddings.weight"][0]
        x = self.ln(x, "embeddings.LayerNorm")
        am = mask.bool()[:, None, None, :]
        for i in range(self.layers):
            p = "encoder.layer.%d" % i
            hd = x.shape[-1] // self.heads

            def split(y):
                return y.view(b, t, self.heads, hd).transpose(1, 2)

            q = split(self.lin(x, p + ".attention.self.query"))
            k = split(self.lin(x, p + ".attention.self.key"))
            v = split(self.lin(x, p + ".attention.self.value"))
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=am).transpose(1, 2).reshape(b, t, -1)
            x = self.ln(self.lin(ctx, p + ".attention.output.dense") + x, p + ".attention.output.LayerNorm")
            ff = F.gelu(self.lin(x, p + ".intermediate.dense"))
            x = self.ln(self.lin(ff, p + ".output.dense") + x, p + ".output.LayerNorm")
        return x


def pool(hidden, mask):
    m = mask.unsqueeze(-1).float()
    mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return F.normalize(mean, p=2, dim=1)


def load_minilm(assets):
    d = os.path.join(assets, "models/minilm_l6")
    bert = Bert(load_file(os.path.join(d, "model.safetensors"))).eval()
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    return bert, tok


def tokenize(tok, texts, fixed=None):
    if fixed:
        tok.enable_padding(length=fixed)
        tok.enable_truncation(fixed)
    else:
        tok.enable_padding()  # longest in batch
        tok.enable_truncation(256)
    enc = tok.encode_batch(texts)
    ids = torch.tensor([e.ids for e in enc], dtype=torch.long)
    mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.long)
    return ids, mask


def plan_groups(lens, overhead=256):
    """Same split as the Rust encoder: sorted lengths cut into contiguous groups minimising
    sum(rows * longest + overhead)."""
    n = len(lens)
    best, cut = [0] + [float("inf")] * n, [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):
            c = best[i] + (j - i) * max(lens[j - 1], 1) + overhead
            if c < best[j]:
                best[j], cut[j] = c, i
    groups, j = [], n
    while j > 0:
        groups.append((cut[j], j))
        j = cut[j]
    return groups[::-1]


def embed_sorted(bert, tok, texts):
    """Dynamic padding per length-homogeneous sub-batch (what the Rust `encode` does)."""
    ids, mask = tokenize(tok, texts)
    lens = mask.sum(1)
    order = torch.argsort(lens, stable=True)
    slens = lens[order].tolist()
    out = torch.empty(len(texts), bert.sd["embeddings.word_embeddings.weight"].shape[1])
    for i, j in plan_groups(slens):
        rows = order[i:j]
        t = max(slens[j - 1], 1)
        sub_ids, sub_mask = ids[rows, :t], mask[rows, :t]
        out[rows] = pool(bert(sub_ids, sub_mask), sub_mask)
    return out


def reviews(assets, n):
    with open(os.path.join(assets, "data/rotten_tomatoes/reviews.csv"), newline="") as f:
        return [row["text"] for _, row in zip(range(n), csv.DictReader(f))]


# ---------------------------------------------------------------- timing
def rate(fn, items, seconds):
    fn()  # warm-up (first-call allocation, JIT profiling runs)
    fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - start
        if el >= seconds and n >= 3:
            return items * n / el


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", default=".deps")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--reference", action="store_true")
    ap.add_argument("--only", choices=["images", "text"], default=None)
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    print("torch", torch.__version__, "threads", torch.get_num_threads())

    if a.reference:
        m = load_mobilenet(a.assets)
        imgs = [open(os.path.join(a.assets, "data/skimage", f), "rb").read() for f in ("chelsea.png", "coffee.png")]
        x = torch.from_numpy(np.stack([preprocess(b) for b in imgs]))
        logits = m.logits(x)
        feats = m(x)
        bert, tok = load_minilm(a.assets)
        texts = ["A man is playing a guitar.", "", "The film was a complete waste of time."]
        ids, mask = tokenize(tok, texts)
        emb = pool(bert(ids, mask), mask)
        print(json.dumps({
            "top5": logits.topk(5).indices.tolist(),
            "chelsea_features_first8": feats[0, :8].tolist(),
            "texts": texts,
            "minilm_first8": emb[:, :8].tolist(),
        }))
        return

    results = []
    if a.only in (None, "images"):
        m = load_mobilenet(a.assets)
        batch = image_batch(a.assets)
        x = torch.from_numpy(np.stack([preprocess(b) for b in batch]))
        m_cl = load_mobilenet(a.assets).to(memory_format=torch.channels_last)
        traced = torch.jit.freeze(torch.jit.trace(m_cl, x.to(memory_format=torch.channels_last)).eval())
        optimised = torch.jit.optimize_for_inference(torch.jit.trace(m_cl, x.to(memory_format=torch.channels_last)).eval())
        ref = m(x)
        for name, mod in [("frozen", traced), ("optimize_for_inference", optimised)]:
            diff = (mod(x.to(memory_format=torch.channels_last)) - ref).abs().max().item()
            print("  %s max |diff| vs eager: %.2e" % (name, diff))
        variants = [
            ("eager NCHW", m, False),
            ("eager channels-last", m_cl, True),
            ("TorchScript frozen channels-last", traced, True),
            ("TorchScript optimize_for_inference channels-last", optimised, True),
        ]
        for name, mod, cl in variants:
            xin = x.to(memory_format=torch.channels_last) if cl else x
            r_model = rate(lambda: mod(xin), len(batch), a.seconds)

            def e2e():
                xs = torch.from_numpy(np.stack([preprocess(b) for b in batch]))
                if cl:
                    xs = xs.to(memory_format=torch.channels_last)
                return mod(xs)

            r_e2e = rate(e2e, len(batch), a.seconds)
            results.append(("MobileNetV2 b32 " + name, r_model, r_e2e))
            print("%-60s model %7.1f img/s   decode+resize+model %7.1f img/s" % results[-1], flush=True)
        r_prep = rate(lambda: [preprocess(b) for b in batch], len(batch), a.seconds)
        print("%-60s %7.1f img/s" % ("PIL decode+resize+normalise only (1 thread)", r_prep), flush=True)

    if a.only in (None, "text"):
        bert, tok = load_minilm(a.assets)
        texts = reviews(a.assets, 64 * 8)
        batches = [texts[i:i + 64] for i in range(0, len(texts), 64)]
        for name, fixed in [("fixed 128 tokens", 128), ("dynamic padding (longest in batch, max 256)", None)]:
            toks = [tokenize(tok, b, fixed) for b in batches]
            state = {"i": 0}

            def step():
                ids, mask = toks[state["i"] % len(toks)]
                state["i"] += 1
                return pool(bert(ids, mask), mask)

            # One pass over all 8 batches per timed call, so every run sees the same texts.
            r = rate(lambda: [step() for _ in toks], 64 * len(toks), a.seconds)

            r_tok = rate(lambda: [(lambda im: pool(bert(*im), im[1]))(tokenize(tok, b, fixed)) for b in batches],
                         64 * len(batches), a.seconds)
            results.append(("MiniLM b64 " + name, r, r_tok))
            print("%-60s model %7.1f texts/s   tokenize+model %7.1f texts/s" % results[-1], flush=True)
        ref = torch.cat([pool(bert(*tokenize(tok, b)), tokenize(tok, b)[1]) for b in batches])
        got = torch.cat([embed_sorted(bert, tok, b) for b in batches])
        print("  length-sorted sub-batches max |diff| vs one padded batch: %.2e" % (got - ref).abs().max().item())
        r = rate(lambda: [embed_sorted(bert, tok, b) for b in batches], 64 * len(batches), a.seconds)
        print("%-60s tokenize+model %7.1f texts/s" % ("MiniLM b64 length-sorted sub-batches", r), flush=True)


if __name__ == "__main__":
    main()

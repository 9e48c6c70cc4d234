"""SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018) in PyTorch, CPU,
trained with full-softmax cross-entropy over the whole catalogue (the stronger variant: Petrov &
Macdonald, "gSASRec", RecSys 2023, and Klenitskiy & Vasilev, RecSys 2023, report that SASRec
trained with softmax cross-entropy over all items beats the paper's sampled binary cross-entropy).

The peer of bench/quality/run.py that uses the order of interactions, as Chorus's session agent
does. Architecture as the paper (and its reference implementations): item embedding (scaled by
sqrt(d)) + learned position embedding over a right-aligned window of the latest `maxlen` items,
dropout, `blocks` pre-LayerNorm blocks of causal multi-head self-attention and a point-wise
feed-forward network (two linear layers, ReLU), residual connections, a final LayerNorm; the
output at each position is scored against the (shared) item embeddings. Training targets: every
next item of the window (input s[:-1], target s[1:], the latest `maxlen` positions of each
user's sequence, as the paper: "we consider the most recent n actions"). Adam (betas 0.9, 0.98).

Scoring: the user's latest `maxlen` items in, the last position's output dotted with every item
embedding = scores over the catalogue (run.py masks seen items and computes the metrics).
"""

import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads, dropout):
        super().__init__()
        self.attn_norm = nn.LayerNorm(d, eps=1e-8)
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.ffn_norm = nn.LayerNorm(d, eps=1e-8)
        self.ffn = nn.Sequential(nn.Linear(d, d), nn.Dropout(dropout), nn.ReLU(), nn.Linear(d, d), nn.Dropout(dropout))

    def forward(self, x, causal, keep):
        q = self.attn_norm(x)
        a, _ = self.attn(q, x, x, attn_mask=causal, need_weights=False)
        x = q + a                       # the reference implementations' residual (on the normalised query)
        x = self.ffn_norm(x)
        x = x + self.ffn(x)
        return x * keep


class SASRec(nn.Module):
    def __init__(self, n_items, d, maxlen, blocks, heads, dropout):
        super().__init__()
        self.d, self.maxlen = d, maxlen
        self.item = nn.Embedding(n_items + 1, d, padding_idx=0)   # 0 = padding; item j is row j + 1
        self.pos = nn.Embedding(maxlen, d)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d, heads, dropout) for _ in range(blocks))
        self.norm = nn.LayerNorm(d, eps=1e-8)
        self.register_buffer("causal", torch.triu(torch.ones(maxlen, maxlen, dtype=torch.bool), diagonal=1))
        for name, p in self.named_parameters():  # Xavier, as the reference PyTorch port
            if p.dim() > 1:
                nn.init.xavier_normal_(p)
        with torch.no_grad():
            self.item.weight[0].zero_()

    def features(self, seqs):
        """seqs: (B, maxlen) long, right-aligned, 0 = padding -> (B, maxlen, d)."""
        keep = (seqs != 0).unsqueeze(-1).float()
        x = self.item(seqs) * math.sqrt(self.d)
        x = x + self.pos.weight.unsqueeze(0)
        x = self.drop(x) * keep
        for b in self.blocks:
            x = b(x, self.causal, keep)
        return self.norm(x)

    def logits(self, h):
        """h: (N, d) -> (N, n_items) scores over the catalogue (padding row excluded)."""
        return h @ self.item.weight[1:].T


def windows(seqs, maxlen):
    """Per user: the latest maxlen + 1 items -> (input, target) right-aligned (maxlen,) arrays, items
    shifted by one (0 = padding). Users with fewer than 2 items give no training example."""
    xs, ys = [], []
    for s in seqs:
        if len(s) < 2:
            continue
        s = np.asarray(s[-(maxlen + 1):], dtype=np.int64) + 1
        x, y = np.zeros(maxlen, np.int64), np.zeros(maxlen, np.int64)
        x[maxlen - (len(s) - 1):], y[maxlen - (len(s) - 1):] = s[:-1], s[1:]
        xs.append(x); ys.append(y)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def inputs(seqs, users, maxlen):
    out = np.zeros((len(users), maxlen), np.int64)
    for r, u in enumerate(users):
        s = np.asarray(seqs[u][-maxlen:], dtype=np.int64) + 1
        if len(s):
            out[r, maxlen - len(s):] = s
    return torch.from_numpy(out)


def make_scorer(model, seqs, maxlen):
    def score(users):
        model.eval()
        with torch.no_grad():
            h = model.features(inputs(seqs, np.asarray(users).tolist(), maxlen))[:, -1, :]
            return model.logits(h).numpy()
    return score


def train(seqs, n_items, p, seed, threads, epochs, evaluate=None, eval_every=5, patience=3, log=None):
    """Trains on `seqs` (per dense user: dense item indices, oldest first). With `evaluate` (a
    function scorer -> validation NDCG), evaluates every `eval_every` epochs and stops after
    `patience` evaluations without improvement, or at `epochs`; returns (scorer of the last model,
    history [(epoch, ndcg, seconds)], best epoch). Without it, trains exactly `epochs` epochs."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = SASRec(n_items, p["hidden"], p["maxlen"], p["blocks"], p["heads"], p["dropout"])
    opt = torch.optim.Adam(model.parameters(), lr=p["lr"], betas=(0.9, 0.98))
    X, Y = windows(seqs, p["maxlen"])
    history, best, best_epoch, since, t0 = [], -1.0, 0, 0, time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.from_numpy(rng.permutation(len(X)))
        for start in range(0, len(X), p["batch"]):
            idx = order[start:start + p["batch"]]
            x, y = X[idx], Y[idx]
            h = model.features(x)
            m = y != 0
            loss = F.cross_entropy(model.logits(h[m]), y[m] - 1)   # full softmax over the catalogue
            opt.zero_grad()
            loss.backward()
            opt.step()
        if evaluate is not None and (epoch % eval_every == 0 or epoch == epochs):
            ndcg = evaluate(make_scorer(model, seqs, p["maxlen"]))
            history.append((epoch, ndcg, time.perf_counter() - t0))
            if log:
                log(f"    sasrec {p} epoch {epoch}: loss {loss.item():.3f}, validation NDCG {ndcg:.4f} ({time.perf_counter() - t0:.0f} s)")
            if ndcg > best:
                best, best_epoch, since = ndcg, epoch, 0
            else:
                since += 1
                if since >= patience:
                    break
    return make_scorer(model, seqs, p["maxlen"]), history, best_epoch

#!/usr/bin/python3
"""bench_torch_decoder.py — the PyTorch anchors for the decoder (issue 15,
items 2 and 4): beam search of our own model file at batch 1, and a training
step of the same network, one thread.

The decoder is defined here from libcommon/sat/decoder.h (soft attention):

    h0 = tanh(ā·W_h0 + b_h0)            c0 = tanh(ā·W_c0 + b_c0)
    e_ti = w_att · tanh(a_i·W_a + b_a + h_{t-1}·U_a)     α_t = softmax_i(e_t / τ)
    β_t = σ(h_{t-1}·w_β + b_β)          ẑ_t = β_t Σ_i α_ti a_i
    [i f o g] = [E y_{t-1}; ẑ_t; h_{t-1}]·W + b    (σ σ σ tanh)
    c_t = f⊙c_{t-1} + i⊙g               h_t = o⊙tanh(c_t)
    p(y_t) = softmax(drop(tanh(E y_{t-1} + drop(h_t)·L_h + b_h + ẑ_t·L_z))·L_o + b_o)

1. Beam search: loads MODEL (.satm, formats/model.md: f16 or f32 params) and
   reads `features` records from FEATS (.sat, formats/stream.md: f16, f32 or
   u8), then captions each image alone (batch 1) with sat-beam's rules:
   k = 3, min-len 1, max-len 30, <start> and <unk> never emitted, no length
   normalisation, ties kept in (hypothesis, word) order.  Prints the
   captions (--print, "id<TAB>caption" like `sat-beam -f text`) or times
   them: images/s, median of RUNS passes over the images, torch.no_grad().
2. Training step: the same network with autograd at bench_decoder's shape
   (tests/bench/bench_decoder.c): B = 64 captions of 13 images, T = 16
   (lengths 10-16, random tokens), V = 2600, random weights and features,
   dropout 0.5 (inverted), loss = (cross-entropy summed over the targets
   + λ Σ_captions Σ_i (1 − Σ_t α_ti)², λ = 1) / B, captions sorted by length
   and each step run on the captions still going (as sat packs them).
   Times forward+backward (what bench_decoder's "forward+backward" line
   measures) and forward+backward+Adam, CPU time (time.process_time) and
   wall, medians.

    /usr/bin/python3 scripts/bench_torch_decoder.py [--runs N] [--limit N]
        [--print] [--no-train] [--no-beam] MODEL FEATS

Output lines scripts/bench.sh reads:
    beam 3, batch 1: X images/s median ...        (fifth field)
    training step fwd+bwd: Y ms CPU median ...   (fourth field)

One thread (torch.set_num_threads(1)).  Needs PyTorch and msgpack for
/usr/bin/python3 (Debian: apt-get install python3-torch python3-msgpack);
exits 0 with a message when either is missing.
"""
import argparse
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("bench_torch_decoder: PyTorch is not installed (apt-get install python3-torch): no anchor")
    sys.exit(0)
try:
    import msgpack
except ImportError:
    print("bench_torch_decoder: msgpack is not installed (apt-get install python3-msgpack): no anchor")
    sys.exit(0)

END, START, UNK = 0, 1, 2
NAMES = ["init_h.W", "init_h.b", "init_c.W", "init_c.b", "att.W", "att.b", "att.U", "att.v",
         "gate.w", "gate.b", "embed", "lstm.W", "lstm.b", "out.Lh", "out.bh", "out.Lz",
         "out.Lo", "out.bo"]


def load_model(path):
    """(weights: name -> float32 tensor, vocab, config, τ) of a decoder .satm."""
    with open(path, "rb") as f:
        m = msgpack.unpackb(f.read(), raw=False)
    if m.get("type") != "model" or m.get("kind") != "decoder":
        sys.exit(f"{path}: not a decoder model file")
    dtype = {"f16": torch.float16, "f32": torch.float32}[m["dtype"]]
    params = torch.frombuffer(bytearray(m["params"]), dtype=dtype).float()
    w = {}
    for t in m["tensors"]:
        n = 1
        for s in t["shape"]:
            n *= s
        w[t["name"]] = params[t["offset"]:t["offset"] + n].reshape(t["shape"]).clone()
    missing = [n for n in NAMES if n not in w]
    if missing:
        sys.exit(f"{path}: tensors missing: {missing}")
    cfg = {k: int(v) for k, v in m["config"].items() if k in "LDEHAV"}
    tau = float(m["config"].get("att.temperature", 1.0))
    return w, m["vocab"], cfg, tau


def read_features(path, limit):
    """[(id, L×D float32 tensor)] of the features records of a .sat stream."""
    out = []
    with open(path, "rb") as f:
        for r in msgpack.Unpacker(f, raw=False, max_buffer_size=1 << 31):
            if not isinstance(r, dict) or r.get("type") != "features":
                continue
            h, w_, c, dt = r["h"], r["w"], r["c"], r.get("dtype", "f16")
            if dt == "u8":
                q = torch.frombuffer(bytearray(r["data"]), dtype=torch.uint8).float()
                x = r["scale"] * (q - r["zero_point"])
            else:
                x = torch.frombuffer(bytearray(r["data"]),
                                     dtype={"f16": torch.float16, "f32": torch.float32}[dt]).float()
            out.append((r["id"], x.reshape(h * w_, c)))
            if limit and len(out) >= limit:
                break
    return out


class Decoder:
    """The soft-attention decoder's inference step on weights w."""

    def __init__(self, w, tau):
        self.w, self.tau = w, tau
        self.E = w["embed"].shape[1]
        self.H = w["att.U"].shape[0]

    def start(self, a):
        """Per image: the attention projection (L×A) and (h0, c0) (1×H each)."""
        w = self.w
        proj = torch.addmm(w["att.b"], a, w["att.W"])
        mean = a.mean(0, keepdim=True)
        h = torch.tanh(torch.addmm(w["init_h.b"], mean, w["init_h.W"]))
        c = torch.tanh(torch.addmm(w["init_c.b"], mean, w["init_c.W"]))
        return proj, h, c

    def step(self, a, proj, prev, h, c):
        """k rows: log p(y_t) (k×V), h, c."""
        w, H = self.w, self.H
        q = h @ w["att.U"]                                          # k×A
        e = torch.tanh(proj.unsqueeze(0) + q.unsqueeze(1)) @ w["att.v"]  # k×L
        alpha = torch.softmax(e / self.tau, 1)
        beta = torch.sigmoid(h @ w["gate.w"] + w["gate.b"]).unsqueeze(1)
        z = beta * (alpha @ a)                                      # k×D
        emb = w["embed"][prev]
        gates = torch.addmm(w["lstm.b"], torch.cat([emb, z, h], 1), w["lstm.W"])
        i, f, o = torch.sigmoid(gates[:, :3 * H]).split(H, 1)
        g = torch.tanh(gates[:, 3 * H:])
        c = f * c + i * g
        h = o * torch.tanh(c)
        act = torch.tanh(emb + torch.addmm(w["out.bh"], h, w["out.Lh"]) + z @ w["out.Lz"])
        logits = torch.addmm(w["out.bo"], act, w["out.Lo"])
        return torch.log_softmax(logits, 1), h, c


def beam_search(dec, a, k=3, min_len=1, max_len=30):
    """sat-beam's beam search of one image (libcommon/beam.c advance()): the best caption's tokens."""
    proj, h, c = dec.start(a)
    live = [([], 0.0)]                  # (tokens, logprob) per live hypothesis, rows of h, c
    done = []
    V = dec.w["out.bo"].shape[0]
    banned = torch.zeros(V, dtype=torch.bool)
    banned[START] = banned[UNK] = True
    for t in range(max_len + 1):
        if not live:
            break
        prev = torch.tensor([toks[-1] if toks else START for toks, _ in live])
        logp, h, c = dec.step(a, proj, prev, h, c)
        scores = logp.double() + torch.tensor([lp for _, lp in live], dtype=torch.float64)[:, None]
        mask = banned.clone()
        if t == max_len:
            mask[:] = True
            mask[END] = False
        if t < min_len:
            mask[END] = True
        scores[:, mask] = float("-inf")
        want = k - len(done)
        flat = scores.flatten()
        top = torch.topk(flat, want)
        # sat-beam keeps equal scores in (hypothesis, word) order: a stable order
        cand = sorted(zip(top.values.tolist(), top.indices.tolist()), key=lambda x: (-x[0], x[1]))
        nxt, parents = [], []
        for score, idx in cand:
            if len(nxt) >= want or len(done) >= k:
                break
            j, v = divmod(idx, V)
            toks = live[j][0]
            if v == END:
                done.append((toks, score))
                want -= 1
            else:
                nxt.append((toks + [v], score))
                parents.append(j)
        if len(done) >= k:
            break
        live = nxt
        if parents:
            idx = torch.tensor(parents)
            h, c = h[idx], c[idx]
    done.sort(key=lambda x: -x[1])
    return done[0][0]


class TrainDecoder(torch.nn.Module):
    """The same network with autograd, for the training-step anchor."""

    def __init__(self, L, D, E, H, A, V):
        super().__init__()
        p = lambda *s: torch.nn.Parameter(torch.empty(*s).uniform_(-0.05, 0.05))
        self.H = H
        self.init_h_W, self.init_h_b = p(D, H), p(H)
        self.init_c_W, self.init_c_b = p(D, H), p(H)
        self.att_W, self.att_b, self.att_U, self.att_v = p(D, A), p(A), p(H, A), p(A)
        self.gate_w, self.gate_b = p(H), p(1)
        self.embed = p(V, E)
        self.lstm_W, self.lstm_b = p(E + D + H, 4 * H), p(4 * H)
        self.out_Lh, self.out_bh, self.out_Lz = p(H, E), p(E), p(D, E)
        self.out_Lo, self.out_bo = p(E, V), p(V)

    def loss(self, feats, image, tokens, lengths, lam=1.0, p=0.5):
        """feats images×L×D; captions sorted by length, longest first; tokens B×(T+1)."""
        H, B = self.H, tokens.shape[0]
        proj = torch.baddbmm(self.att_b, feats, self.att_W.expand(feats.shape[0], -1, -1))
        mean = feats.mean(1)[image]
        h = torch.tanh(mean @ self.init_h_W + self.init_h_b)
        c = torch.tanh(mean @ self.init_c_W + self.init_c_b)
        a = feats[image]                                  # B×L×D (no gradient)
        xent, asum = 0.0, torch.zeros(B, feats.shape[1])
        for t in range(int(lengths[0])):
            n = int((lengths > t).sum())                  # captions still going
            h, c, a = h[:n], c[:n], a[:n]
            pr = proj[image[:n]]                          # n×L×A, shared by an image's captions
            e = torch.tanh(pr + (h @ self.att_U).unsqueeze(1)) @ self.att_v
            alpha = torch.softmax(e, 1)
            asum = torch.cat([asum[:n] + alpha, asum[n:]]) if n < B else asum + alpha
            beta = torch.sigmoid(h @ self.gate_w + self.gate_b).unsqueeze(1)
            z = beta * torch.bmm(alpha.unsqueeze(1), a).squeeze(1)
            emb = self.embed[tokens[:n, t]]
            gates = torch.cat([emb, z, h], 1) @ self.lstm_W + self.lstm_b
            i, f, o = torch.sigmoid(gates[:, :3 * H]).split(H, 1)
            c = f * c + i * torch.tanh(gates[:, 3 * H:])
            h = o * torch.tanh(c)
            act = torch.tanh(emb + F.dropout(h, p) @ self.out_Lh + self.out_bh + z @ self.out_Lz)
            logits = F.dropout(act, p) @ self.out_Lo + self.out_bo
            xent = xent + F.cross_entropy(logits, tokens[:n, t + 1], reduction="sum")
        return (xent + lam * ((1 - asum) ** 2).sum()) / B


def train_anchor(runs):
    L, D, E, H, A, V, B, T, IMAGES = 196, 1280, 256, 512, 256, 2600, 64, 16, 13
    g = torch.Generator().manual_seed(1)
    model = TrainDecoder(L, D, E, H, A, V)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    feats = torch.rand(IMAGES, L, D, generator=g)
    lengths = torch.randint(10, T + 1, (B,), generator=g).sort(descending=True).values
    tokens = torch.randint(3, V, (B, T + 1), generator=g)
    image = torch.arange(B) % IMAGES
    fb, fb_wall, step = [], [], []
    for i in range(runs + 1):                             # the first is a warm-up
        c0, w0 = time.process_time(), time.perf_counter()
        opt.zero_grad()
        model.loss(feats, image, tokens, lengths).backward()
        c1, w1 = time.process_time(), time.perf_counter()
        opt.step()
        c2 = time.process_time()
        if i:
            fb.append((c1 - c0) * 1e3)
            fb_wall.append((w1 - w0) * 1e3)
            step.append((c2 - c0) * 1e3)
    print(f"training step fwd+bwd: {statistics.median(fb):.1f} ms CPU median "
          f"(wall {statistics.median(fb_wall):.1f} ms; with Adam {statistics.median(step):.1f} ms CPU) "
          f"over {runs} runs, B={B} captions of {IMAGES} images, T={T} (lengths 10-16), "
          f"L={L} D={D} E={E} H={H} A={A} V={V}, dropout 0.5, lambda 1, 1 thread")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?")
    ap.add_argument("feats", nargs="?")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--train-runs", type=int, default=5)
    ap.add_argument("--limit", type=int, default=0, help="at most this many images")
    ap.add_argument("--print", action="store_true", help="print the captions, no timing")
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--no-beam", action="store_true")
    ap.add_argument("-k", type=int, default=3)
    o = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if not o.no_beam:
        if not o.model or not o.feats:
            ap.error("MODEL and FEATS are needed for the beam search (or --no-beam)")
        w, vocab, cfg, tau = load_model(o.model)
        dec = Decoder(w, tau)
        images = read_features(o.feats, o.limit)
        with torch.no_grad():
            if o.print:
                for id_, a in images:
                    print(f"{id_}\t{' '.join(vocab[t] for t in beam_search(dec, a, o.k))}")
                return
            beam_search(dec, images[0][1], o.k)               # warm-up
            rates = []
            for _ in range(o.runs):
                t0 = time.perf_counter()
                for _, a in images:
                    beam_search(dec, a, o.k)
                rates.append(len(images) / (time.perf_counter() - t0))
        print(f"beam {o.k}, batch 1: {statistics.median(rates):.2f} images/s median "
              f"(wall, {o.runs} runs over {len(images)} images, min {min(rates):.2f}, "
              f"max {max(rates):.2f}; torch {torch.__version__}, 1 thread, V={cfg['V']})")
    if not o.no_train and not o.print:
        train_anchor(o.train_runs)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""What the hyper-cleaning problem's own solution can reach, whatever the solver.

The bilevel problem picks v, then theta = argmin_theta g(v, theta) with
g = mean_i v_i CE_i(train) + l2 |theta|^2. Give it the best v there could be,
the clean mask (v_i = 1 where the label survived corruption, 0 elsewhere),
solve the inner problem to convergence (L-BFGS, float64) and report the test
accuracy of that theta, and f, the validation loss the outer level minimizes. A solver that finds the exact solution of the problem
as posed cannot beat this by cleaning better; it can differ only where its
theta is not the inner minimizer (early stopping, the validation set's pull
on theta in BOME's step).

The data are bome's own for the same seed (`bome run hyperclean --seed N`,
default 0): its generator, shuffle and corruption are reproduced here, so the
split into 50 000 train / 5 000 validation / 5 000 held-out, the
standardization and the 25 000 corrupted labels are the ones the C run sees.

With --v FILE (written by `bome run hyperclean --save-v FILE`) it also solves
the inner problem at a learned v: how good the v a solver found is, apart from
where its theta stands.

    /usr/bin/python3 bench/hyperclean_bound.py [--seeds 0,1,2] [--l2 0.001] [--v FILE]
"""
import argparse
import gzip
import os

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch  # noqa: E402  (after the thread variables, which torch reads at import)
import torch.nn.functional as F  # noqa: E402


def idx(path, offset):
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load(data_dir):
    p = lambda name: os.path.join(data_dir, name)
    x = idx(p("train-images-idx3-ubyte.gz"), 16).reshape(-1, 784) / 255.0
    y = idx(p("train-labels-idx1-ubyte.gz"), 8).astype(np.int64)
    xt = idx(p("t10k-images-idx3-ubyte.gz"), 16).reshape(-1, 784) / 255.0
    yt = idx(p("t10k-labels-idx1-ubyte.gz"), 8).astype(np.int64)
    return x, y, xt, yt


M64 = (1 << 64) - 1


class BomeRng:
    """bome's generator (opt/rng.c): xoshiro256** seeded by splitmix64, so that
    the split and the corruption are bome's own for the same --seed."""

    def __init__(self, seed):
        self.s = []
        x = seed & M64
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & M64

    def u64(self):
        s = self.s
        result = (self._rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def below(self, n):
        limit = M64 - M64 % n
        while True:
            x = self.u64()
            if x < limit:
                return x % n

    def shuffle(self, perm):
        for i in range(len(perm), 1, -1):
            j = self.below(i)
            perm[i - 1], perm[j] = perm[j], perm[i - 1]


def split(seed, x, y, xt, yt, n_train=50000, n_val=5000, n_noisy=25000):
    """data_split_load's split (data/protocol.c) for the same seed."""
    rng = BomeRng(seed)
    perm = list(range(len(x)))
    rng.shuffle(perm)
    tr = np.array(perm[:n_train])
    va = np.array(perm[n_train:n_train + n_val])
    mean, std = x[tr].mean(), x[tr].std()
    X = torch.tensor((x[tr] - mean) / std)
    Xt = torch.tensor((xt - mean) / std)
    val = (torch.tensor((x[va] - mean) / std), torch.tensor(y[va]))
    y_true = torch.tensor(y[tr])
    y_noisy = y_true.clone()
    which = list(range(n_train))
    rng.shuffle(which)
    for k in range(n_noisy):
        y_noisy[which[k]] = rng.below(10)
    return X, y_noisy, (y_noisy == y_true).double(), Xt, torch.tensor(yt), tr, val


def read_v(path, index, y_noisy):
    """v from --save-v, checked against this split row by row."""
    rows = np.loadtxt(path, delimiter=",", skiprows=1)
    if rows.shape != (len(index), 4) or not (rows[:, 0] == index).all() or not (rows[:, 2] == y_noisy.numpy()).all():
        raise SystemExit(f"{path}: not a v of this split (run both with the same --seed and sizes)")
    return torch.tensor(rows[:, 1])


def inner_solution(X, y, v, l2, iters):
    W = torch.zeros(10, X.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(10, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], max_iter=iters, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-10, tolerance_change=1e-14)

    def closure():
        opt.zero_grad()
        ce = F.cross_entropy(X @ W.T + b, y, reduction="none")
        loss = (ce * v).mean() + l2 * (W.pow(2).sum() + b.pow(2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        grad = torch.cat([W.grad.flatten(), b.grad]).norm().item()
    return W.detach(), b.detach(), grad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--seeds", default="0", help="comma-separated; bome's default seed is 0")
    ap.add_argument("--l2", default="0.001", help="comma-separated L2 weights of g (the problem's: 0.001)")
    ap.add_argument("--iters", type=int, default=500, help="L-BFGS iterations")
    ap.add_argument("--v", action="append", default=[], metavar="FILE",
                    help="a learned v from bome run hyperclean --save-v (the first seed's split); repeatable")
    a = ap.parse_args()
    torch.set_num_threads(1)
    x, y, xt, yt = load(a.data_dir)
    print(f"{'seed':>4} {'l2':>8} {'v':>16} {'test acc':>9} {'f (val CE)':>10} {'|grad g|':>9}")
    for n, seed in enumerate([int(s) for s in a.seeds.split(",")]):
        X, y_noisy, clean, Xt, y_test, index, (Xv, yv) = split(seed, x, y, xt, yt)
        weights = [("clean mask", clean), ("0.5 (start)", torch.full_like(clean, 0.5))]
        if n == 0:
            weights += [(os.path.basename(f), read_v(f, index, y_noisy)) for f in a.v]
        for l2 in [float(s) for s in a.l2.split(",")]:
            for name, v in weights:
                W, b, grad = inner_solution(X, y_noisy, v, l2, a.iters)
                acc = ((Xt @ W.T + b).argmax(1) == y_test).double().mean().item()
                f = F.cross_entropy(Xv @ W.T + b, yv).item()
                print(f"{seed:>4} {l2:>8g} {name:>16} {acc:>9.4f} {f:>10.4f} {grad:>9.1e}", flush=True)


if __name__ == "__main__":
    main()

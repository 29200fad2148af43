#!/usr/bin/python3
"""PyTorch peer of bench_bome: the same BOME outer steps in PyTorch.

  hyperclean  data hyper-cleaning, 50 000 x 784 train, 5 000 validation,
              linear 10-class model, T = 10, alpha = 0.01, step 0.01 for theta
              and 100 for v, outer momentum 0.9 (torch.optim.SGD), phi = eta q
              with eta = 0.5, g = mean_i clip(v_i, 0, 1) CE_i + 0.001 |theta|^2,
              f = mean CE(validation): seconds per outer step, float64 and
              float32; --mlp H: the 784-H-10 tanh network instead.
  coreset     the paper's toy (T = 10, alpha = xi = 0.05, eta = 0.5,
              phi = eta |grad q|^2): microseconds per outer step.

Each thread count runs in a fresh child process with OPENBLAS_NUM_THREADS and
OMP_NUM_THREADS set before torch loads, and torch.set_num_threads(n) (Debian's
torch calls the system OpenBLAS, the BLAS bench_bome uses). Medians over
--reps repetitions after warm-up steps. Run it with Debian's interpreter:

    /usr/bin/python3 bench/peer_torch.py [--threads 1,2] [--reps N] ...
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

T_INNER = 10
ALPHA = 0.01
LR_THETA = 0.01
LR_V = 100.0
MOMENTUM = 0.9
ETA = 0.5
L2 = 0.001
EPS = 1e-8


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---- hyper-cleaning -----------------------------------------------------------


def synthetic(torch, n, nv, d=784, k=10, seed=20220922):
    """The generator semantics of bench_bome's synthetic data (not its exact
    values): uniform pixels plus 0.5 times a +-1 class prototype, standardized
    with the train split's scalar mean and std, half the train labels replaced
    by uniform classes."""
    gen = torch.Generator().manual_seed(seed)
    proto = (torch.rand(k, d, generator=gen, dtype=torch.float64) < 0.5).double() - 0.5
    y = torch.randint(0, k, (n,), generator=gen)
    yv = torch.randint(0, k, (nv,), generator=gen)
    x = torch.rand(n, d, generator=gen, dtype=torch.float64) + proto[y]
    xv = torch.rand(nv, d, generator=gen, dtype=torch.float64) + proto[yv]
    mean, sd = x.mean(), x.std(unbiased=False)
    x = (x - mean) / sd
    xv = (xv - mean) / sd
    flip = torch.rand(n, generator=gen) < 0.5
    y = torch.where(flip, torch.randint(0, k, (n,), generator=gen), y)
    return x, y, xv, yv


def warm_start(torch, F, x, y, xv, yv, steps=20, lr=0.05, k=10):
    """bench_bome's warm start: full-batch SGD with momentum 0.9 on the mean
    CE of train + validation plus the L2 term, from small W, b = 0."""
    gen = torch.Generator().manual_seed(7)
    W = (0.01 * (2 * torch.rand(k, x.shape[1], generator=gen, dtype=x.dtype) - 1)).requires_grad_()
    b = torch.zeros(k, dtype=x.dtype, requires_grad=True)
    opt = torch.optim.SGD([W, b], lr=lr, momentum=0.9)
    n, nv = x.shape[0], xv.shape[0]
    for _ in range(steps):
        loss = (n * F.cross_entropy(x @ W.t() + b, y) + nv * F.cross_entropy(xv @ W.t() + b, yv)) / (n + nv)
        loss = loss + L2 * (W.pow(2).sum() + b.pow(2).sum())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return W.detach(), b.detach()


class HyperClean:
    """The BOME hyper-cleaning outer step as the released code writes it:
    torch.autograd for every gradient, torch.optim.SGD for the outer update."""

    def __init__(self, torch, F, x, y, xv, yv, theta0):
        """theta0: [W, b] (the linear model) or [W1, b1, W2, b2] (the
        784-H-10 network with tanh, as problems/hc_model.c)."""
        self.torch, self.F = torch, F
        self.x, self.y, self.xv, self.yv = x, y, xv, yv
        n = x.shape[0]
        self.v = torch.full((n,), 0.5, dtype=x.dtype, requires_grad=True)
        self.theta = [t.clone().requires_grad_() for t in theta0]
        self.opt = torch.optim.SGD(
            [{"params": [self.v], "lr": LR_V}, {"params": self.theta, "lr": LR_THETA}],
            lr=LR_THETA,
            momentum=MOMENTUM,
        )
        self.last = {}

    @staticmethod
    def logits(x, th):
        h = x @ th[0].t() + th[1]
        return h if len(th) == 2 else h.tanh() @ th[2].t() + th[3]

    def g(self, v, th):
        ce = self.F.cross_entropy(self.logits(self.x, th), self.y, reduction="none")
        return (ce * v.clamp(0, 1)).mean() + L2 * sum(t.pow(2).sum() for t in th)

    def step(self):
        torch = self.torch
        v, th = self.v, self.theta
        # 1. inner loop from a fresh copy of theta_k, nothing recorded across steps
        tt = [t.detach().clone().requires_grad_() for t in th]
        vk = v.detach()
        for _ in range(T_INNER):
            gs = torch.autograd.grad(self.g(vk, tt), tt)
            with torch.no_grad():
                for t, g in zip(tt, gs):
                    t -= ALPHA * g
        # 2. f, q = g(v, theta) - g(v, sg[theta_T]) and their gradients
        f = self.F.cross_entropy(self.logits(self.xv, th), self.yv)
        gf = torch.autograd.grad(f, th)
        q = self.g(v, th) - self.g(v, [t.detach() for t in tt])
        gq_v, *gq = torch.autograd.grad(q, [v] + th)
        # 3. lambda over the concatenated (v, theta); grad_v f = 0
        with torch.no_grad():
            fq = sum((a * b).sum() for a, b in zip(gf, gq))
            qq = (gq_v * gq_v).sum() + sum((b * b).sum() for b in gq)
            lam = torch.clamp((ETA * q.detach() - fq) / (qq + EPS), min=0)
        # 4. one shared direction, SGD with momentum, then the box on v
        v.grad = lam * gq_v
        for t, a, b in zip(th, gf, gq):
            t.grad = a + lam * b
        self.opt.step()
        with torch.no_grad():
            v.clamp_(0, 1)
        self.last = {"f": float(f), "q": float(q), "lambda": float(lam)}


def bench_hyperclean(torch, F, a, dtype_name):
    dtype = torch.float64 if dtype_name == "float64" else torch.float32
    nv = max(a.rows // 10, 1)
    t0 = time.perf_counter()
    x, y, xv, yv = synthetic(torch, a.rows, nv)
    x, xv = x.to(dtype), xv.to(dtype)
    if a.mlp:
        # the 784-H-10 network from uniform(+-1/sqrt(fan_in)), as hc_model.c
        gen = torch.Generator().manual_seed(1)
        theta0 = []
        for rows, cols in ((a.mlp, x.shape[1]), (10, a.mlp)):
            bound = cols ** -0.5
            theta0 += [(2 * torch.rand(rows, cols, generator=gen, dtype=x.dtype) - 1) * bound,
                       (2 * torch.rand(rows, generator=gen, dtype=x.dtype) - 1) * bound]
    else:
        theta0 = list(warm_start(torch, F, x, y, xv, yv))
    setup = time.perf_counter() - t0
    hc = HyperClean(torch, F, x, y, xv, yv, theta0)
    for _ in range(a.warmup):
        hc.step()
    ts = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        hc.step()
        ts.append(time.perf_counter() - t0)
    return {"median": med(ts), "min": min(ts), "reps": len(ts), "setup": setup, **hc.last}


# ---- coreset --------------------------------------------------------------------


def bench_coreset(torch, a):
    C = torch.tensor([[1.0, 3.0], [3.0, 1.0], [-2.0, 2.0], [-3.0, -2.0]], dtype=torch.float64)
    Y = torch.tensor([3.0, -2.0], dtype=torch.float64)
    alpha = xi = 0.05
    eta = 0.5

    def g(w, x):
        return ((torch.softmax(w, 0) @ C - x) ** 2).sum()

    def f(x):
        return 0.1 * ((x - Y) ** 2).sum()

    def run(steps):
        w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
        x = torch.tensor([0.0, 3.0], dtype=torch.float64, requires_grad=True)
        for _ in range(steps):
            xt = x.detach().clone().requires_grad_()
            wk = w.detach()
            for _ in range(10):
                (gx,) = torch.autograd.grad(g(wk, xt), [xt])
                with torch.no_grad():
                    xt -= alpha * gx
            (fx,) = torch.autograd.grad(f(x), [x])
            q = g(w, x) - g(w, xt.detach())
            qw, qx = torch.autograd.grad(q, [w, x])
            with torch.no_grad():
                fq = (fx * qx).sum()
                qq = (qw * qw).sum() + (qx * qx).sum()
                lam = torch.clamp((eta * qq - fq) / (qq + EPS), min=0)
                w -= xi * lam * qw
                x -= xi * (fx + lam * qx)
        return x.detach()

    run(50)  # warm-up
    ts = []
    for _ in range(a.coreset_reps):
        t0 = time.perf_counter()
        xs = run(a.coreset_steps)
        ts.append((time.perf_counter() - t0) / a.coreset_steps)
    return {"median": med(ts), "min": min(ts), "reps": len(ts), "x": [float(xs[0]), float(xs[1])]}


def med(v):
    s = sorted(v)
    m = len(s) // 2
    return s[m] if len(s) % 2 else 0.5 * (s[m - 1] + s[m])


# ---- driver ------------------------------------------------------------------------


def child(a):
    """Runs in a process whose environment fixed the BLAS threads."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(a.child)
    out = {"threads": a.child, "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "cases": {}}
    if a.only in (None, "coreset"):
        out["cases"]["coreset"] = bench_coreset(torch, a)
    if a.only in (None, "hyperclean"):
        for dt in a.dtypes.split(","):
            out["cases"]["hyperclean-" + dt] = bench_hyperclean(torch, F, a, dt)
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(
        description="PyTorch peer of bench_bome: the BOME hyper-cleaning and coreset outer steps "
        "in PyTorch, median seconds (microseconds for coreset) per outer step.",
        epilog="Run with /usr/bin/python3 (Debian's python3-torch).",
    )
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts, each in a fresh process (1,2)")
    p.add_argument("--reps", type=int, default=10, help="timed hyper-cleaning steps per dtype (>= 10; 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed hyper-cleaning steps first (2)")
    p.add_argument("--rows", type=int, default=50000, help="training rows (50000; validation = rows / 10)")
    p.add_argument("--dtypes", default="float64,float32", help="float64,float32")
    p.add_argument("--mlp", type=int, default=0, help="hyper-cleaning with the 784-H-10 tanh network (H; 0: linear)")
    p.add_argument("--only", choices=["coreset", "hyperclean"], help="run one case")
    p.add_argument("--coreset-reps", type=int, default=30, help="coreset repetitions (30)")
    p.add_argument("--coreset-steps", type=int, default=200, help="coreset steps per repetition (200)")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.reps < 10:
        print("note: --reps raised to 10", file=sys.stderr)
        a.reps = 10
    if a.coreset_reps < 10:
        a.coreset_reps = 10
    if a.child:
        child(a)
        return

    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; python {platform.python_version()} ({sys.executable})")
    rows = []
    for n in [int(t) for t in a.threads.split(",")]:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(n), OMP_NUM_THREADS=str(n))
        args = [sys.executable, os.path.abspath(__file__), "--child", str(n), "--reps", str(a.reps),
                "--warmup", str(a.warmup), "--rows", str(a.rows), "--dtypes", a.dtypes,
                "--coreset-reps", str(a.coreset_reps), "--coreset-steps", str(a.coreset_steps), "--mlp", str(a.mlp)]
        if a.only:
            args += ["--only", a.only]
        r = subprocess.run(args, env=env, stdout=subprocess.PIPE, text=True)
        if r.returncode:
            sys.exit(f"peer_torch: the child for {n} thread(s) failed ({r.returncode})")
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))

    print(f"torch {rows[0]['torch']}; OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = torch.set_num_threads = threads")
    if a.only in (None, "hyperclean"):
        nv = max(a.rows // 10, 1)
        model = f"784-{a.mlp}-10 tanh network" if a.mlp else "linear model"
        print(f"\nhyperclean ({model}): {a.rows} x 784 train, {nv} validation, T = {T_INNER}; seconds per outer step, "
              f"median of {a.reps} after {a.warmup} warm-up steps")
        print(f"  {'threads':>7} {'dtype':>8} {'median s':>10} {'min s':>10} {'lambda':>10} {'f':>10}")
        for r in rows:
            for dt in a.dtypes.split(","):
                c = r["cases"]["hyperclean-" + dt]
                print(f"  {r['threads']:>7} {dt:>8} {c['median']:>10.4f} {c['min']:>10.4f} "
                      f"{c['lambda']:>10.4g} {c['f']:>10.5f}")
    if a.only in (None, "coreset"):
        print(f"\ncoreset: T = 10, float64; microseconds per outer step, median of {a.coreset_reps} x "
              f"{a.coreset_steps} steps")
        print(f"  {'threads':>7} {'median us':>10} {'min us':>10}   x after the steps")
        for r in rows:
            c = r["cases"]["coreset"]
            print(f"  {r['threads']:>7} {c['median'] * 1e6:>10.1f} {c['min'] * 1e6:>10.1f}   "
                  f"({c['x'][0]:.6f}, {c['x'][1]:.6f})")


if __name__ == "__main__":
    main()

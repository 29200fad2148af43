#!/usr/bin/python3
"""One outer step of sinusoid meta-learning, bome against PyTorch.

The step: a meta-batch of B = 25 tasks (K = 10 support and 10 query points),
a 1-40-40-1 ReLU network, r = 5 inner steps of size 0.01 from phi, the exact
meta-gradient (PyTorch: autograd through the unrolled loop with
create_graph=True, MAML's way; bome: `--method exact`, the reverse sweep of
Hessian-vector products, and `--method itd`, autodiff through the unrolled
graph, one task a step) and fo-blo (PyTorch: the same loop without
create_graph), then one Adam step of 1e-3 on phi.

bome's time per step is `seconds / steps` of `bome run sinusoid` (build
included, evaluation excluded); PyTorch's is the median over the steps of a
loop after warm-up. Both sides one thread (OPENBLAS_NUM_THREADS=1,
torch.set_num_threads(1)); repetitions interleave the two, and the ratios
come from one run. Run with Debian's interpreter:

    /usr/bin/python3 bench/peer_sinusoid.py [--bome build/cli/bome] [--reps 5]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
import torch  # noqa: E402

B, K, H, R, ALPHA = 25, 10, 40, 5, 0.01


def torch_steps(steps, second_order, dtype=torch.float64):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    shapes = [(H, 1), (H,), (H, H), (H,), (1, H), (1,)]
    phi = [((torch.rand(s, generator=g, dtype=dtype) * 2 - 1) / (1 if i < 2 else H ** 0.5)).requires_grad_()
           for i, s in enumerate(shapes)]
    opt = torch.optim.Adam(phi, lr=1e-3)

    def net(w, x):
        h = torch.relu(x @ w[0].T + w[1])
        h = torch.relu(h @ w[2].T + w[3])
        return h @ w[4].T + w[5]

    times = []
    for step in range(steps):
        amp = 0.1 + 4.9 * torch.rand(B, 1, 1, generator=g, dtype=dtype)
        phase = torch.pi * torch.rand(B, 1, 1, generator=g, dtype=dtype)
        x = -5 + 10 * torch.rand(B, 2 * K, 1, generator=g, dtype=dtype)
        y = amp * torch.sin(x - phase)
        t0 = time.perf_counter()
        opt.zero_grad()
        total = 0
        for b in range(B):
            w = list(phi)
            for _ in range(R):
                loss = ((net(w, x[b, :K]) - y[b, :K]) ** 2).mean()
                grads = torch.autograd.grad(loss, w, create_graph=second_order)
                w = [wi - ALPHA * gi for wi, gi in zip(w, grads)]
            total = total + ((net(w, x[b, K:]) - y[b, K:]) ** 2).mean()
        (total / B).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[5:])


def bome_step(exe, method, steps, batch):
    out = subprocess.run([exe, "run", "sinusoid", "--method", method, "--steps", str(steps), "--T", str(R),
                          "--batch", str(batch), "--eval-tasks", "1", "--json", "--quiet"],
                         check=True, capture_output=True, text=True, env=dict(os.environ)).stdout
    d = json.loads(out)
    return d["seconds"] / d["steps"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bome", default="build/cli/bome")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40)
    a = ap.parse_args()
    rows = {k: [] for k in ("bome exact", "bome fo-blo", "torch exact", "torch fo-blo",
                            "bome itd (1 task)", "bome exact (1 task)")}
    for _ in range(a.reps):
        rows["bome exact"].append(bome_step(a.bome, "exact", a.steps, B))
        rows["torch exact"].append(torch_steps(a.steps, True))
        rows["bome fo-blo"].append(bome_step(a.bome, "fo-blo", a.steps, B))
        rows["torch fo-blo"].append(torch_steps(a.steps, False))
        rows["bome itd (1 task)"].append(bome_step(a.bome, "itd", a.steps * 5, 1))
        rows["bome exact (1 task)"].append(bome_step(a.bome, "exact", a.steps * 5, 1))
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"torch {torch.__version__}, {a.reps} repetitions of {a.steps} steps, one thread, float64")
    for k, v in med.items():
        print(f"  {k:22s} {1e3 * v:9.3f} ms/step")
    print(f"  exact:  torch / bome = {med['torch exact'] / med['bome exact']:.1f}x")
    print(f"  fo-blo: torch / bome = {med['torch fo-blo'] / med['bome fo-blo']:.1f}x")


if __name__ == "__main__":
    sys.exit(main())

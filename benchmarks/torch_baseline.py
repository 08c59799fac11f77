"""The PyTorch eager equivalent of the project's training step (benchmarks only; `pip install torch`).

Same model (deep linear ``x -> W_L ... W_1 x`` or bias-free tanh MLP, linear predictor
``V``), same JEPA loss ``1/2 mean_b ||V f(x_b) - sg(f(y_b))||^2`` (the target under
``torch.no_grad``, i.e. stop-gradient), same plain SGD, same data (fresh minibatch of the
dataset's Gaussian views every step, sampled on the CPU), float32 -- written the way a
researcher writes it: ``loss.backward(); opt.step(); opt.zero_grad()`` in a Python loop.
"""

from __future__ import annotations

import time

import numpy as np
import torch


class Net(torch.nn.Module):
    def __init__(self, dims, activation, pred_dim, scale, dtype):
        super().__init__()
        self.layers = torch.nn.ParameterList(
            torch.nn.Parameter(torch.randn(dims[a + 1], dims[a], dtype=dtype) * (scale / np.sqrt(dims[a])))
            for a in range(len(dims) - 1))
        self.v = torch.nn.Parameter(torch.randn(pred_dim, pred_dim, dtype=dtype) * (scale / np.sqrt(pred_dim)))
        self.act = torch.tanh if activation == "tanh" else (lambda h: h)

    def encode(self, x):
        for w in self.layers[:-1]:
            x = self.act(x @ w.T)
        return x @ self.layers[-1].T

    def forward(self, x):
        return self.encode(x) @ self.v.T


def make(model: str, dim: int, depth: int, width=None, dtype=torch.float32, scale=0.1, seed=0):
    torch.manual_seed(seed)
    width = width or dim
    dims = [dim] + [width] * (depth - 1) + [dim]
    return Net(dims, "tanh" if model == "mlp" else "linear", dim, scale, dtype)


def run(net, sigma2, rho, syy, lam, *, batch: int, steps: int, lr: float = 1e-2, objective: str = "jepa",
        dtype=torch.float32):
    """``steps`` SGD steps; returns seconds."""
    sx = torch.as_tensor(np.sqrt(sigma2), dtype=dtype)
    rh = torch.as_tensor(rho, dtype=dtype)
    resid = torch.as_tensor(np.sqrt(np.maximum(syy - lam * rho, 0.0)), dtype=dtype)
    d = sx.numel()
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    t0 = time.perf_counter()
    for _ in range(steps):
        x = sx * torch.randn(batch, d, dtype=dtype)
        y = rh * x + resid * torch.randn(batch, d, dtype=dtype)
        if objective == "jepa":
            with torch.no_grad():
                target = net.encode(y)
        else:
            target = y
        r = net(x) - target
        loss = 0.5 * (r * r).sum(dim=1).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0

"""A plain hand-written NumPy MLP training step: the floor corenet is measured against.

The same math as the corenet and PyTorch models of ``bench_mlp.py``, in one dtype:

* layers ``S_l = A_{l-1} W_lᵀ + b_l`` (W of shape ``(out, in)``, like corenet and
  ``torch.nn.Linear``), hidden activation ``relu`` or ``tanh``, linear output;
* loss ``"cross_entropy"``: softmax cross-entropy of the logits against integer labels,
  mean over the batch, ``∂L/∂S = (softmax(S) − onehot(y)) / N``;
  loss ``"mse"``: ``mean((ŷ − y)²)`` over all elements, ``∂L/∂ŷ = 2(ŷ − y) / (N·K)``;
* backward ``dW = dSᵀ A``, ``db = Σ_n dS``, ``dA = dS W``, then ``⊙ f′``;
* SGD with momentum (PyTorch's and corenet's default form): ``v ← μ v + g``,
  ``θ ← θ − η v``, ``v₀ = 0``.

No framework, no validation, no hooks: only the arithmetic, written the way one would
write it by hand (in-place updates, no pre-allocated scratch buffers).
"""
from __future__ import annotations

import numpy as np


class NumpyMLP:
    """``sizes`` e.g. ``(784, 300, 100, 10)``; ``hidden`` ``"relu"`` or ``"tanh"``."""

    def __init__(self, sizes, *, hidden="relu", loss="cross_entropy", dtype=np.float32,
                 lr=0.01, momentum=0.9, seed=0):
        if hidden not in ("relu", "tanh") or loss not in ("cross_entropy", "mse"):
            raise ValueError(f"NumpyMLP: unsupported hidden={hidden!r} or loss={loss!r}")
        rng = np.random.default_rng(seed)
        self.dtype = np.dtype(dtype)
        self.hidden, self.loss = hidden, loss
        self.lr, self.momentum = float(lr), float(momentum)
        self.W, self.b = [], []
        for d_in, d_out in zip(sizes[:-1], sizes[1:]):
            limit = np.sqrt(6.0 / (d_in + d_out))              # glorot_uniform, like corenet
            self.W.append(rng.uniform(-limit, limit, (d_out, d_in)).astype(self.dtype))
            self.b.append(np.zeros(d_out, dtype=self.dtype))
        self.vW = [np.zeros_like(w) for w in self.W]
        self.vb = [np.zeros_like(b) for b in self.b]

    def set_parameters(self, weights, biases) -> None:
        """Copy given ``(out, in)`` weights and biases (to compare against other twins)."""
        self.W = [np.array(w, dtype=self.dtype) for w in weights]
        self.b = [np.array(b, dtype=self.dtype) for b in biases]
        self.vW = [np.zeros_like(w) for w in self.W]
        self.vb = [np.zeros_like(b) for b in self.b]

    def step(self, x, y) -> float:
        """One training step on a batch; returns the batch loss as a Python float."""
        W, b, last = self.W, self.b, len(self.W) - 1
        acts = [x]
        a = x
        for i in range(last):
            s = a @ W[i].T
            s += b[i]
            a = np.maximum(s, 0, out=s) if self.hidden == "relu" else np.tanh(s, out=s)
            acts.append(a)
        out = a @ W[last].T
        out += b[last]
        n = x.shape[0]
        if self.loss == "cross_entropy":
            out -= out.max(axis=1, keepdims=True)
            e = np.exp(out)
            total = e.sum(axis=1, keepdims=True)
            rows = np.arange(n)
            value = float(np.log(total).sum() - out[rows, y].sum()) / n
            ds = e
            ds /= total
            ds[rows, y] -= 1
            ds /= n
        else:
            r = out - y
            value = float(np.dot(r.ravel(), r.ravel())) / r.size
            ds = r
            ds *= 2.0 / r.size
        lr, mu = self.lr, self.momentum
        for i in range(last, -1, -1):
            a = acts[i]
            gW = ds.T @ a
            gb = ds.sum(axis=0)
            if i > 0:
                ds = ds @ W[i]
                if self.hidden == "relu":
                    ds *= a > 0
                else:
                    ds *= 1 - a * a
            # the update uses this layer's gradient only, so it can happen right away
            vW, vb = self.vW[i], self.vb[i]
            vW *= mu
            vW += gW
            W[i] -= lr * vW
            vb *= mu
            vb += gb
            b[i] -= lr * vb
        return value

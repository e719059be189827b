"""Numerical core of cascade-correlation (spec growing.md §3–§4; D-28, D-62, D-73).

Everything here works on cached NumPy arrays and is vectorised over the patterns and the
candidate pool; the frozen part of the network is never recomputed:

* ``A`` (N × n_in): the candidates' and outputs' input matrix Φ = ``[1, X, h_1 … h_m]``
  (growing.md §1), one column appended per installed unit by the caller;
* ``E`` (N × K): the residual error signals of §4.1;
* ``W`` (P × n_in): the input weights of the P candidates of the pool, one row each.

Functions and classes:

* :func:`unit_functions` — ``f(x)`` and ``f′(x)`` (from x and the cached y) of a unit type;
* :func:`candidate_objective` — S, ∂S/∂v and C of §4.3 for a whole pool (the reference
  form tested against TV-CC-01 and central differences);
* :func:`quickprop_step` — ``optimizer:quickprop`` in ``"fahlman"`` mode (optimizers.md
  §10.1), vectorised in place on a weight matrix;
* :class:`Patience` — the stagnation rule shared by both phases (§3);
* :func:`train_candidates` — one candidate phase (§4.2–§4.5 up to the choice of the unit);
* :class:`Sine`, :class:`Cosine` — periodic unit types (``activation:sin``/``cos``,
  PyTorch's ``torch.sin``/``torch.cos``; not in networks.md §2.2) for candidate pools.
"""
from __future__ import annotations

import numpy as np

from .activation import Activation
from .errors import HyperparameterError, ShapeError


# ----------------------------------------------------------------------------- unit types
class Sine(Activation):
    """f = sin x; f′ = cos x; f″ = −sin x (PyTorch ``torch.sin``; a periodic candidate
    type for cascade-correlation pools, as in FANN's cascade training)."""

    name = "sin"

    def f(self, x):
        return np.sin(x)

    def df(self, x):
        return np.cos(x)

    def d2f(self, x):
        return -np.sin(x)


class Cosine(Activation):
    """f = cos x; f′ = −sin x; f″ = −cos x (PyTorch ``torch.cos``)."""

    name = "cos"

    def f(self, x):
        return np.cos(x)

    def df(self, x):
        return -np.sin(x)

    def d2f(self, x):
        return -np.cos(x)


def _sigmoid(x):
    return 0.5 + 0.5 * np.tanh(0.5 * x)


def _logistic_prime(x):
    """σ′(x) = σ(1 − σ) = e/(1 + e)² with e = exp(−|x|): accurate also where σ rounds
    to 0 or 1 (the form 0.25 − y² would give exactly 0 there). tanh′(x) = 4σ′(2x)."""
    e = np.exp(-np.abs(x))
    return e / ((1.0 + e) * (1.0 + e))


# name -> (f(x), f′(x, y)) in closed form; y = f(x) is reused where that is cheaper.
# They equal the registered activations of networks.md §2.2 (tested).
_FAST = {
    "identity": (lambda x: x.copy(), lambda x, y: np.ones_like(x)),
    "sigmoid": (_sigmoid, lambda x, y: _logistic_prime(x)),
    "sigmoid_symmetric": (lambda x: 0.5 * np.tanh(0.5 * x), lambda x, y: _logistic_prime(x)),
    "tanh": (np.tanh, lambda x, y: 4.0 * _logistic_prime(2.0 * x)),
    "gaussian": (lambda x: np.exp(-0.5 * x * x), lambda x, y: -x * y),
    "arctan": (np.arctan, lambda x, y: 1.0 / (1.0 + x * x)),
    "softsign": (lambda x: x / (1.0 + np.abs(x)), lambda x, y: (1.0 - np.abs(y)) ** 2),
    "sin": (np.sin, lambda x, y: np.cos(x)),
    "cos": (np.cos, lambda x, y: -np.sin(x)),
}

#: output / unit types for which ``sigmoid_prime_offset`` applies (growing.md §3)
SIGMOID_TYPES = ("sigmoid", "sigmoid_symmetric", "tanh")


def unit_functions(name: str):
    """``(f, df)`` for the unit type ``name``: ``f(x)`` and ``df(x, y)`` with y = f(x).

    Closed forms for the usual types; any other registered, differentiable element-wise
    activation goes through its ``f``/``df``. Unknown names raise the registry's error.
    """
    if name in _FAST:
        return _FAST[name]
    from . import registry

    act = registry.create("activation", name)
    if not getattr(act, "differentiable", True) or getattr(act, "parameter_specs", ()):
        raise HyperparameterError(f"cascade-correlation: unit type {name!r} must be a "
                                  f"differentiable activation without parameters")
    return (lambda x: np.asarray(act.f(x), dtype=x.dtype),
            lambda x, y: np.asarray(act.df(x), dtype=x.dtype))


def pool_kinds(n_candidates: int, activations, steepnesses) -> list[tuple[str, float]]:
    """Types of the pool (growing.md §4.2): round-robin over ``activations ×
    steepnesses`` (activation-major), candidate i gets combination ``i mod n_types``."""
    combos = [(str(a), float(b)) for a in activations for b in steepnesses]
    return [combos[i % len(combos)] for i in range(n_candidates)]


class _PoolPlan:
    """How to evaluate a pool's units: the compiled kernel
    (:func:`corenet.kernels.cascade_pool_values`) when every type has a kernel code,
    else one NumPy pass per type (strided column slices for round-robin pools)."""

    def __init__(self, kinds):
        from .kernels import CASCADE_UNIT_CODES

        self.codes = self.beta = self.groups = None
        if all(name in CASCADE_UNIT_CODES for name, _ in kinds):
            self.codes = np.array([CASCADE_UNIT_CODES[n] for n, _ in kinds], dtype=np.intc)
            self.beta = np.array([b for _, b in kinds], dtype=np.float64)
            return
        order = []
        for k in kinds:
            if k not in order:
                order.append(k)
        self.groups = []
        nk = len(order)
        for j, (name, beta) in enumerate(order):
            idx = [i for i, k in enumerate(kinds) if k == (name, beta)]
            cols = slice(j, None, nk) if idx == list(range(j, len(kinds), nk)) \
                else np.array(idx)
            f, df = unit_functions(name)
            self.groups.append((f, df, beta, cols))

    def values(self, S_in):
        """V = f(βs) and dV = β f′(βs) for every column of the pool's net inputs."""
        if self.codes is not None:
            from .kernels import cascade_pool_values

            return cascade_pool_values(np.ascontiguousarray(S_in), self.codes, self.beta)
        V = np.empty_like(S_in)
        dV = np.empty_like(S_in)
        for f, df, beta, cols in self.groups:
            x = S_in[:, cols] if beta == 1.0 else beta * S_in[:, cols]
            y = f(x)
            V[:, cols] = y
            dV[:, cols] = df(x, y) if beta == 1.0 else beta * df(x, y)
        return V, dV


def sign_plus(C):
    """sign with +1 at 0 (σ_o of growing.md §4.3)."""
    return np.where(C >= 0, 1.0, -1.0).astype(C.dtype, copy=False)


# ----------------------------------------------------------------------------- objective
def candidate_objective(I, E, W, kinds, normalize: bool = True):
    """S, ∂S/∂v, C and V of every candidate of a pool (growing.md §4.3, D-28).

    ``I`` (N × n_in) candidate inputs (bias column first), ``E`` (N × K) residuals,
    ``W`` (P × n_in) candidate weights (or one vector (n_in,)), ``kinds`` a list of P
    ``(activation, steepness)`` pairs (or one activation name for all)::

        s_p = v·I_p,  V_p = f(β s_p),  C_o = Σ_p (V_p − V̄)(E_po − Ē_o),  S = Σ_o |C_o|
        ∂S/∂v_i = Σ_o σ_o Σ_p (E_po − Ē_o) β f′(β s_p) I_pi,   σ_o = sign⁺(C_o)

    With ``normalize`` S and the gradient are divided by Z = Σ E². Returns ``(S (P,),
    grad (P, n_in), C (P, K) un-normalised, V (N, P))`` (a single candidate: shapes
    without the P axis).
    """
    single = np.ndim(W) == 1
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    I = np.asarray(I, dtype=np.float64)
    E = np.asarray(E, dtype=np.float64)
    if E.ndim == 1:
        E = E[:, None]
    if I.ndim != 2 or E.shape[0] != I.shape[0] or W.shape[1] != I.shape[1]:
        raise ShapeError(f"candidate_objective: expected I (N, n_in), E (N, K), W (P, n_in); "
                         f"got I {I.shape}, E {E.shape}, W {W.shape}")
    if isinstance(kinds, str):
        kinds = [(kinds, 1.0)] * W.shape[0]
    kinds = [(k, 1.0) if isinstance(k, str) else (k[0], float(k[1])) for k in kinds]
    plan = _PoolPlan(kinds)
    Ec = E - E.mean(axis=0)
    V, dV = plan.values(I @ W.T)
    C = (V - V.mean(axis=0)).T @ Ec
    S = np.abs(C).sum(axis=1)
    grad = ((Ec @ sign_plus(C).T) * dV).T @ I
    if normalize:
        Z = float((E * E).sum())
        S, grad = S / Z, grad / Z
    if single:
        return S[0], grad[0], C[0], V[:, 0]
    return S, grad, C, V


# ----------------------------------------------------------------------------- quickprop
def quickprop_step(w, slope, state, lr: float, mu: float, decay: float = 0.0):
    """One ``optimizer:quickprop`` step in ``"fahlman"`` mode (optimizers.md §10.1), in
    place on the weight matrix ``w``; ``slope`` is the gradient of the minimised function,
    ``state`` the pair ``[d, p]`` (previous step and previous slope, zeros at first;
    updated in place).

    ``s = slope + decay·w``; per element: gradient term ``−ε s`` unless the previous step
    d went the other way; ``μ d`` when ``s`` has not shrunk below ``μ/(1+μ)·p``; the
    parabola step ``d s/(p − s)`` otherwise (``−ε s`` for a degenerate secant); the
    plain gradient step when d = 0. The same rule as ``optimizer:quickprop``, run by the
    compiled kernel :func:`corenet.kernels.cascade_quickprop` on a whole pool at once
    (NumPy twin: ``corenet._reference.cascade_quickprop``).
    """
    from .kernels import cascade_quickprop

    cascade_quickprop(w, np.ascontiguousarray(slope, dtype=w.dtype), state[0], state[1],
                      lr, mu, decay)


# ----------------------------------------------------------------------------- patience
class Patience:
    """The stagnation rule of growing.md §3, fed once per epoch.

    ``update(x, e)`` returns True when the phase should stop as STAGNANT: the first
    value is remembered; a relative change ``|x − last| > last·threshold`` resets the
    count (``quit = e + patience``); otherwise the phase stops once ``e ≥ quit``.
    ``quit`` starts at ``initial`` (``patience`` in the output phase, the epoch limit in
    the candidate phase). ``patience = 0`` disables the test.
    """

    def __init__(self, patience: int, threshold: float, initial: int):
        self.patience = int(patience)
        self.threshold = float(threshold)
        self.quit = int(initial)
        self.first = True
        self.last = None

    def update(self, x: float, e: int) -> bool:
        if self.patience == 0:
            return False
        if self.first:
            self.last, self.first = x, False
        elif abs(x - self.last) > self.last * self.threshold:
            self.last, self.quit = x, e + self.patience
        elif e >= self.quit:
            return True
        return False


# ----------------------------------------------------------------------------- candidates
def train_candidates(A, E, rng, *, n_candidates=8, kinds=None, weight_range=1.0,
                     lr=1.0, mu=2.0, decay=0.0, patience=8, change_threshold=0.03,
                     max_epochs=500, normalize=True, lagged_sign=False, optimizer=None):
    """Train a pool of candidates on inputs ``A`` (N × n_in) against residuals ``E``
    (N × K) and choose the unit to install (growing.md §4.2–§4.5).

    Weights ``𝒰(−weight_range, weight_range)``; gradient ascent on S (Quickprop
    minimisation of −S, ``lr = lr/(N·n_in)``), all candidates at once; stop by the
    patience rule on the best score of each pass (before the step) or after
    ``max_epochs``. ``optimizer`` (optional) is a registered optimizer instance (its own
    hyperparameters, e.g. ``rprop`` with its defaults) used instead of the built-in
    Quickprop; it is bound to a parameter holding W and gets the slope −∂S/∂W.

    Returns a dict: ``index`` (best candidate, ties → lowest index), ``weights`` (n_in,),
    ``kind`` ``(activation, steepness)``, ``values`` (N,) the unit's activations,
    ``C`` (K,) its un-normalised covariances, ``Z`` = Σ E², ``score`` its S (normalised
    when ``normalize``), ``scores`` (P,) and ``epochs``.
    """
    N, n_in = A.shape
    kinds = kinds if kinds is not None else [("sigmoid_symmetric", 1.0)] * n_candidates
    P = len(kinds)
    plan = _PoolPlan(kinds)
    W = rng.uniform(-weight_range, weight_range, size=(P, n_in)).astype(A.dtype)
    Ec = E - E.mean(axis=0)
    Z = float((E * E).sum())
    scale = 1.0 / Z if (normalize and Z > 0) else 1.0
    step_lr = lr / (N * n_in)
    single = Ec.shape[1] == 1
    state = [np.zeros_like(W), np.zeros_like(W)]
    param = None
    if optimizer is not None:
        from .parameter import Parameter

        param = Parameter(W, "candidates", decay=False)
        W = param.data
        optimizer.bind([param])
    stop = Patience(patience, change_threshold, max_epochs)
    signs = None
    epochs = 0
    for e in range(max_epochs):
        V, dV = plan.values(A @ W.T)
        C = V.T @ Ec                     # = (V − V̄)ᵀ(E − Ē) because Σ_p (E − Ē) = 0
        scores = np.abs(C).sum(axis=1)
        epochs += 1
        if stop.update(float(scores.max()) * scale, e):
            break
        if lagged_sign and signs is None:
            signs = sign_plus(C)
            continue
        use = signs if lagged_sign else sign_plus(C)
        if lagged_sign:
            signs = sign_plus(C)
        weights_o = (Ec * use.T) if single else Ec @ use.T   # (N, P): Σ_o σ_o (E − Ē)
        weights_o *= dV
        slope = weights_o.T @ A
        slope *= -scale
        if param is None:
            quickprop_step(W, slope, state, step_lr, mu, decay)
        else:
            param.grad[...] = slope
            optimizer.step()
    V, _ = plan.values(A @ W.T)
    C = (V - V.mean(axis=0)).T @ Ec
    scores = np.abs(C).sum(axis=1) * scale
    best = int(np.argmax(scores))
    return {"index": best, "weights": W[best].copy(), "kind": kinds[best],
            "values": np.ascontiguousarray(V[:, best]), "C": C[best].copy(), "Z": Z,
            "score": float(scores[best]), "scores": scores, "epochs": epochs}


# ----------------------------------------------------------------------------- outputs
class OutputPhase:
    """Output training of growing.md §3 on the cached input matrix A = Φ (full batch).

    Holds the output weights ``U`` (K × n_in) and the optimizer state. One epoch: z =
    A Uᵀ, ŷ = g(z), ``E_tot = Σ (ŷ − t)²`` measured (stopping tests come first), then
    one step with the gradient of the mean loss ``(1/N) δᵀA``, δ = ∂ℓ_p/∂z:

    * loss ``None``: ``sse(half=True)``, δ = (ŷ − t)(g′(z) + offset) (offset only for
      sigmoid-type g); any registered :class:`~corenet.Loss` otherwise (its fused
      gradient when it pairs with g, e.g. ``cross_entropy`` with ``softmax``);
    * ``optimizer="quickprop"``: :func:`quickprop_step` (lr, mu, decay);
      ``"least_squares"`` (identity g only): ``lstsq(A, T)`` or ridge
      ``solve(AᵀA + l2·I, AᵀT)`` in one epoch; any other registered optimizer (a name,
      a dict or an instance) bound to a parameter holding U.

    Stops with ``"victory"`` (every |ŷ − t| ≤ score_threshold, or mean loss ≤
    target_loss), ``"stagnant"`` (:class:`Patience`) or ``"timeout"``.
    """

    def __init__(self, activation="sigmoid_symmetric", loss=None, optimizer="quickprop",
                 lr=0.35, mu=2.0, decay=1e-4, l2=0.0, offset=0.0, score_threshold=0.35,
                 target_loss=None, patience=8, change_threshold=0.01, max_epochs=500):
        from . import registry

        self.activation = activation
        self.softmax = activation == "softmax"
        if not self.softmax:
            self.g, self.gprime = unit_functions(activation)
        self.offset = float(offset) if activation in SIGMOID_TYPES else 0.0
        self.loss = None if loss is None else registry.create("loss", loss)
        self.fused = self.loss is not None and self.loss.fused_activation == activation
        if optimizer == "least_squares" and (activation != "identity" or self.loss is not None
                                             and self.loss.name not in ("mse", "sse")):
            raise HyperparameterError(f"cascade-correlation: output_optimizer "
                                      f"'least_squares' needs output_activation 'identity' "
                                      f"and an sse/mse loss, got {activation!r}")
        self.kind = optimizer if optimizer in ("quickprop", "least_squares") else "registry"
        self.optimizer = registry.create("optimizer", optimizer) if self.kind == "registry" \
            else None
        self.lr, self.mu, self.decay, self.l2 = float(lr), float(mu), float(decay), float(l2)
        self.score_threshold = score_threshold
        self.target_loss = target_loss
        self.patience, self.change_threshold = int(patience), float(change_threshold)
        self.max_epochs = int(max_epochs)
        self.U = None

    # -------------------------------------------------------------- weights
    def init(self, U) -> None:
        self.U = np.ascontiguousarray(U)
        self.state = [np.zeros_like(self.U), np.zeros_like(self.U)]
        if self.kind == "registry":
            from .parameter import Parameter

            self.param = Parameter(self.U, "weight", decay=True)
            self.U = self.param.data
            self.optimizer.bind([self.param])

    def grow(self, column) -> None:
        """Append one input (a new hidden unit) with initial weights ``column`` (K,);
        its optimizer state is fresh, the existing state is kept (growing.md §4.5)."""
        K, n = self.U.shape
        U = np.empty((K, n + 1), dtype=self.U.dtype)
        U[:, :n], U[:, n] = self.U, column
        self.state = [np.concatenate([s, np.zeros((K, 1), s.dtype)], axis=1)
                      for s in self.state]
        if self.kind == "registry":
            self.param.data, self.param.grad = U, np.zeros_like(U)
            self.optimizer.state_resize(self.param, U.shape, (slice(None), slice(0, n)))
        self.U = U

    # -------------------------------------------------------------- passes
    def forward(self, A):
        Z = A @ self.U.T
        return Z, (_softmax_rows(Z) if self.softmax else self.g(Z))

    def _losses(self, Z, Y, T, need_grad=True):
        """(per-sample losses or None, δ = ∂ℓ_p/∂z)."""
        err = Y - T
        if self.loss is None:
            dY = err
            values = None
        elif self.fused:
            values, dz = self.loss.fused_per_sample_and_grad(Z, T)
            return values, dz
        else:
            values, dY = self.loss.per_sample_and_grad(Y, T)
        if not need_grad:
            return values, None
        if self.softmax:
            return values, Y * (dY - (Y * dY).sum(axis=1, keepdims=True))
        gp = self.gprime(Z, Y)
        return values, dY * (gp + self.offset) if self.offset else dY * gp

    def mean_loss(self, Z, Y, T) -> float:
        if self.loss is None:
            err = Y - T
            return 0.5 * float((err * err).sum()) / T.shape[0]
        values = self._losses(Z, Y, T, need_grad=False)[0]
        return float(np.mean(values))

    def evaluate(self, A, T) -> dict:
        """``error`` E_tot, mean ``loss``, ``bit_fail`` (outputs off by more than
        score_threshold) at the current weights."""
        Z, Y = self.forward(A)
        err = Y - T
        thr = 0.35 if self.score_threshold is None else self.score_threshold
        return {"error": float((err * err).sum()), "loss": self.mean_loss(Z, Y, T),
                "bit_fail": int(np.count_nonzero(np.abs(err) > thr))}

    def _victory(self, Z, Y, err, T) -> bool:
        if self.score_threshold is not None and float(np.abs(err).max()) <= \
                self.score_threshold:
            return True
        return self.target_loss is not None and self.mean_loss(Z, Y, T) <= self.target_loss

    def train(self, A, T) -> dict:
        """Run one output phase; returns ``{"status", "epochs"}``."""
        N = A.shape[0]
        if self.kind == "least_squares":
            if self.l2 > 0:
                G = A.T @ A
                G[np.diag_indices_from(G)] += self.l2
                self.U[...] = np.linalg.solve(G, A.T @ T).T
            else:
                self.U[...] = np.linalg.lstsq(A, T, rcond=None)[0].T
            Z, Y = self.forward(A)
            return {"status": "victory" if self._victory(Z, Y, Y - T, T) else "stagnant",
                    "epochs": 1}
        stop = Patience(self.patience, self.change_threshold, self.patience)
        status, epochs = "timeout", 0
        for e in range(self.max_epochs):
            Z, Y = self.forward(A)
            err = Y - T
            epochs += 1
            if self._victory(Z, Y, err, T):
                status = "victory"
                break
            if stop.update(float((err * err).sum()), e):
                status = "stagnant"
                break
            grad = self._losses(Z, Y, T)[1].T @ A
            grad *= 1.0 / N
            if self.kind == "quickprop":
                quickprop_step(self.U, grad, self.state, self.lr, self.mu, self.decay)
            else:
                self.param.grad[...] = grad
                self.optimizer.step()
        return {"status": status, "epochs": epochs}

    def residuals(self, A, T, mode="delta") -> np.ndarray:
        """E of growing.md §4.1 at the current output weights."""
        Z, Y = self.forward(A)
        err = Y - T
        if mode == "error":
            return err
        E = self._losses(Z, Y, T)[1]
        if float((E * E).sum()) < 1e-300:
            return err
        return E


def _softmax_rows(Z):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e

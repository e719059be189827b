"""The compiled training step for dense stacks: one ``nogil`` call per mini-batch.

A training step through the layers costs a few dozen small NumPy calls; for small
networks and small batches that Python overhead dominates. When a model is a
``Sequential`` of ``dense`` layers (each with an optional kernel activation, optionally
followed by ``activation`` layers and a final ``softmax``; a leading ``flatten`` is allowed), the loss is ``mse``, ``sse``
or ``cross_entropy`` with the mean reduction, the optimizer is ``sgd``/``gd`` (any
momentum, dampening, Nesterov, coupled weight decay) or ``adam``/``adamw`` (without
AMSGrad or ε inside the root), with one set of hyperparameters for all groups, and no
regularizer or ``after_backward``/``before_step`` hook needs to see the gradients before
the update, the trainer runs :class:`DenseStep` instead: the same mathematics
(networks.md §1-4, optimizers.md §1-3, masks of pruning.md §1), in
``corenet/_kernels/dense.pyx``, on the parameters' own ``data``/``grad``/``mask`` arrays
and the optimizer's own momentum buffers, so both paths share one state and can
alternate freely. Anything else runs through the layers, unchanged.
"""
from __future__ import annotations

import numpy as np

from .errors import ShapeError

_LOSS_CODES = {"mse": 0, "sse_half": 1, "sse": 2, "ce_labels": 3, "ce_dense": 4}


def _dense_chain(model):
    """``[(dense layer, activation layer or None, activation name, params)]`` and whether
    a softmax ends the stack; None when the model does not qualify."""
    from .layers.core import ActivationLayer, Dense, Flatten, Softmax
    from .model import Sequential

    if type(model) is not Sequential or not model.layers:
        return None
    chain, softmax_end = [], False
    for i, layer in enumerate(model.layers):
        if type(layer) is Flatten and not chain:
            continue  # a leading flatten is a view of the (C-contiguous) input
        if type(layer) is Dense:
            chain.append([layer, layer.act])
        elif type(layer) is ActivationLayer and chain and chain[-1][1] is None:
            chain[-1][1] = layer
        elif type(layer) is Softmax and i == len(model.layers) - 1 and layer.groups is None:
            softmax_end = True
        else:
            return None
    out = []
    for dense, act in chain:
        if act is None:
            out.append((dense, None, "identity", {}))
            continue
        fn = act.fn
        if fn.name == "prelu" or not fn.differentiable:
            return None
        out.append((dense, act, fn.name, fn.get_config()))
    return out, softmax_end


def _loss_code(loss, softmax_end):
    if loss.reduction != "mean":
        return None
    cfg = loss.get_config()
    if loss.name == "cross_entropy":
        if cfg.get("label_smoothing", 0.0) or cfg.get("axis", -1) not in (-1, 1):
            return None
        if cfg.get("from_probs") and not softmax_end:
            return None
        return "ce"
    if softmax_end:
        return None
    if loss.name == "mse":
        return "mse"
    if loss.name == "sse":
        return "sse_half" if cfg.get("half", True) else "sse"
    return None


_SGD_KEYS = ("lr", "momentum", "dampening", "nesterov", "momentum_form", "weight_decay",
             "decoupled_weight_decay")
_ADAM_KEYS = ("lr", "betas", "eps", "bias_correction", "amsgrad", "eps_inside_sqrt",
              "weight_decay", "decoupled_weight_decay")


def _optimizer_settings(optimizer):
    """The hyperparameters the compiled rule needs (one set for all groups), or None."""
    if optimizer.name in ("sgd", "gd"):
        rule, keys = "sgd", _SGD_KEYS
    elif optimizer.name in ("adam", "adamw"):
        rule, keys = "adam", _ADAM_KEYS
    else:
        return None
    if not optimizer.param_groups:
        return None
    first = {k: optimizer.param_groups[0].get(k) for k in keys}
    for group in optimizer.param_groups[1:]:
        if any(group.get(k) != first[k] for k in keys):
            return None
    if rule == "sgd" and (first["momentum_form"] != "standard"
                          or first["decoupled_weight_decay"]):
        return None
    if rule == "adam" and (first["amsgrad"] or first["eps_inside_sqrt"]):
        return None
    return {"rule": rule, **first}


class DenseStep:
    """A compiled step bound to one model, loss, optimizer and batch size."""

    def __init__(self, model, loss, optimizer, chain, loss_kind, settings, batch_size):
        from ._kernels import dense as _dense
        from .kernels import ACTIVATION_CODES, activation_params

        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.batch_size, self.loss_kind = batch_size, loss_kind
        dtype = model.dtype
        spec, self.params = [], []
        previous_delta = None
        for index, (dense, act, name, cfg) in enumerate(chain):
            din, dout = dense.in_features, dense.out_features
            S = np.zeros((batch_size, dout), dtype=dtype)
            A = S if name == "identity" else np.zeros_like(S)
            D = np.zeros_like(S)
            p1, p2, from_y = activation_params(name, cfg)
            W, b = dense.W, dense.b
            spec.append({
                "W": W.data, "b": None if b is None else b.data,
                "gW": W.grad, "gb": None if b is None else b.grad,
                "mW": W._mask if W.masked else None,
                "mb": b._mask if (b is not None and b.masked) else None,
                "vW": None, "vb": None, "sW": None, "sb": None, "S": S, "A": A, "D": D,
                "dX": previous_delta, "din": din, "dout": dout,
                "act": ACTIVATION_CODES[name], "p1": p1, "p2": p2, "from_y": from_y,
                "decay_W": W.decay, "decay_b": b is not None and b.decay,
                "train_W": W.trainable, "train_b": b is not None and b.trainable})
            previous_delta = D
            self.params.append([W] + ([b] if b is not None else []))
        self._spec = spec
        self.out = spec[-1]["A"]
        self.is_double = dtype == np.float64
        self._plan = _dense.DenseTrainStep(spec, batch_size, 0, self.is_double)
        self._kernel = _dense
        self.settings = settings
        self._apply_settings()

    def _apply_settings(self):
        s = self.settings
        if s["rule"] == "sgd":
            mu = float(s["momentum"])
            self._plan.set_sgd(float(s["lr"]), mu, float(s["dampening"]), bool(s["nesterov"]),
                               float(s["weight_decay"]))
            self._state_keys = ("momentum_buffer",) if mu != 0.0 else ()
        else:
            b1, b2 = (float(b) for b in s["betas"])
            self._plan.set_adam(float(s["lr"]), b1, b2, float(s["eps"]),
                                float(s["weight_decay"]), float(s["decoupled_weight_decay"]))
            self._betas = (b1, b2)
            self._state_keys = ("exp_avg", "exp_avg_sq")
        for i, params in enumerate(self.params):
            arrays = [[self._buffer(p, key) for p in params] for key in self._state_keys]
            first = arrays[0] if arrays else [None, None]
            second = arrays[1] if len(arrays) > 1 else [None, None]
            first, second = first + [None] * (2 - len(first)), second + [None] * (2 - len(second))
            self._plan.set_moments(i, first[0], first[1], second[0], second[1])
            self._spec[i].update(vW=first[0], vb=first[1], sW=second[0], sb=second[1])

    def _buffer(self, p, key):
        """The optimizer's own state array ``key`` of ``p`` (created as it would be)."""
        state = self.optimizer.state.setdefault(p, {})
        if key not in state:
            state[key] = np.zeros(p.shape, dtype=p.dtype)
            state.setdefault("step", 0)
        if p.masked:  # state at pruned positions is zero (optimizers.md §0)
            state[key] *= p._mask
        return state[key]

    def sync(self) -> bool:
        """Follow learning-rate changes (schedules); return False when anything else the
        plan baked in changed (masks, arrays, buffers, other hyperparameters)."""
        opt = self.optimizer
        group = opt.param_groups[0]
        if group["lr"] != self.settings["lr"]:
            settings = _optimizer_settings(opt)
            if settings is None:
                return False
            changed = {k for k in settings if settings[k] != self.settings[k]}
            if changed != {"lr"}:
                return False
            self.settings = settings
            self._apply_settings()
        for s, params in zip(self._spec, self.params):
            for p, key in zip(params, ("W", "b")):
                if p.data is not s[key] or (p._mask if p.masked else None) is not s["m" + key]:
                    return False
                state = opt.state.get(p, {})
                for prefix, name in zip(("v", "s"), self._state_keys):
                    if state.get(name) is not s[prefix + key]:
                        return False
        return True

    def __call__(self, xb, yb) -> float:
        """One update; ``xb`` must be (batch_size, D_in) of the model dtype (C-contiguous)."""
        if xb.shape[0] != self.batch_size:
            raise ShapeError(f"DenseStep: built for batches of {self.batch_size}, got "
                             f"{xb.shape[0]}")
        if xb.ndim != 2:
            xb = xb.reshape(xb.shape[0], -1)
        if self.loss_kind == "ce":
            y = np.asarray(yb)
            if y.ndim == 1:
                labels = np.ascontiguousarray(y, dtype=np.int64)
                k = self.out.shape[1]
                if labels.size and (labels.min() < 0 or labels.max() >= k):
                    raise ValueError(f"loss 'cross_entropy': labels must be in [0, {k - 1}], "
                                     f"got values in [{labels.min()}, {labels.max()}]")
                return self._step_labels(xb, labels)
            targets = self.loss.prepare_targets(self.out, y)
            return self._step_dense(xb, np.ascontiguousarray(targets), _LOSS_CODES["ce_dense"])
        if not (isinstance(yb, np.ndarray) and yb.dtype == self.out.dtype
                and yb.shape == self.out.shape and yb.flags.c_contiguous):
            yb = np.ascontiguousarray(self.loss.prepare_targets(self.out, yb))
        return self._step_dense(xb, yb, _LOSS_CODES[self.loss_kind])

    def _step_labels(self, xb, labels):
        self._plan.set_loss(_LOSS_CODES["ce_labels"])
        self._before()
        return self._plan.step(xb, None, labels)

    def _step_dense(self, xb, targets, code):
        self._plan.set_loss(code)
        self._before()
        return self._plan.step(xb, targets, None)

    def _before(self):
        """Count the step as the optimizer does (t = 1 at the first update, D-57) and set
        Adam's bias corrections for it."""
        opt = self.optimizer
        opt.iterations += 1
        t = None
        for params in self.params:
            for p in params:
                if not p.trainable:
                    continue
                state = opt.state.setdefault(p, {})
                state["step"] = state.get("step", 0) + 1
                t = state["step"] if t is None else t
        if self.settings["rule"] == "adam" and t is not None:
            b1, b2 = self._betas
            if self.settings["bias_correction"]:
                self._plan.set_bias_correction(1.0 - b1 ** t, 1.0 - b2 ** t)
            else:
                self._plan.set_bias_correction(1.0, 1.0)


def build_dense_step(model, loss, optimizer, batch_size: int, *, regularizers=(),
                     sample_weight=None):
    """A :class:`DenseStep` when the configuration qualifies (see the module docstring),
    else None."""
    if regularizers or sample_weight is not None or batch_size < 1:
        return None
    found = _dense_chain(model)
    if found is None:
        return None
    chain, softmax_end = found
    kind = _loss_code(loss, softmax_end)
    settings = _optimizer_settings(optimizer)
    if kind is None or settings is None:
        return None
    if any(p.dtype != model.dtype for dense, *_ in chain for p in dense.parameters()):
        return None
    return DenseStep(model, loss, optimizer, chain, kind, settings, batch_size)

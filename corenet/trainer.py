"""The training loop of spec README §8, with its event hooks."""
from __future__ import annotations

import time
import warnings

import numpy as np

from . import registry
from .errors import NotFiniteError, ShapeError
from .plugins import get_plugin_manager

_EVENT_HOOKS = ("corenet_on_train_begin", "corenet_on_train_end", "corenet_on_epoch_begin",
                "corenet_on_epoch_end", "corenet_on_batch_begin", "corenet_on_batch_end",
                "corenet_on_after_backward", "corenet_on_before_step", "corenet_on_after_step",
                "corenet_should_stop", "corenet_grow_network")


class History:
    """Learning curves: the loss of every mini-batch and one dict of logs per epoch."""

    def __init__(self):
        self.batch_losses: list[float] = []
        self.epochs: list[dict] = []

    def __getitem__(self, key: str) -> list:
        return [e.get(key) for e in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)

    def to_dict(self) -> dict:
        return {"batch_losses": list(self.batch_losses), "epochs": [dict(e) for e in self.epochs]}

    def __repr__(self) -> str:
        last = self.epochs[-1] if self.epochs else {}
        return f"History(epochs={len(self.epochs)}, last={last})"


def _check_targets(y, n: int, component: str, allow_nan: bool = False):
    if y is None:
        raise ValueError(f"{component}: targets y are required")
    y = np.asarray(y)
    if y.dtype == object or y.dtype.kind not in "fiub":
        raise TypeError(f"{component}: targets must be numeric, got dtype {y.dtype}")
    if y.ndim == 0 or y.shape[0] != n:
        raise ShapeError(f"{component}: X has {n} samples but y has "
                         f"{'no axis' if y.ndim == 0 else y.shape[0]} (shape {y.shape})")
    if y.dtype.kind == "f":
        bad = np.isinf(y).any() if allow_nan else not np.isfinite(y).all()
        if bad:
            raise NotFiniteError(f"{component}: targets contain "
                                 f"{'inf' if allow_nan else 'NaN or inf'}")
    return np.ascontiguousarray(y)


def sample_losses(model, loss, xb, yb):
    """Per-sample loss values of a batch (fused pre-activation path when it applies)."""
    fuse = loss.fused_activation is not None and loss.fused_activation == model.output_activation
    out = model.forward(xb, logits=fuse)
    targets = loss.prepare_targets(out, yb)
    if fuse:
        values = loss.fused_per_sample_and_grad(out, targets)[0]
    else:
        values = loss.per_sample(out, targets)
    return values, (model.forward(xb) if fuse else out)


def evaluate_model(model, X, y, *, loss, metrics=(), batch_size: int = 1024,
                   sample_weight=None) -> dict:
    """Mean loss and metric values of ``model`` on ``(X, y)`` in eval mode."""
    X = model.check_input(X, "evaluate input")
    loss = registry.create("loss", loss) if loss is not None else None
    y = _check_targets(y, X.shape[0], f"{type(model).__name__}.evaluate",
                       allow_nan=getattr(loss, "missing_targets", False))
    if not model.built:
        model.build(X.shape[1:])
    metrics = [registry.create("metric", m) for m in metrics]
    was_training = model.training
    model.eval()
    values, outputs = [], []
    try:
        for i in range(0, X.shape[0], batch_size):
            xb, yb = X[i:i + batch_size], y[i:i + batch_size]
            if loss is not None:
                v, out = sample_losses(model, loss, xb, yb)
                values.append(v)
            else:
                out = model.forward(xb)
            outputs.append(out)
    finally:
        model.train(was_training)
    logs = {}
    if loss is not None and values:
        v = np.concatenate(values)
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64)
            logs["loss"] = float(np.dot(v, w) / w.sum())
        else:
            logs["loss"] = float(v.mean())
    if outputs:
        out = np.concatenate(outputs)
        for m in metrics:
            logs[m.name] = float(m(out, y))
    return logs


class Trainer:
    """Runs the loop of spec README §8 for one model.

    Per batch: batch_begin → forward → loss → backward (all gradients from the pre-update
    parameters, D-29) → coupled regularizer gradients → ``after_backward`` → gradients
    masked → ``before_step`` → optimizer step → masks re-applied → ``after_step`` →
    per-batch schedule → ``batch_end``. Per epoch: validation, per-epoch schedule,
    ``epoch_end``, then the decision hooks ``should_stop`` and ``grow_network``.

    Callbacks (objects with ``@hookimpl`` methods) are registered with the plugin manager
    for the run and unregistered afterwards. Event hooks without implementations are not
    called at all.
    """

    def __init__(self, model, *, loss="mse", optimizer="sgd", metrics=(), regularizers=(),
                 scheduler=None, callbacks=()):
        self.model = model
        self.loss = registry.create("loss", loss)
        self.optimizer = registry.create("optimizer", optimizer)
        self.metrics = [registry.create("metric", m) for m in metrics]
        self.regularizers = [registry.create("regularizer", r) for r in regularizers]
        self.scheduler = registry.create("scheduler", scheduler) if scheduler else None
        self.callbacks = [registry.create("callback", c) for c in callbacks]
        self.history = History()
        self.stop_training = False
        self.epoch = 0
        self._pm = get_plugin_manager()
        self._active = {h: False for h in _EVENT_HOOKS}
        self._params = None
        self.rng = None
        #: use the compiled dense step when the configuration allows (corenet.fastpath)
        self.fast_path = True
        self._fast = None
        self._fast_refused: set = set()

    # ------------------------------------------------------------------ helpers
    def _hook(self, name: str, **kwargs):
        if self._active[name]:
            return getattr(self._pm.hook, name)(trainer=self, **kwargs)
        return None

    def _bind_optimizer(self) -> None:
        params = self.model.trainable_parameters()
        ids = {id(p) for p in params}
        if not self.optimizer.bound or {id(p) for p in self.optimizer.parameters()} != ids:
            self.optimizer.bind(params)
        if self.scheduler is not None and self.scheduler.optimizer is not self.optimizer:
            self.scheduler.bind(self.optimizer)

    # ------------------------------------------------------------------ the loop
    def fit(self, X, y, *, epochs: int = 100, batch_size: int = 32, validation_data=None,
            validation_split: float = 0.0, shuffle: bool = True, drop_last: bool = False,
            sample_weight=None, callbacks=(), random_state=None, verbose: bool = False,
            check_finite: bool = True, resume_from=None, fast_path: bool = True) -> History:
        """Train ``self.model`` on ``(X, y)``; returns the :class:`History`.

        ``random_state`` seeds the shuffling (default: a child generator of the model's).
        ``validation_split`` holds out the last fraction of the data (before shuffling).
        ``verbose`` shows a tqdm progress bar over epochs. ``resume_from`` is a checkpoint
        path (see :mod:`corenet.io` and the ``checkpoint`` callback): parameters, masks,
        optimizer and schedule state, RNG states and history are restored and training
        continues with the epoch after the saved one, finishing bit-identically to an
        uninterrupted run with the same arguments.
        """
        model = self.model
        name = f"{type(model).__name__}.fit"
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"{name}: epochs must be an integer >= 0, got {epochs!r}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"{name}: batch_size must be an integer >= 1, got {batch_size!r}")
        X = model.check_input(X, "fit input")
        missing = getattr(self.loss, "missing_targets", False)
        y = _check_targets(y, X.shape[0], name, allow_nan=missing)
        if X.shape[0] == 0:
            raise ShapeError(f"{name}: X is empty (shape {X.shape})")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=model.dtype)
            if sample_weight.shape != (X.shape[0],):
                raise ShapeError(f"{name}: sample_weight must have shape ({X.shape[0]},), got "
                                 f"{sample_weight.shape}")
        if validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"{name}: validation_split must be in (0, 1), got "
                                 f"{validation_split!r}")
            n_val = int(round(X.shape[0] * validation_split))
            if n_val == 0 or n_val == X.shape[0]:
                raise ValueError(f"{name}: validation_split={validation_split} leaves an empty "
                                 f"set for {X.shape[0]} samples")
            validation_data = (X[-n_val:], y[-n_val:])
            X, y = X[:-n_val], y[:-n_val]
            if sample_weight is not None:
                sample_weight = sample_weight[:-n_val]
        if validation_data is not None:
            Xv = model.check_input(np.ascontiguousarray(validation_data[0]), "validation input")
            yv = _check_targets(validation_data[1], Xv.shape[0], name + " validation",
                                allow_nan=missing)
            validation_data = (Xv, yv)
        if not model.built:
            model.build(X.shape[1:])
        self.fast_path = fast_path
        self._fast, self._fast_refused = None, set()
        self.rng = (np.random.default_rng(random_state) if random_state is not None
                    else model.rng.spawn(1)[0])
        self._bind_optimizer()
        start_epoch = 0
        if resume_from is not None:
            from .io import load_checkpoint, restore_trainer

            start_epoch = restore_trainer(self, load_checkpoint(resume_from))

        self._params = model.parameters()
        extra = [registry.create("callback", c) for c in callbacks]
        registered = []
        for cb in self.callbacks + extra + self.regularizers:  # hook-acting regularizers too
            if self._pm.is_registered(cb):
                continue
            self._pm.register(cb)
            registered.append(cb)
        try:
            self._active = {h: bool(getattr(self._pm.hook, h).get_hookimpls())
                            for h in _EVENT_HOOKS}
            return self._run(X, y, sample_weight, start_epoch, epochs, batch_size,
                             validation_data, shuffle, drop_last, verbose, check_finite)
        finally:
            for cb in registered:
                self._pm.unregister(cb)

    def _run(self, X, y, sample_weight, start_epoch, epochs, batch_size, validation_data,
             shuffle, drop_last, verbose, check_finite):
        from tqdm.auto import tqdm

        n = X.shape[0]
        self.stop_training = False
        self._hook("corenet_on_train_begin")
        rng = self.rng
        bar = tqdm(total=epochs, initial=start_epoch, disable=not verbose, unit="epoch",
                   leave=False)
        try:
            for epoch in range(start_epoch, epochs):
                self.epoch = epoch
                self._hook("corenet_on_epoch_begin", epoch=epoch)
                self.model.train()
                order = rng.permutation(n) if shuffle else np.arange(n)
                stops = range(0, n - batch_size + 1 if drop_last else n, batch_size)
                total, count = 0.0, 0
                for b, start in enumerate(stops):
                    idx = order[start:start + batch_size]
                    # batch_begin hooks (augmentation) may rewrite the batch: give them a copy
                    copy = shuffle or self._active["corenet_on_batch_begin"]
                    xb = X[idx] if copy else X[start:start + batch_size]
                    yb = y[idx] if shuffle else y[start:start + batch_size]
                    wb = None if sample_weight is None else sample_weight[idx]
                    value = self.train_step(xb, yb, wb, batch=b, check_finite=check_finite)
                    total += value * xb.shape[0]
                    count += xb.shape[0]
                logs = {"epoch": epoch, "loss": total / max(count, 1)}
                if self.regularizers:
                    params = self.model.parameters()
                    logs["objective"] = logs["loss"] + sum(r.penalty(params)
                                                           for r in self.regularizers)
                if validation_data is not None:
                    val = evaluate_model(self.model, *validation_data, loss=self.loss,
                                         metrics=self.metrics)
                    logs.update({f"val_{k}": v for k, v in val.items()})
                if self.scheduler is not None:
                    self.scheduler.step_epoch(logs.get("val_loss", logs["loss"]))
                self._hook("corenet_on_epoch_end", epoch=epoch, logs=logs)
                self.history.epochs.append(logs)
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k != "epoch"})
                if check_finite and not all(np.isfinite(p.data).all()
                                            for p in self.model.parameters()):
                    raise NotFiniteError(f"training: parameters became NaN or inf in epoch "
                                         f"{epoch}; lower the learning rate")
                if self._hook("corenet_should_stop", epoch=epoch, logs=logs) or \
                        self.stop_training:
                    break
                grown = self._hook("corenet_grow_network", model=self.model)
                if grown is not None:
                    self.model = grown
                    self._params = grown.parameters()
                    self._fast = None
                    self._bind_optimizer()
        finally:
            bar.close()
        self._hook("corenet_on_train_end", history=self.history)
        return self.history

    def _fast_step(self, xb, wb):
        """The compiled dense step for this batch, or None (see :mod:`corenet.fastpath`)."""
        if not self.fast_path or wb is not None or self._active["corenet_on_after_backward"] \
                or self._active["corenet_on_before_step"]:
            return None
        fast = self._fast
        if fast is None or fast.batch_size != xb.shape[0] or not fast.sync():
            from .fastpath import build_dense_step

            if not self.optimizer.bound:
                self._bind_optimizer()
            key = (xb.shape[0], id(self.model))
            if fast is None and key in self._fast_refused:
                return None
            fast = self._fast = build_dense_step(self.model, self.loss, self.optimizer,
                                                 xb.shape[0], regularizers=self.regularizers)
            if fast is None:
                self._fast_refused.add(key)
        return fast

    def train_step(self, xb, yb, wb=None, *, batch: int = 0, check_finite: bool = True) -> float:
        """One mini-batch update; returns the batch loss (without penalties)."""
        self._hook("corenet_on_batch_begin", batch=batch, X=xb, y=yb)
        if not self.model.built:
            self.model.build(xb.shape[1:])
        if not self.optimizer.bound:
            self._bind_optimizer()
        fast = self._fast_step(xb, wb)
        if fast is not None and xb.dtype == self.model.dtype and xb.flags.c_contiguous \
                and xb.shape[1:] == self.model.input_shape:
            value = fast(xb, yb)
            if check_finite and not np.isfinite(value):
                raise NotFiniteError(f"training: the {self.loss.name} loss became {value} at "
                                     f"epoch {self.epoch}, batch {batch}; lower the learning "
                                     f"rate or check the data")
        else:
            value = self._layer_step(xb, yb, wb, batch, check_finite)
        self._hook("corenet_on_after_step", optimizer=self.optimizer)
        if self.scheduler is not None:
            self.scheduler.step_batch()
        self.history.batch_losses.append(value)
        self._hook("corenet_on_batch_end", batch=batch, loss=value)
        return value

    def _layer_step(self, xb, yb, wb, batch, check_finite) -> float:
        """Forward, loss, backward, regularizers, hooks and the optimizer step, layer by
        layer (README §8)."""
        model, loss = self.model, self.loss
        if getattr(self.optimizer, "needs_data", False):
            # data solvers (IRLS, least squares, Levenberg-Marquardt): one iteration per batch
            value = float(self.optimizer.data_step(model, loss, xb, yb, wb))
            if check_finite and not np.isfinite(value):
                raise NotFiniteError(f"training: the {loss.name} loss became {value} at epoch "
                                     f"{self.epoch}, batch {batch}")
            return value
        fuse = loss.fused_activation is not None and \
            loss.fused_activation == model.output_activation
        out = model.forward(xb, logits=fuse)
        if fuse:
            value, grad = loss.fused_value_and_grad(out, yb, wb)
        else:
            value, grad = loss.value_and_grad(out, yb, wb)
        if check_finite and not np.isfinite(value):
            raise NotFiniteError(f"training: the {loss.name} loss became {value} at epoch "
                                 f"{self.epoch}, batch {batch}; lower the learning rate or "
                                 f"check the data")
        params = self._params if self._params is not None else self.model.parameters()
        for p in params:
            p.grad.fill(0.0)
        model.backward(grad, logits=fuse, input_grad=False)
        for r in self.regularizers:
            r.add_grad(params)
        self._hook("corenet_on_after_backward", parameters=params)
        for p in params:
            if p.masked:
                p.grad *= p._mask
        self._hook("corenet_on_before_step", optimizer=self.optimizer)
        objective = float(value)
        if self.regularizers and getattr(self.optimizer, "uses_loss", False):
            objective += sum(r.penalty(params) for r in self.regularizers)
        self.optimizer.step(loss=objective)
        return float(value)

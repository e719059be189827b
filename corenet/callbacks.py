"""Callbacks: per-run plugin objects (spec README §9 ``callback``, regularization.md §7)."""
from __future__ import annotations

import numpy as np

from .callback import Callback
from .errors import HyperparameterError
from .plugins import hookimpl


class HistoryCallback(Callback):
    """Records the loss of every mini-batch and the logs of every epoch (learning curves).

    The trainer keeps its own :class:`~corenet.History`; this callback gives a user an
    independent record (``batch_losses``, ``epochs``) for one or several runs.
    """

    name = "history"

    def __init__(self):
        self.batch_losses: list[float] = []
        self.epochs: list[dict] = []

    @hookimpl
    def corenet_on_batch_end(self, loss):
        self.batch_losses.append(float(loss))

    @hookimpl
    def corenet_on_epoch_end(self, logs):
        self.epochs.append(dict(logs))


def _snapshot(model) -> list:
    """Deep copy of every parameter (data and mask) and every layer buffer (BN statistics)."""
    params = [(p, p.data.copy(), p.mask.copy() if p.masked else None)
              for p in model.parameters()]
    buffers = [(layer, {k: np.array(v, copy=True) for k, v in layer.buffers().items()})
               for layer in model.layers_in_order()]
    return [params, [(layer, b) for layer, b in buffers if b]]


def _restore(snapshot) -> None:
    params, buffers = snapshot
    for p, data, mask in params:
        if p.data.shape != data.shape:       # the network grew since: keep the new shapes
            continue
        p.data[...] = data
        p.mask = mask
    for layer, b in buffers:
        layer.load_buffers(b)


def _mode(monitor: str, mode: str, who: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise HyperparameterError(f"{who}: mode must be auto/min/max, got {mode!r}")
    return ("max" if "acc" in monitor else "min") if mode == "auto" else mode


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; restore the best
    weights at the end (``callback:early_stopping``, regularization.md §7.1, D-55).

    After each epoch ``e >= start_from_epoch`` with monitored value ``v``: improved means
    ``v < best − min_delta`` (``mode="max"``: ``v > best + min_delta``; ``mode="auto"``
    picks max for names containing "acc"), and also ``v < baseline`` (max: ``>``) when a
    baseline is given. On improvement: ``best = v``, ``best_epoch = e``, ``wait = 0`` and a
    snapshot (deep copy of the parameters, their masks and the layer buffers such as
    batch-norm running statistics); otherwise ``wait += 1`` and training stops once
    ``wait >= patience``. At train end the snapshot is restored when
    ``restore_best_weights``. Answers the ``corenet_should_stop`` decision hook.
    """

    name = "early_stopping"

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True, baseline=None,
                 start_from_epoch: int = 0):
        who = self.name
        if patience != float("inf") and (not isinstance(patience, (int, np.integer))
                                         or isinstance(patience, bool) or patience < 0):
            raise HyperparameterError(f"{who}: patience must be an integer >= 0, got "
                                      f"{patience!r}")
        if not np.isfinite(min_delta) or min_delta < 0:
            raise HyperparameterError(f"{who}: min_delta must be >= 0, got {min_delta}")
        if not isinstance(start_from_epoch, (int, np.integer)) or start_from_epoch < 0:
            raise HyperparameterError(f"{who}: start_from_epoch must be an integer >= 0, got "
                                      f"{start_from_epoch!r}")
        if baseline is not None and not np.isfinite(baseline):
            raise HyperparameterError(f"{who}: baseline must be a finite number or None, got "
                                      f"{baseline!r}")
        self.monitor, self.min_delta = monitor, float(min_delta)
        self.patience = patience if patience == float("inf") else int(patience)
        self.mode = _mode(monitor, mode, who)
        self.restore_best_weights = bool(restore_best_weights)
        self.baseline = None if baseline is None else float(baseline)
        self.start_from_epoch = int(start_from_epoch)
        self._reset()

    def _reset(self):
        self.best, self.best_epoch, self.wait, self._snapshot = None, None, 0, None
        self.stopped_epoch = None
        self.restored = False

    def get_config(self):
        return {"monitor": self.monitor, "patience": self.patience,
                "min_delta": self.min_delta, "mode": self.mode,
                "restore_best_weights": self.restore_best_weights, "baseline": self.baseline,
                "start_from_epoch": self.start_from_epoch}

    def _improved(self, value: float) -> bool:
        if self.baseline is not None and not (value < self.baseline if self.mode == "min"
                                              else value > self.baseline):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, model, epoch: int, logs: dict):
        """Process the logs of one epoch; True when training should stop."""
        if epoch < self.start_from_epoch:
            return None
        if self.monitor not in logs:
            raise KeyError(f"{self.name}: monitored value {self.monitor!r} is not in the "
                           f"epoch logs {sorted(logs)} (give validation data for val_*)")
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self._snapshot = _snapshot(model)
            return None
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return None

    def restore(self) -> None:
        """Restore the best snapshot (no-op without one)."""
        if self._snapshot is not None:
            _restore(self._snapshot)
            self.restored = True

    @hookimpl
    def corenet_on_train_begin(self, trainer):
        self._reset()

    @hookimpl
    def corenet_should_stop(self, trainer, epoch, logs):
        return self.update(trainer.model, epoch, logs)

    @hookimpl
    def corenet_on_train_end(self, trainer):
        if self.restore_best_weights:
            self.restore()


class Pocket(EarlyStopping):
    """The pocket algorithm (``callback:pocket``, §7.2; Gallant's perceptron pocket): early
    stopping that never stops — it keeps ("pockets") the parameters, masks and buffers with
    the best ``monitor`` value seen so far and restores them at the end (``patience = ∞``,
    ``restore_best_weights = True``). Use ``monitor="loss"`` (the epoch's training loss)
    when there is no validation data. Abstains from ``corenet_should_stop``."""

    name = "pocket"

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", min_delta: float = 0.0):
        super().__init__(monitor=monitor, patience=float("inf"), min_delta=min_delta,
                         mode=mode, restore_best_weights=True)

    def get_config(self):
        return {"monitor": self.monitor, "mode": self.mode, "min_delta": self.min_delta}

    @hookimpl
    def corenet_should_stop(self, trainer, epoch, logs):
        self.update(trainer.model, epoch, logs)
        return None


class ToleranceStop(Callback):
    """Stop on small progress (``callback:tolerance_stop``, §7.3), checked after each epoch:
    when ``|R_e − R_{e−1}| <= tol_loss`` or ``‖θ_e − θ_{e−1}‖_∞ <= tol_step`` (either may
    be None), or once ``max_epochs`` epochs (counted from epoch 0) are done.

    ``R`` is ``logs[monitor]``; the default ``monitor=None`` takes the regularised
    objective ``"objective"`` when regularizers are active, else ``"loss"``. ``θ`` is the
    vector of trainable parameters; ``θ_{−1}`` is taken at train begin (so the step test
    applies from epoch 0, the loss test from epoch 1); when the network grows between
    epochs the step test skips that epoch. ``reason`` tells which criterion fired.
    """

    name = "tolerance_stop"

    def __init__(self, tol_loss=None, tol_step=None, max_epochs=None, monitor=None):
        who = self.name
        for key, value in (("tol_loss", tol_loss), ("tol_step", tol_step)):
            if value is not None and (not np.isfinite(value) or value < 0):
                raise HyperparameterError(f"{who}: {key} must be a number >= 0 or None, got "
                                          f"{value!r}")
        if max_epochs is not None and (not isinstance(max_epochs, (int, np.integer))
                                       or isinstance(max_epochs, bool) or max_epochs < 1):
            raise HyperparameterError(f"{who}: max_epochs must be an integer >= 1 or None, "
                                      f"got {max_epochs!r}")
        if tol_loss is None and tol_step is None and max_epochs is None:
            raise HyperparameterError(f"{who}: give at least one of tol_loss, tol_step, "
                                      f"max_epochs")
        self.tol_loss = None if tol_loss is None else float(tol_loss)
        self.tol_step = None if tol_step is None else float(tol_step)
        self.max_epochs = None if max_epochs is None else int(max_epochs)
        self.monitor = monitor
        self._reset()

    def _reset(self):
        self._last_value = self._last_theta = None
        self.stopped_epoch = self.reason = None

    def get_config(self):
        return {"tol_loss": self.tol_loss, "tol_step": self.tol_step,
                "max_epochs": self.max_epochs, "monitor": self.monitor}

    @staticmethod
    def _theta(model):
        ps = model.trainable_parameters()
        return np.concatenate([p.data.ravel() for p in ps]) if ps else np.zeros(0)

    def update(self, model, epoch: int, logs: dict):
        """Process the logs of one epoch; True when training should stop."""
        key = self.monitor or ("objective" if "objective" in logs else "loss")
        if key not in logs:
            raise KeyError(f"{self.name}: monitored value {key!r} is not in the epoch logs "
                           f"{sorted(logs)}")
        value = float(logs[key])
        theta = self._theta(model)
        reason = None
        if self.tol_loss is not None and self._last_value is not None and \
                abs(value - self._last_value) <= self.tol_loss:
            reason = "tol_loss"
        elif self.tol_step is not None and self._last_theta is not None and \
                self._last_theta.shape == theta.shape and \
                (theta.size == 0 or np.abs(theta - self._last_theta).max() <= self.tol_step):
            reason = "tol_step"
        elif self.max_epochs is not None and epoch + 1 >= self.max_epochs:
            reason = "max_epochs"
        self._last_value, self._last_theta = value, theta
        if reason is not None:
            self.stopped_epoch, self.reason = epoch, reason
            return True
        return None

    @hookimpl
    def corenet_on_train_begin(self, trainer):
        self._reset()
        self._last_theta = self._theta(trainer.model)

    @hookimpl
    def corenet_should_stop(self, trainer, epoch, logs):
        return self.update(trainer.model, epoch, logs)


class Checkpoint(Callback):
    """Write a checkpoint (model, optimizer, schedule, RNG states, history, epoch) every
    ``every`` epochs into ``directory`` as ``epoch-XXXX.npz``, atomically; keep the last
    ``keep_last`` of them (None keeps all) and, with ``keep_best``, the best one by
    ``monitor`` as ``best.npz``. Resume with ``model.fit(..., resume_from=path)``."""

    name = "checkpoint"

    def __init__(self, directory: str, every: int = 1, keep_last: int | None = 3,
                 keep_best: bool = False, monitor: str = "val_loss", mode: str = "auto"):
        if every < 1:
            raise HyperparameterError(f"checkpoint: every must be >= 1, got {every}")
        if keep_last is not None and keep_last < 1:
            raise HyperparameterError(f"checkpoint: keep_last must be >= 1 or None, got "
                                      f"{keep_last}")
        self.directory, self.every, self.keep_last = str(directory), int(every), keep_last
        self.keep_best, self.monitor = keep_best, monitor
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.best = None
        self.written: list[str] = []

    def get_config(self):
        return {"directory": self.directory, "every": self.every, "keep_last": self.keep_last,
                "keep_best": self.keep_best, "monitor": self.monitor, "mode": self.mode}

    @hookimpl
    def corenet_on_epoch_end(self, trainer, epoch, logs):
        import os

        from .io import save_checkpoint

        if (epoch + 1) % self.every == 0:
            path = os.path.join(self.directory, f"epoch-{epoch:04d}.npz")
            # the history entry of this epoch is appended after the hook: pass it along
            trainer.history.epochs.append(dict(logs))
            try:
                save_checkpoint(path, trainer, epoch)
            finally:
                trainer.history.epochs.pop()
            self.written.append(path)
            if self.keep_last is not None:
                while len(self.written) > self.keep_last:
                    old = self.written.pop(0)
                    if os.path.exists(old):
                        os.unlink(old)
        if self.keep_best and self.monitor in logs:
            value = float(logs[self.monitor])
            better = self.best is None or (value < self.best if self.mode == "min"
                                           else value > self.best)
            if better:
                self.best = value
                trainer.history.epochs.append(dict(logs))
                try:
                    save_checkpoint(os.path.join(self.directory, "best.npz"), trainer, epoch)
                finally:
                    trainer.history.epochs.pop()


@hookimpl
def corenet_register_callbacks():
    return [HistoryCallback, EarlyStopping, Pocket, ToleranceStop, Checkpoint]

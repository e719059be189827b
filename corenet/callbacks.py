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


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; restore the best
    weights (and masks) at the end (D-55).

    Improvement means strictly better than the best by more than ``min_delta``
    (lower for losses, higher when ``mode="max"``; ``mode="auto"`` picks max for names
    containing "acc"). Answers the ``corenet_should_stop`` decision hook.
    """

    name = "early_stopping"

    def __init__(self, monitor: str = "val_loss", patience: int = 10, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True):
        if patience < 0:
            raise HyperparameterError(f"early_stopping: patience must be >= 0, got {patience}")
        if min_delta < 0:
            raise HyperparameterError(f"early_stopping: min_delta must be >= 0, got {min_delta}")
        if mode not in ("auto", "min", "max"):
            raise HyperparameterError(f"early_stopping: mode must be auto/min/max, got {mode!r}")
        self.monitor, self.patience, self.min_delta = monitor, int(patience), float(min_delta)
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.restore_best_weights = restore_best_weights
        self.best = None
        self.best_epoch = None
        self.wait = 0
        self._snapshot = None
        self.stopped_epoch = None

    def get_config(self):
        return {"monitor": self.monitor, "patience": self.patience,
                "min_delta": self.min_delta, "mode": self.mode,
                "restore_best_weights": self.restore_best_weights}

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    @hookimpl
    def corenet_on_train_begin(self, trainer):
        self.best, self.best_epoch, self.wait, self._snapshot = None, None, 0, None
        self.stopped_epoch = None

    @hookimpl
    def corenet_should_stop(self, trainer, epoch, logs):
        if self.monitor not in logs:
            raise KeyError(f"early_stopping: monitored value {self.monitor!r} is not in the "
                           f"epoch logs {sorted(logs)} (give validation data for val_*)")
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self._snapshot = [(p, p.data.copy(), p.mask.copy())
                                  for p in trainer.model.parameters()]
            return None
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return None

    @hookimpl
    def corenet_on_train_end(self, trainer):
        if self.restore_best_weights and self._snapshot is not None:
            for p, data, mask in self._snapshot:
                p.data[...] = data
                p.mask = mask if not np.all(mask == 1) else None


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
    return [HistoryCallback, EarlyStopping, Checkpoint]

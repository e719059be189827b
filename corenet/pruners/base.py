"""The :class:`Pruner` base class and :class:`PruneReport` (spec pruning.md §1-§2, §4-§6):
one-shot rounds of score → mask → retrain with stop criteria and a restore on error, and
the training-event hooks that prune along a sparsity schedule during ``fit``."""
from __future__ import annotations

import time
import warnings

import numpy as np

from .. import registry
from ..callback import Callback
from ..errors import HyperparameterError, NotFiniteError
from ..plugins import hookimpl
from .masks import (FlatLayout, Snapshot, apply_flat_mask, check_masks,  # noqa: F401
                    count_pruned, format_sparsity, is_prunable, k_from_amount,
                    prunable_parameters, prune_entries, set_masks, smallest,
                    sparsity_summary, unprune)


# ----------------------------------------------------------------------------- report


class PruneReport(dict):
    """What :meth:`Pruner.prune` did: ``method``, ``weights_before``/``weights_after``
    (unpruned prunable weights), ``pruned``, ``loss_before``/``loss_after``,
    ``accuracy_before``/``accuracy_after`` (None for non-classification targets),
    ``rounds``, ``stopped`` (why it stopped), ``seconds`` and ``records`` (one dict per
    round or deletion). A dict with attribute access."""

    __getattr__ = dict.get

    def summary(self) -> str:
        def fmt(v, pct=False):
            if v is None:
                return "-"
            return f"{100 * v:.2f}%" if pct else f"{v:.6g}"

        rows = [("", "before", "after"),
                ("weights", f"{self['weights_before']:,}", f"{self['weights_after']:,}"),
                ("loss", fmt(self["loss_before"]), fmt(self["loss_after"])),
                ("accuracy", fmt(self["accuracy_before"], True),
                 fmt(self["accuracy_after"], True))]
        if self.get("test_accuracy_before") is not None:
            rows.append(("test accuracy", fmt(self["test_accuracy_before"], True),
                         fmt(self["test_accuracy_after"], True)))
        out = [f"{self['method']}: pruned {self['pruned']:,} weights in {self['rounds']} "
               f"round(s), {self['seconds']:.2f} s (stopped: {self['stopped']})"]
        out += [f"  {a:<14}{b:>14}{c:>14}" for a, b, c in rows]
        return "\n".join(out)


# ----------------------------------------------------------------------------- base class


def _targets_are_classes(y, out_shape) -> bool:
    y = np.asarray(y)
    if y.ndim == 1 and y.dtype.kind in "iub":
        return True
    if y.dtype.kind == "f" and np.all(np.isin(y, (0.0, 1.0, -1.0))):
        return True
    return False


class Pruner(Callback):
    """Base of every pruner (plugin category ``pruner``).

    Two ways to use one:

    * one-shot: ``pruner.prune(model, X, y) -> PruneReport`` — rounds of
      *score → mask → retrain*, with the stop criteria below; on any error (NaN/inf
      parameters or curvature, singular Hessian, impossible target, malformed mask)
      the model's parameters and masks are restored and the error re-raised;
    * during training: ``model.fit(X, y, callbacks=[pruner])`` — at the end of epochs
      ``start_epoch, start_epoch + frequency, …`` up to ``end_epoch`` the pruner raises
      the sparsity of the prunable weights along the schedule of Zhu & Gupta (2017)
      ``s_t = s_f + (s_i − s_f)(1 − (t − t₀)/(t_end − t₀))^3`` (``schedule="polynomial"``;
      ``"linear"`` uses exponent 1) towards ``target_sparsity``, or prunes ``amount`` of
      the unpruned weights at each event without a target; the ongoing training is the
      retraining. Curvature pruners use ``data=(X, y)`` (else the batches of that epoch).

    Common options: ``loss`` (default: the model's compiled loss), ``prune_biases``,
    ``parameters`` (names or layer keys to restrict to); targets ``amount`` (fraction of
    the unpruned prunable weights per round, ``k = ⌊amount·n + ½⌋``), ``n_prune`` (total
    for the call), ``target_sparsity`` (fraction of all prunable weights pruned at the
    end), ``target_weights`` (prunable weights left at the end); ``rounds``;
    ``retrain_epochs`` (after each round; masks enforced) with ``retrain_batch_size``
    and the model's compiled optimizer (``retrain_optimizer`` if not compiled;
    ``reset_optimizer=True`` clears its per-parameter state before every retraining —
    the pruner moved the weights, OBS all of them, so momentum, Adam moments or a
    Levenberg-Marquardt damping left by the previous retraining belong to another
    point); stop
    criteria ``max_loss_increase`` (relative increase of the loss over the round;
    exceeded → the round is undone and pruning stops, pruning.md §2), ``max_loss``
    (absolute) and ``max_accuracy_drop`` (absolute drop of accuracy vs. before the call,
    on ``validation_data`` if given, else the pruning data); ``lookahead`` (default 0):
    after a round that violates a criterion, go on for up to ``lookahead`` more rounds —
    if the criteria hold again pruning continues from there, otherwise the model is
    restored to the last network that met them (so with a large ``lookahead`` the result
    is the smallest network along the pruning path that meets the criteria; the rounds in
    between are recorded with ``violated``, the abandoned ones with ``undone``).
    """

    name = ""
    #: whether the score needs the pruning inputs X, and a loss (with targets y)
    needs_data = True
    needs_loss = True

    def __init__(self, *, amount=0.2, n_prune=None, target_sparsity=None, target_weights=None,
                 rounds: int = 1, retrain_epochs: int = 0, retrain_batch_size: int = 32,
                 retrain_optimizer="sgd", reset_optimizer: bool = False,
                 max_loss_increase=None, max_loss=None, max_accuracy_drop=None,
                 lookahead: int = 0, loss=None, prune_biases: bool = False,
                 parameters=None, data=None, start_epoch: int = 0, end_epoch=None,
                 frequency: int = 1, initial_sparsity: float = 0.0,
                 schedule: str = "polynomial", random_state=None, verbose: bool = False):
        who = f"pruner {self.name!r}"
        if amount is not None:
            amount = float(amount)
            if not 0.0 <= amount <= 1.0:
                raise HyperparameterError(f"{who}: amount must be in [0, 1], got {amount}")
        for key, v in (("n_prune", n_prune), ("target_weights", target_weights)):
            if v is not None and (isinstance(v, bool) or int(v) != v or v < 0):
                raise HyperparameterError(f"{who}: {key} must be an integer >= 0, got {v!r}")
        if target_sparsity is not None and not 0.0 <= float(target_sparsity) <= 1.0:
            raise HyperparameterError(f"{who}: target_sparsity must be in [0, 1], got "
                                      f"{target_sparsity!r}")
        if int(rounds) < 1:
            raise HyperparameterError(f"{who}: rounds must be >= 1, got {rounds!r}")
        if int(retrain_epochs) < 0:
            raise HyperparameterError(f"{who}: retrain_epochs must be >= 0, got "
                                      f"{retrain_epochs!r}")
        if isinstance(lookahead, bool) or int(lookahead) != lookahead or lookahead < 0:
            raise HyperparameterError(f"{who}: lookahead must be an integer >= 0, got "
                                      f"{lookahead!r}")
        if int(frequency) < 1:
            raise HyperparameterError(f"{who}: frequency must be >= 1, got {frequency!r}")
        if schedule not in ("polynomial", "linear"):
            raise HyperparameterError(f"{who}: schedule must be 'polynomial' or 'linear', "
                                      f"got {schedule!r}")
        for key, v in (("max_loss_increase", max_loss_increase), ("max_loss", max_loss),
                       ("max_accuracy_drop", max_accuracy_drop)):
            if v is not None and not (np.isfinite(v) and v >= 0):
                raise HyperparameterError(f"{who}: {key} must be a number >= 0, got {v!r}")
        self.amount, self.n_prune = amount, None if n_prune is None else int(n_prune)
        self.target_sparsity = None if target_sparsity is None else float(target_sparsity)
        self.target_weights = None if target_weights is None else int(target_weights)
        self.rounds, self.retrain_epochs = int(rounds), int(retrain_epochs)
        self.retrain_batch_size, self.retrain_optimizer = int(retrain_batch_size), \
            retrain_optimizer
        self.reset_optimizer = bool(reset_optimizer)
        self.max_loss_increase, self.max_loss = max_loss_increase, max_loss
        self.max_accuracy_drop, self.lookahead = max_accuracy_drop, int(lookahead)
        self.loss, self.prune_biases, self.parameters = loss, bool(prune_biases), parameters
        self.data = data
        self.start_epoch, self.end_epoch, self.frequency = int(start_epoch), end_epoch, \
            int(frequency)
        self.initial_sparsity, self.schedule = float(initial_sparsity), schedule
        self.random_state, self.verbose = random_state, bool(verbose)
        self.report = None
        self.events: list[dict] = []
        self._batches = None

    def get_config(self) -> dict:
        keys = ("amount", "n_prune", "target_sparsity", "target_weights", "rounds",
                "retrain_epochs", "retrain_batch_size", "reset_optimizer", "max_loss_increase",
                "max_loss", "max_accuracy_drop", "lookahead", "prune_biases", "start_epoch",
                "end_epoch", "frequency", "initial_sparsity", "schedule")
        return {k: getattr(self, k) for k in keys}

    # ------------------------------------------------------------------ helpers
    def _loss(self, model, required: bool = True, fallback=None):
        spec = self.loss if self.loss is not None else model.loss
        if spec is None:
            spec = fallback
        if spec is None:
            if not required:
                return None
            raise HyperparameterError(f"pruner {self.name!r}: no loss — pass loss= or compile "
                                      f"the model")
        return registry.create("loss", spec)

    def _has_stop_criteria(self) -> bool:
        return any(v is not None for v in (self.max_loss_increase, self.max_loss,
                                           self.max_accuracy_drop))

    def _params(self, model):
        return prunable_parameters(model, self.prune_biases, self.parameters)

    def _validate(self, model, X):
        if not model.built:
            if X is None:
                raise ValueError(f"pruner {self.name!r}: the model is not built")
            model.build(np.asarray(X).shape[1:])
        check_masks(model)
        for p in model.parameters():
            if not np.isfinite(p.data).all():
                raise NotFiniteError(f"pruner {self.name!r}: parameter {p.name} holds NaN or "
                                     f"inf; nothing was pruned")
        if not self._params(model):
            raise ValueError(f"pruner {self.name!r}: the model has no prunable parameters")

    def total_to_prune(self, n_unpruned: int, n_total: int):
        """Weights to remove in this call (None: ``amount`` per round)."""
        who = f"pruner {self.name!r}"
        if self.n_prune is not None:
            if self.n_prune > n_unpruned:
                raise HyperparameterError(f"{who}: cannot prune {self.n_prune} weights: only "
                                          f"{n_unpruned} unpruned prunable weights exist")
            return self.n_prune
        if self.target_weights is not None:
            return max(n_unpruned - self.target_weights, 0)
        if self.target_sparsity is not None:
            return max(int(round(self.target_sparsity * n_total)) - (n_total - n_unpruned), 0)
        return None

    def _round_sizes(self, params):
        n_unpruned, n_total = count_pruned(params)
        total = self.total_to_prune(n_unpruned, n_total)
        return total, n_unpruned

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, ctx) -> tuple[float, float | None]:
        from ..trainer import evaluate_model

        X, y = ctx["eval"]
        metrics = ["accuracy"] if ctx["classes"] else []
        logs = evaluate_model(ctx["model"], X, y, loss=ctx["loss"], metrics=metrics)
        if not np.isfinite(logs["loss"]):
            raise NotFiniteError(f"pruner {self.name!r}: the loss became {logs['loss']}")
        return logs["loss"], logs.get("accuracy")

    def _stop_reason(self, ctx, loss_ref, loss, acc):
        if self.max_loss_increase is not None and \
                (loss - loss_ref) > self.max_loss_increase * max(abs(loss_ref), 1e-12):
            return "max_loss_increase"
        if self.max_loss is not None and loss > self.max_loss:
            return "max_loss"
        if self.max_accuracy_drop is not None and acc is not None and \
                ctx["accuracy0"] - acc > self.max_accuracy_drop + 1e-12:
            return "max_accuracy_drop"
        return None

    def _retrain(self, ctx, epochs=None) -> None:
        epochs = self.retrain_epochs if epochs is None else epochs
        if epochs <= 0:
            return
        model = ctx["model"]
        if model.optimizer is None or model.loss is None:
            model.compile(loss=ctx["loss"], optimizer=self.retrain_optimizer,
                          metrics=model.metrics)
        elif self.reset_optimizer:
            model.optimizer.state = {}
        model.fit(ctx["X"], ctx["y"], epochs=epochs, batch_size=self.retrain_batch_size,
                  random_state=None if self.random_state is None else
                  int(self.random_state) + len(ctx["records"]))
        model.eval()

    # ------------------------------------------------------------------ one-shot API
    def prune(self, model, X=None, y=None, *, validation_data=None) -> PruneReport:
        """Prune ``model`` on the pruning data ``(X, y)`` (pruning.md); returns a
        :class:`PruneReport`. Parameters and masks are restored if anything fails."""
        t0 = time.perf_counter()
        if (self.needs_data and X is None) or (self.needs_loss and y is None):
            raise ValueError(f"pruner {self.name!r}: prune(model, X, y) needs the data")
        if X is not None:
            X = model.check_input(np.ascontiguousarray(X), f"pruner {self.name!r} input")
        self._validate(model, X)
        snapshot = Snapshot(model)
        was_training = model.training
        try:
            ctx = self._context(model, X, y, validation_data)
            ctx["weights0"] = count_pruned(self._params(model))[0]
            self._run(ctx)
            loss1, acc1 = self._evaluate(ctx) if ctx["eval"] is not None else (None, None)
        except BaseException:
            snapshot.restore()
            model.train(was_training)
            raise
        model.train(was_training)
        params = self._params(model)
        self.report = PruneReport(
            method=self.name, weights_before=ctx["weights0"],
            weights_after=count_pruned(params)[0],
            pruned=ctx["weights0"] - count_pruned(params)[0], loss_before=ctx["loss0"],
            loss_after=loss1, accuracy_before=ctx["accuracy0"], accuracy_after=acc1,
            rounds=ctx["rounds"], stopped=ctx["stopped"],
            seconds=time.perf_counter() - t0, records=ctx["records"], **ctx.get("extra", {}))
        return self.report

    def _context(self, model, X, y, validation_data):
        loss = self._loss(model, required=self.needs_loss or self._has_stop_criteria())
        ctx = {"model": model, "loss": loss, "X": X, "y": y, "records": [], "rounds": 0,
               "stopped": "target", "optimizer": model.optimizer}
        if validation_data is not None:
            Xv = model.check_input(np.ascontiguousarray(validation_data[0]), "validation")
            ctx["eval"] = (Xv, validation_data[1])
        elif X is not None and y is not None:
            ctx["eval"] = (X, y)
        else:
            ctx["eval"] = None
        if loss is None:
            ctx["eval"] = None
        if ctx["eval"] is not None:
            ctx["classes"] = _targets_are_classes(ctx["eval"][1], None)
            model.eval()
            ctx["loss0"], ctx["accuracy0"] = self._evaluate(ctx)
        else:
            ctx["classes"], ctx["loss0"], ctx["accuracy0"] = False, None, None
        return ctx

    def _run(self, ctx) -> None:
        """Rounds of score → mask → retrain with the stop criteria (pruning.md §2, §4) and
        the ``lookahead`` of the class docstring."""
        model = ctx["model"]
        params = self._params(model)
        total, n_unpruned = self._round_sizes(params)
        remaining = total
        guard = Lookahead(self.lookahead)
        for r in range(self.rounds):
            n_unpruned = count_pruned(params)[0]
            if remaining is None:
                k = k_from_amount(self.amount, n_unpruned)
            else:
                k = int(np.ceil(remaining / (self.rounds - r)))
            k = min(k, n_unpruned)
            if k <= 0:
                break
            before = Snapshot(model)
            if guard.pending:
                loss_ref = guard.loss_ref
            else:
                loss_ref = self._evaluate(ctx)[0] if ctx["eval"] is not None else None
            record = self.step(ctx, k)
            record.update(round=r, k=k)
            self._retrain(ctx)
            ctx["rounds"] += 1
            if remaining is not None:
                remaining -= k
            if ctx["eval"] is None:
                ctx["records"].append(record)
                continue
            if self._judge_round(ctx, guard, record, before, loss_ref):
                return
        if guard.finish(ctx):
            return
        if total is None:
            ctx["stopped"] = "rounds"

    def _judge_round(self, ctx, guard, record, before, loss_ref) -> bool:
        """Evaluate a finished round (loss and accuracy into ``record``) against the stop
        criteria, through the lookahead ``guard``; True when pruning must stop (the guard
        has then restored the last network that met the criteria)."""
        loss, acc = self._evaluate(ctx)
        record.update(loss=loss, accuracy=acc)
        reason = self._stop_reason(ctx, loss_ref, loss, acc)
        if not reason:
            guard.accept(ctx, record)
            return False
        if guard.violated(record, reason, before, loss_ref=loss_ref):
            guard.finish(ctx)
            return True
        return False

    def step(self, ctx, k: int) -> dict:
        """Prune ``k`` weights now (no retraining); return a record dict."""
        raise NotImplementedError

    # ------------------------------------------------------------------ during training
    def sparsity_at(self, epoch: int) -> float | None:
        """The scheduled sparsity after ``epoch`` (None when no event falls on it)."""
        if epoch < self.start_epoch or (epoch - self.start_epoch) % self.frequency:
            return None
        if self.end_epoch is not None and epoch > self.end_epoch:
            return None
        if self.target_sparsity is None:
            return -1.0                        # prune ``amount`` at this event
        if self.end_epoch is None or self.end_epoch <= self.start_epoch:
            return self.target_sparsity
        t = min(1.0, (epoch - self.start_epoch) / (self.end_epoch - self.start_epoch))
        power = 3 if self.schedule == "polynomial" else 1
        s_i, s_f = self.initial_sparsity, self.target_sparsity
        return s_f + (s_i - s_f) * (1.0 - t) ** power

    def event_count(self, model, sparsity: float) -> int:
        """How many to prune at a training event reaching ``sparsity`` (< 0: ``amount``)."""
        n_unpruned, n_total = count_pruned(self._params(model))
        if sparsity < 0:
            k = k_from_amount(self.amount if self.amount is not None else 0.0, n_unpruned)
        else:
            k = max(int(round(sparsity * n_total)) - (n_total - n_unpruned), 0)
        return min(k, n_unpruned)

    @hookimpl
    def corenet_on_train_begin(self, trainer):
        self.events = []
        self._batches = None

    @hookimpl
    def corenet_on_epoch_begin(self, trainer, epoch):
        self._batches = [] if (self.needs_data and self.data is None and
                               self.sparsity_at(epoch) is not None) else None

    @hookimpl
    def corenet_on_batch_begin(self, trainer, X, y):
        if self._batches is not None:
            self._batches.append((np.array(X), np.array(y)))

    @hookimpl
    def corenet_on_epoch_end(self, trainer, epoch, logs):
        s = self.sparsity_at(epoch)
        if s is None:
            return
        model = trainer.model
        params = self._params(model)
        n_unpruned, n_total = count_pruned(params)
        k = self.event_count(model, s)
        if k <= 0:
            logs["sparsity"] = 1.0 - n_unpruned / n_total if n_total else 0.0
            return
        if self.data is not None:
            X, y = self.data
            X = model.check_input(np.ascontiguousarray(X), f"pruner {self.name!r} data")
        elif self._batches:
            X = np.concatenate([b[0] for b in self._batches])
            y = np.concatenate([b[1] for b in self._batches])
        else:
            X = y = None
        self._validate(model, X)
        snapshot = Snapshot(model)
        loss = self._loss(model, fallback=trainer.loss) if self.needs_loss else None
        ctx = {"model": model, "loss": loss,
               "X": X, "y": y, "records": [], "optimizer": trainer.optimizer,
               "eval": None}
        try:
            record = self.step(ctx, k)
        except BaseException:
            snapshot.restore()
            raise
        finally:
            model.train(True)
            self._batches = None
        record.update(epoch=epoch, k=k, sparsity=1.0 - count_pruned(params)[0] / n_total)
        logs["sparsity"] = record["sparsity"]
        self.events.append(record)
        if self.verbose:
            print(f"[{self.name}] epoch {epoch}: pruned {k}, sparsity {record['sparsity']:.3f}")


class Lookahead:
    """Bookkeeping of ``Pruner.lookahead``: rounds (deletions) that violate a stop
    criterion are held as pending; :meth:`accept` of a later round that meets the criteria
    keeps them, :meth:`finish` restores the last network that met the criteria."""

    def __init__(self, limit: int):
        self.limit, self.pending = int(limit), []
        self.target = self.reason = self.loss_ref = None
        self.earlier = []

    def violated(self, record, reason, target, earlier=(), loss_ref=None) -> bool:
        """Hold ``record`` (it violates ``reason``); ``target`` restores the last accepted
        network (``earlier``: accepted records it undoes too). True = stop now."""
        if not self.pending:
            self.target, self.reason, self.earlier = target, reason, list(earlier)
            self.loss_ref = loss_ref
        record["violated"] = reason
        self.pending.append(record)
        return len(self.pending) > self.limit

    def accept(self, ctx, record) -> None:
        ctx["records"].extend(self.pending)
        ctx["records"].append(record)
        self.pending, self.earlier = [], []

    def finish(self, ctx) -> bool:
        """Undo the pending rounds; True when there were any (``ctx['stopped']`` set)."""
        if not self.pending:
            return False
        self.target.restore()
        for rec in self.earlier + self.pending:
            rec["undone"] = True
        ctx["records"].extend(self.pending)
        ctx["stopped"] = self.reason
        self.pending, self.earlier = [], []
        return True


def warn_once(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)

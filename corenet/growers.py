"""Growers (plugin family): cascade-correlation (``grower:cascade_correlation``;
spec growing.md; Fahlman & Lebiere 1990).

:class:`CascadeCorrelation` is used in two ways:

* directly, ``CascadeCorrelation(...).fit(X, y) -> model`` runs the whole algorithm of
  growing.md §5 on cached activations (fast path; used by the benchmark) and returns an
  ordinary :class:`~corenet.Sequential` holding one ``cascade`` layer; ``history``
  records every output phase (units, epochs, correlation reached, error after it);
* as a per-run plugin of the trainer (``model.fit(X, y, callbacks=[grower])`` on a
  ``Sequential`` ending in a ``cascade`` layer): the trainer trains the output weights
  with its own loss and optimizer; the grower watches the epoch loss with the patience
  rule, and when it stagnates it answers ``corenet_grow_network`` by training a
  candidate pool on the current residuals and installing the best unit in place (the
  optimizer keeps its state for the old output weights). It answers
  ``corenet_should_stop`` at VICTORY, at ``target_loss`` or when the unit limit is hit.

The module also registers the periodic unit types ``activation:sin`` and
``activation:cos`` (:mod:`corenet.cascor`) used in candidate pools.
"""
from __future__ import annotations

import time

import numpy as np

from . import cascor
from .errors import DTypeError, HyperparameterError, NotFiniteError, ShapeError
from .plugins import hookimpl


#: Named settings for :meth:`CascadeCorrelation.from_preset`: ``"spec"`` is the spec's
#: table (Fahlman & Lebiere's reference settings); ``"fast"`` is the two-spirals benchmark
#: setting (docs/growing.md): a pool of 32 periodic units (sin, cos × steepness 1–4),
#: longer candidate training, error residuals, Fahlman's sigmoid-prime offset 0.1.
PRESETS = {
    "spec": {},
    "fast": {"candidate_activations": ["sin", "cos"],
             "candidate_steepnesses": [1.0, 2.0, 3.0, 4.0], "n_candidates": 32,
             "candidate_patience": 15, "candidate_change_threshold": 0.01,
             "residual": "error", "sigmoid_prime_offset": 0.1, "output_lr": 0.7},
}


class CascadeHistory:
    """One record per output phase: ``hidden_units`` m, ``output_epochs``,
    ``output_status``, ``error`` (E_tot = Σ(ŷ − t)²), ``loss`` (mean loss), ``bit_fail``,
    ``seconds`` (since the start) and, for m ≥ 1, the candidate phase that installed unit
    m: ``candidate_epochs``, ``correlation`` (its score S), ``activation``,
    ``steepness``; ``val_loss`` with validation data. ``status`` is the final outcome
    (``victory``, ``max_units``, ``validation``, ``stopped``, ``interrupted``; inside the
    trainer also ``epochs`` when its epoch budget ran out). Inside the trainer a record is
    written per installed unit (trainer ``epoch``, ``loss_before`` the installation, the
    candidate fields) and ``epochs`` counts trainer plus candidate epochs."""

    def __init__(self):
        self.units: list[dict] = []
        self.status = None
        self.epochs = 0
        self.seconds = 0.0

    def __getitem__(self, key: str) -> list:
        return [u.get(key) for u in self.units]

    def __len__(self) -> int:
        return len(self.units)

    @property
    def hidden_units(self) -> int:
        return self.units[-1]["hidden_units"] if self.units else 0

    def to_dict(self) -> dict:
        return {"status": self.status, "epochs": self.epochs, "seconds": self.seconds,
                "hidden_units": self.hidden_units, "units": [dict(u) for u in self.units]}

    def __repr__(self) -> str:
        return (f"CascadeHistory(status={self.status!r}, hidden_units={self.hidden_units}, "
                f"epochs={self.epochs})")


def _int(value, name, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        hint = " (every phase needs an epoch limit: the patience test alone may never stop " \
               "it)" if name.startswith("max_") and name.endswith("epochs") else ""
        raise HyperparameterError(f"grower 'cascade_correlation': {name} must be an integer "
                                  f">= {low}, got {value!r}{hint}")
    return int(value)


def _num(value, name, low=0.0, low_open=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not np.isfinite(v) or v < low or (low_open and v == low):
        raise HyperparameterError(f"grower 'cascade_correlation': {name} must be a number "
                                  f"{'>' if low_open else '>='} {low}, got {value!r}")
    return v


class CascadeCorrelation:
    """Cascade-correlation (growing.md §3–§5). Defaults are the spec's table (§5).

    Output phase: ``output_activation`` g (``sigmoid_symmetric`` for ±0.5 targets,
    ``identity`` for regression, ``sigmoid``, ``tanh``, ``softmax``), ``loss`` (None =
    ``sse(half=True)``), ``output_optimizer`` (``"quickprop"`` with ``output_lr``,
    ``output_mu``, ``output_decay``; ``"least_squares"`` with ridge ``output_l2`` for
    identity outputs; any registered optimizer), ``output_patience``,
    ``output_change_threshold``, ``max_output_epochs``, ``sigmoid_prime_offset``.
    Candidate phase: ``n_candidates`` units typed round-robin over
    ``candidate_activations × candidate_steepnesses``, weights 𝒰(±weight_range),
    Quickprop on −S (``candidate_lr``/(N·n_in), ``candidate_mu``, ``candidate_decay``) or
    ``candidate_optimizer`` (a registered name), ``candidate_patience``,
    ``candidate_change_threshold``, ``max_candidate_epochs``, ``residual``
    (``"delta"``/``"error"``), ``normalize``, ``lagged_sign``. Installation: new output
    weights ``−weight_multiplier·C_k/Z`` (D-62) or zeros (``new_output_weight_init``).
    Stops at VICTORY (every |ŷ − t| ≤ ``score_threshold``, or mean loss ≤
    ``target_loss``), at ``max_hidden_units``, by ``validation_patience`` or when the
    ``callback`` of :meth:`fit` returns True. ``random_state`` makes a run repeatable.
    """

    name = "cascade_correlation"

    def __init__(self, max_hidden_units=100, n_candidates=8,
                 candidate_activations=("sigmoid_symmetric",), candidate_steepnesses=(1.0,),
                 output_activation="sigmoid_symmetric", loss=None, weight_range=1.0,
                 output_optimizer="quickprop", output_lr=0.35, output_mu=2.0,
                 output_decay=1e-4, output_l2=0.0, output_patience=8,
                 output_change_threshold=0.01, max_output_epochs=500,
                 candidate_optimizer="quickprop", candidate_lr=1.0, candidate_mu=2.0,
                 candidate_decay=0.0, candidate_patience=8, candidate_change_threshold=0.03,
                 max_candidate_epochs=500, score_threshold=0.35, target_loss=None,
                 residual="delta", normalize=True, lagged_sign=False,
                 sigmoid_prime_offset=0.0, weight_multiplier=1.0,
                 new_output_weight_init="correlation", validation_patience=None,
                 random_state=None, dtype="float64", verbose=False):
        self.max_hidden_units = _int(max_hidden_units, "max_hidden_units", 0)
        self.n_candidates = _int(n_candidates, "n_candidates (the pool size)", 1)
        if isinstance(candidate_activations, str):
            candidate_activations = [candidate_activations]
        self.candidate_activations = [str(a) for a in candidate_activations]
        self.candidate_steepnesses = [_num(b, "candidate_steepnesses", 0.0, True)
                                      for b in candidate_steepnesses]
        if not self.candidate_activations or not self.candidate_steepnesses:
            raise HyperparameterError("grower 'cascade_correlation': candidate_activations "
                                      "and candidate_steepnesses must not be empty")
        for a in self.candidate_activations:
            cascor.unit_functions(a)
        self.output_activation = output_activation
        self.loss = loss
        self.weight_range = _num(weight_range, "weight_range")
        self.output_optimizer = output_optimizer
        self.output_lr, self.output_mu = _num(output_lr, "output_lr"), \
            _num(output_mu, "output_mu", 0.0, True)
        self.output_decay, self.output_l2 = _num(output_decay, "output_decay"), \
            _num(output_l2, "output_l2")
        self.output_patience = _int(output_patience, "output_patience", 0)
        self.output_change_threshold = _num(output_change_threshold,
                                            "output_change_threshold")
        self.max_output_epochs = _int(max_output_epochs, "max_output_epochs", 1)
        self.candidate_optimizer = candidate_optimizer
        self.candidate_lr = _num(candidate_lr, "candidate_lr", 0.0, True)
        self.candidate_mu = _num(candidate_mu, "candidate_mu", 0.0, True)
        self.candidate_decay = _num(candidate_decay, "candidate_decay")
        self.candidate_patience = _int(candidate_patience, "candidate_patience", 0)
        self.candidate_change_threshold = _num(candidate_change_threshold,
                                               "candidate_change_threshold")
        self.max_candidate_epochs = _int(max_candidate_epochs, "max_candidate_epochs", 1)
        self.score_threshold = None if score_threshold is None else \
            _num(score_threshold, "score_threshold")
        self.target_loss = None if target_loss is None else _num(target_loss, "target_loss")
        if residual not in ("delta", "error"):
            raise HyperparameterError(f"grower 'cascade_correlation': residual must be "
                                      f"'delta' or 'error', got {residual!r}")
        self.residual = residual
        self.normalize, self.lagged_sign = bool(normalize), bool(lagged_sign)
        self.sigmoid_prime_offset = _num(sigmoid_prime_offset, "sigmoid_prime_offset")
        self.weight_multiplier = _num(weight_multiplier, "weight_multiplier")
        if new_output_weight_init not in ("correlation", "zeros"):
            raise HyperparameterError(f"grower 'cascade_correlation': new_output_weight_init "
                                      f"must be 'correlation' or 'zeros', got "
                                      f"{new_output_weight_init!r}")
        self.new_output_weight_init = new_output_weight_init
        self.validation_patience = None if validation_patience is None else \
            _int(validation_patience, "validation_patience", 1)
        self.random_state = random_state
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise DTypeError(f"grower 'cascade_correlation': dtype must be float32 or "
                             f"float64, got {dtype!r}")
        self.verbose = bool(verbose)
        self._output_phase()          # validates the output settings early
        self.history = CascadeHistory()
        self.model_ = None

    @classmethod
    def from_preset(cls, preset: str = "spec", **overrides) -> "CascadeCorrelation":
        """A grower with the settings of :data:`PRESETS` ``[preset]`` updated by
        ``overrides``."""
        if preset not in PRESETS:
            raise HyperparameterError(f"grower 'cascade_correlation': unknown preset "
                                      f"{preset!r}; presets are {sorted(PRESETS)}")
        return cls(**{**PRESETS[preset], **overrides})

    @classmethod
    def examples(cls):
        return [{"n_candidates": 4, "max_hidden_units": 3, "random_state": 0},
                {"output_activation": "identity", "output_optimizer": "least_squares",
                 "candidate_activations": ["tanh", "gaussian"], "random_state": 1}]

    # ------------------------------------------------------------------ pieces
    def _output_phase(self, loss=None, activation=None):
        return cascor.OutputPhase(
            activation or self.output_activation, loss if loss is not None else self.loss,
            self.output_optimizer, self.output_lr, self.output_mu, self.output_decay,
            self.output_l2, self.sigmoid_prime_offset, self.score_threshold,
            self.target_loss, self.output_patience, self.output_change_threshold,
            self.max_output_epochs)

    def _output_patience(self):
        return cascor.Patience(self.output_patience, self.output_change_threshold,
                               self.output_patience)

    def _candidates(self, A, E, rng) -> dict:
        from . import registry

        opt = None if self.candidate_optimizer == "quickprop" else \
            registry.create("optimizer", self.candidate_optimizer)
        kinds = cascor.pool_kinds(self.n_candidates, self.candidate_activations,
                                  self.candidate_steepnesses)
        return cascor.train_candidates(
            A, E, rng, kinds=kinds, weight_range=self.weight_range, lr=self.candidate_lr,
            mu=self.candidate_mu, decay=self.candidate_decay,
            patience=self.candidate_patience,
            change_threshold=self.candidate_change_threshold,
            max_epochs=self.max_candidate_epochs, normalize=self.normalize,
            lagged_sign=self.lagged_sign, optimizer=opt)

    def _new_output_weights(self, cand) -> np.ndarray:
        if self.new_output_weight_init == "zeros" or cand["Z"] == 0:
            return np.zeros_like(cand["C"])
        return -self.weight_multiplier * cand["C"] / cand["Z"]

    def _check_data(self, X, y, what="fit", n_classes=None):
        comp = f"CascadeCorrelation.{what}"
        if not isinstance(X, np.ndarray) or X.dtype.kind != "f":
            raise DTypeError(f"{comp}: X must be a float ndarray, got "
                             f"{getattr(X, 'dtype', type(X).__name__)}")
        if X.ndim != 2 or X.shape[0] == 0:
            raise ShapeError(f"{comp}: X must have shape (N, D) with N >= 1, got {X.shape}")
        if not np.isfinite(X).all():
            raise NotFiniteError(f"{comp}: X contains NaN or inf")
        y = np.asarray(y)
        if y.dtype.kind not in "fiub":
            raise DTypeError(f"{comp}: y must be numeric, got dtype {y.dtype}")
        if self.output_activation == "softmax" and y.ndim == 1 and y.dtype.kind in "iub":
            if y.size and (y.min() < 0):
                raise ValueError(f"{comp}: class labels must be >= 0")
            k = n_classes or (int(y.max()) + 1 if y.size else 1)
            if y.size and y.max() >= k:
                raise ValueError(f"{comp}: class labels must be < {k}, got {int(y.max())}")
            y = np.eye(k)[y]
        if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
            raise ShapeError(f"{comp}: y must have shape ({X.shape[0]},) or ({X.shape[0]}, K) "
                             f"to match X {X.shape}, got {y.shape}")
        T = y.reshape(X.shape[0], -1).astype(self.dtype)
        if T.shape[1] == 0:
            raise ShapeError(f"{comp}: y must have at least one target column, got shape "
                             f"{y.shape}")
        if not np.isfinite(T).all():
            raise NotFiniteError(f"{comp}: y contains NaN or inf")
        return np.ascontiguousarray(X, dtype=self.dtype), T

    # ------------------------------------------------------------------ direct API
    def fit(self, X, y, validation_data=None, callback=None):
        """Grow a network on ``(X, y)``; returns a ``Sequential`` with one ``cascade``
        layer (also in ``self.model_``); ``self.history`` records the run.

        ``X`` (N, D) floats; ``y`` (N,) or (N, K) targets in the output activation's
        range (integer labels (N,) with ``softmax``). ``validation_data=(Xv, yv)``
        tracks the validation loss after each output phase (``validation_patience``).
        ``callback(record) -> bool`` is called after each output phase; True stops.
        """
        t0 = time.perf_counter()
        X, T = self._check_data(X, y)
        val = None
        if validation_data is not None:
            val = self._check_data(*validation_data, what="fit validation_data",
                                   n_classes=T.shape[1])
            if val[0].shape[1] != X.shape[1] or val[1].shape[1] != T.shape[1]:
                raise ShapeError(f"CascadeCorrelation.fit: validation data has shapes "
                                 f"{val[0].shape}, {val[1].shape}; expected (Nv, "
                                 f"{X.shape[1]}), (Nv, {T.shape[1]})")
        rng = np.random.default_rng(self.random_state)
        N, D = X.shape
        K = T.shape[1]
        phi = _Columns(X, self.max_hidden_units)
        phi_v = _Columns(val[0], self.max_hidden_units) if val else None
        out = self._output_phase()
        out.init(rng.uniform(-self.weight_range, self.weight_range, (K, 1 + D))
                 .astype(self.dtype))
        hidden, hist, pending = [], CascadeHistory(), {}
        best = None
        self.history = hist
        try:
            while True:
                A = phi.view()
                res = out.train(A, T)
                hist.epochs += res["epochs"]
                rec = {"hidden_units": len(hidden), "output_epochs": res["epochs"],
                       "output_status": res["status"], **out.evaluate(A, T), **pending}
                if val is not None:
                    Zv, Yv = out.forward(phi_v.view())
                    rec["val_loss"] = out.mean_loss(Zv, Yv, val[1])
                    if best is None or rec["val_loss"] < best[0]:
                        best = (rec["val_loss"], len(hidden), out.U.copy())
                rec["seconds"] = time.perf_counter() - t0
                hist.units.append(rec)
                if self.verbose:
                    print(_describe(rec))
                if callback is not None and callback(dict(rec)) is True:
                    hist.status = "stopped"
                    break
                if res["status"] == "victory":
                    hist.status = "victory"
                    break
                if len(hidden) >= self.max_hidden_units:
                    hist.status = "max_units"
                    break
                if val is not None and self.validation_patience is not None and \
                        len(hidden) - best[1] >= self.validation_patience:
                    hist.status = "validation"
                    break
                E = out.residuals(A, T, self.residual)
                cand = self._candidates(A, E, rng)
                hist.epochs += cand["epochs"]
                hidden.append((cand["weights"], cand["kind"]))
                phi.append(cand["values"])
                if phi_v is not None:
                    phi_v.append_unit(cand["weights"], cand["kind"])
                out.grow(self._new_output_weights(cand))
                pending = {"candidate_epochs": cand["epochs"], "correlation": cand["score"],
                           "activation": cand["kind"][0], "steepness": cand["kind"][1]}
        except KeyboardInterrupt:
            hist.status = "interrupted"
        U = out.U
        hidden = hidden[:U.shape[1] - 1 - D]          # consistent even after an interrupt
        if val is not None and self.validation_patience is not None and best is not None:
            _, m, U = best
            hidden = hidden[:m]
        hist.seconds = time.perf_counter() - t0
        self.model_ = self.build_model(D, hidden, U, K)
        return self.model_

    def build_model(self, n_inputs, hidden, output_weights, n_outputs=None):
        """A ``Sequential([cascade])`` with the given hidden units ``[(weights, (activation,
        steepness)), ...]`` and output weights (K × (1+D+m))."""
        from .layers.cascade import Cascade
        from .model import Sequential

        U = np.atleast_2d(np.asarray(output_weights))
        layer = Cascade(outputs=n_outputs or U.shape[0],
                        output_activation=self.output_activation,
                        hidden_units=[{"activation": a, "steepness": b}
                                      for _, (a, b) in hidden],
                        weight_range=self.weight_range)
        model = Sequential([layer], dtype=self.dtype, random_state=self.random_state,
                           input_shape=(n_inputs,))
        for p, (w, _) in zip(layer.hidden_parameters(), hidden):
            p.data[...] = w
        layer.set_output_weights(U)
        return model

    # ------------------------------------------------------------------ trainer plugin
    @hookimpl
    def corenet_on_train_begin(self, trainer):
        # without a random_state of its own the grower draws from the model's generator,
        # so a run is repeatable under the model's random_state (README §4)
        self._rng = np.random.default_rng(self.random_state) if self.random_state is not None \
            else trainer.model.rng.spawn(1)[0]
        self._stop = self._output_patience()
        self._phase_epoch, self._stagnant, self._victory = 0, False, False
        self.history = CascadeHistory()
        self._t0 = time.perf_counter()

    @hookimpl
    def corenet_on_epoch_begin(self, trainer, epoch):
        self._batches = []

    @hookimpl
    def corenet_on_batch_begin(self, trainer, batch, X, y):
        self._batches.append((X, y))

    def _trainer_state(self, trainer):
        model = trainer.model
        layer = model.layers[-1] if hasattr(model, "layers") and model.layers else None
        from .layers.cascade import Cascade

        if not isinstance(layer, Cascade):
            raise TypeError("grower 'cascade_correlation': the model must be a Sequential "
                            "whose last layer is a 'cascade' layer")
        X = np.concatenate([b[0] for b in self._batches])
        y = np.concatenate([np.asarray(b[1]) for b in self._batches])
        was = model.training
        model.eval()
        try:
            for lay in model.layers[:-1]:
                X = lay.forward(X)
            A = layer.hidden_activations(X)
        finally:
            model.train(was)
        out = self._output_phase(loss=trainer.loss, activation=layer.output_activation)
        out.U = layer.output_weights()
        Z, Y = out.forward(A)
        T = trainer.loss.prepare_targets(Y, y) if trainer.loss is not None else y
        if T.shape != Y.shape and T.ndim == 1 and T.dtype.kind in "iu":
            T = np.eye(Y.shape[1], dtype=Y.dtype)[T]
        return layer, A, out, T.astype(Y.dtype, copy=False)

    @hookimpl
    def corenet_on_epoch_end(self, trainer, epoch, logs):
        if self.score_threshold is not None and self._batches:
            layer, A, out, T = self._trainer_state(trainer)
            Z, Y = out.forward(A)
            self._victory = float(np.abs(Y - T).max()) <= self.score_threshold
        if self.target_loss is not None and logs.get("loss", np.inf) <= self.target_loss:
            self._victory = True
        self._stagnant = self._stop.update(float(logs["loss"]), self._phase_epoch)
        self._phase_epoch += 1
        self._last_loss = float(logs["loss"])

    @hookimpl
    def corenet_on_train_end(self, trainer, history):
        hist = self.history
        hist.epochs = len(history) + sum(u.get("candidate_epochs", 0) for u in hist.units)
        hist.seconds = time.perf_counter() - self._t0
        if hist.status is None:
            hist.status = "epochs"

    @hookimpl
    def corenet_should_stop(self, trainer, epoch, logs):
        if self._victory:
            self.history.status = "victory"
            return True
        layer = trainer.model.layers[-1]
        if self._stagnant and getattr(layer, "n_hidden", 0) >= self.max_hidden_units:
            self.history.status = "max_units"
            return True
        return None

    @hookimpl
    def corenet_grow_network(self, trainer, model):
        if not self._stagnant or not self._batches:
            return None
        self._stagnant, self._phase_epoch = False, 0
        self._stop = self._output_patience()
        layer, A, out, T = self._trainer_state(trainer)
        E = out.residuals(A, T, self.residual)
        cand = self._candidates(A, E, self._rng)
        n_old = A.shape[1]
        outs = layer.add_unit(cand["weights"], cand["kind"][0], cand["kind"][1],
                              self._new_output_weights(cand))
        opt = trainer.optimizer
        for q in outs:
            if q in getattr(opt, "state", {}):
                opt.state_resize(q, q.shape, (slice(0, n_old),))
        self.history.units.append({"hidden_units": layer.n_hidden, "epoch": trainer.epoch,
                                   "loss_before": self._last_loss,
                                   "candidate_epochs": cand["epochs"],
                                   "correlation": cand["score"],
                                   "activation": cand["kind"][0],
                                   "steepness": cand["kind"][1],
                                   "seconds": time.perf_counter() - self._t0})
        return model


class _Columns:
    """A growable column cache Φ = [1, X, h_1 …] (N × (1+D+m)); amortised appends."""

    def __init__(self, X, max_units):
        N, D = X.shape
        self.n = 1 + D
        self.data = np.empty((N, self.n + min(int(max_units), 16)), dtype=X.dtype)
        self.data[:, 0] = 1.0
        self.data[:, 1:self.n] = X

    def view(self):
        return self.data[:, :self.n]

    def append(self, column):
        if self.n == self.data.shape[1]:
            grown = np.empty((self.data.shape[0], 2 * self.n), dtype=self.data.dtype)
            grown[:, :self.n] = self.data[:, :self.n]
            self.data = grown
        self.data[:, self.n] = column
        self.n += 1

    def append_unit(self, weights, kind):
        f = cascor.unit_functions(kind[0])[0]
        s = self.view() @ weights
        self.append(f(kind[1] * s if kind[1] != 1.0 else s))


def _describe(rec) -> str:
    extra = ""
    if rec["hidden_units"]:
        extra = (f" | unit {rec['hidden_units']}: {rec['activation']}(β={rec['steepness']}) "
                 f"S={rec['correlation']:.4f} in {rec['candidate_epochs']} epochs")
    return (f"cascade-correlation: {rec['hidden_units']} hidden, error {rec['error']:.4f}, "
            f"bit_fail {rec['bit_fail']}, {rec['output_epochs']} output epochs "
            f"({rec['output_status']}){extra}")


@hookimpl
def corenet_register_growers():
    return [CascadeCorrelation]


@hookimpl
def corenet_register_activations():
    return [cascor.Sine, cascor.Cosine]

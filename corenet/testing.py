"""Contract-testing kit for corenet components and plugins (spec README §3.1, §9, §11,
pruning.md §1).

Checks (each raises ``AssertionError`` naming the component and the failed check):

* :func:`check_gradients` – the model-level gradient check of README §11;
* :func:`check_layer`, :func:`check_activation`, :func:`check_loss`,
  :func:`check_optimizer`, :func:`check_regularizer` – the minimum contracts of README §9;
* :func:`check_component` / :func:`check_registered` run the right check on every example
  case of a class; :func:`parametrize_registered` lists registered names as pytest params.

A plugin's whole contract suite is then::

    import pytest, corenet.testing as ct

    @pytest.mark.parametrize("name", ct.parametrize_registered("layer"))
    def test_layer_contract(name):
        ct.check_registered("layer", name)

**Making a component testable: the ``examples()`` convention.** A class may define a
classmethod ``examples()`` returning a list of example cases; :func:`examples` uses it,
otherwise a generic default:

* layers: dicts ``{"config": {...}, "input_shape": (5,)}`` (a list of per-sample shapes
  for multi-input layers); ``cls.from_config(config)`` builds the layer. ``(config,
  input_shape)`` pairs and bare config dicts (input ``(5,)``) are accepted too.
  Default: ``{"config": {}, "input_shape": (5,)}`` (two ``(5,)`` inputs for merges).
* losses: dicts ``{"config": {...}, "y_pred_shape": (N, K), "targets": kind,
  "y_pred": kind}``; target kinds ``"real"``, ``"labels"``, ``"probabilities"``,
  ``"onehot"``, ``"pm_one"``, ``"binary"``, ``"unit"`` or a callable ``(rng, shape) -> y``;
  prediction kinds ``"real"`` (default), ``"unit"`` (in [0.05, 0.95]), ``"probabilities"``,
  ``"log_probabilities"`` or a callable; ``"axis"`` is the class axis used to build
  labels (default ``config["axis"]`` or -1). Default: the default constructor, ``(4, 3)``
  real predictions and the first target kind of ``"real"``, ``"probabilities"``,
  ``"labels"``, ``"pm_one"``, ``"binary"`` that ``prepare_targets`` accepts.
* optimizers, activations, regularizers: a list of constructor-argument dicts
  (default ``[{}]``).

Every example dict may carry ``"skip_checks": [...]`` naming checks that do not apply to
it: :data:`LAYER_CHECKS`, :data:`LOSS_CHECKS`, :data:`OPTIMIZER_CHECKS`.

Other conventions the checks read: non-smooth activations declare ``kinks`` (x positions;
default ``(0.0,)`` for every activation not known to be smooth); gradient checks skip the
entries whose perturbation brings an activation input within 10·eps of a kink, and other
non-smooth points are recognised by one-sided differences that disagree. Optimizers with
``uses_loss`` get ``step(loss=...)``; data solvers (``needs_data``) only get the
construction checks. A loss with ``fused_activation`` is compared with its unfused form
(``from_probs=True`` when its config has that key) applied after the activation.
Gradient entries differing by less than ``atol`` count as exact; the default is the
round-off floor ``1e-9·max(1, |R|)·(1e-6/eps)`` of a central difference of an objective R
(the relative error of README §3.1 alone fails on entries far smaller than R).
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field

import numpy as np

from . import registry
from .activation import Activation
from .errors import CorenetError, DTypeError, HyperparameterError, PluginError, ShapeError
from .layer import Layer
from .loss import Loss
from .optimizer import Optimizer
from .parameter import Parameter
from .regularizer import Regularizer

EPS = 1e-6                      # central-difference step (README §3.1)
TOL = 1e-6                      # max relative error of a gradient check (README §3.1)
RTOL32, ATOL32 = 1e-5, 1e-6     # float32 tolerances (README §3.1)
SMOOTH_ACTIVATIONS = frozenset({"identity", "sigmoid", "sigmoid_symmetric", "tanh",
                                "scaled_tanh", "arctan", "softplus", "erf", "gaussian", "gelu",
                                "silu", "sin", "cos"})
LAYER_CHECKS = ("forward", "backward", "accumulate", "gradients", "float32", "config",
                "errors", "mode", "mask", "batch1")
LOSS_CHECKS = ("gradient", "reductions", "weights", "float32", "fused", "hessian", "config",
               "errors")
OPTIMIZER_CHECKS = ("decrease", "resume", "groups", "mask", "frozen", "zero_grad", "lr",
                    "float32")


# ============================================================================ assertions
def _expect(ok, who, check, msg):
    if not ok:
        raise AssertionError(f"{who}: {check}: {msg}")


class _Section:
    """Context: an unexpected exception inside a check becomes an AssertionError."""

    def __init__(self, who, check):
        self.who, self.check = who, check

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is not None and not isinstance(exc, AssertionError):
            raise AssertionError(f"{self.who}: {self.check}: raised {kind.__name__}: "
                                 f"{exc}") from exc
        return False


def _raises(who, check, expected, fn, what):
    """``fn()`` must raise one of ``expected``; any other exception is a crash."""
    names = " or ".join(c.__name__ for c in (expected if isinstance(expected, tuple)
                                             else (expected,)))
    try:
        fn()
    except expected:
        return
    except Exception as e:  # noqa: BLE001 - reported as a contract failure
        _expect(False, who, check, f"{what} raised {type(e).__name__}: {e} (expected {names})")
    _expect(False, who, check, f"{what} did not raise {names}")


def _close(who, check, a, b, rtol, atol, what):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    _expect(a.shape == b.shape, who, check, f"{what}: shapes differ, {a.shape} vs {b.shape}")
    bad = ~np.isclose(a, b, rtol=rtol, atol=atol)
    if bad.any():
        i = np.unravel_index(np.argmax(bad), bad.shape) if bad.ndim else ()
        _expect(False, who, check, f"{what}: {int(bad.sum())} of {bad.size} entries differ "
                                   f"(rtol={rtol}, atol={atol}); e.g. at "
                                   f"{tuple(map(int, i))}: {a[i]!r} vs {b[i]!r}")


def _json(who, cfg):
    try:
        return json.loads(json.dumps(cfg))
    except (TypeError, ValueError) as e:
        raise AssertionError(f"{who}: config: get_config() is not JSON-serialisable ({e}): "
                             f"{cfg!r}") from None


def _dtype_ok(arrays, dtype):
    return all(np.asarray(a).dtype == dtype for a in arrays)


# ============================================================================ finite differences
def rel_error(a, n):
    """README §3.1: ``|a − n| / max(1e-8, |a| + |n|)``, element-wise."""
    a, n = np.asarray(a, dtype=np.float64), np.asarray(n, dtype=np.float64)
    return np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n))


def numerical_gradient(f, x, eps=EPS, indices=None):
    """Central differences ``(f(x + ε e_i) − f(x − ε e_i)) / 2ε`` of the scalar ``f(x)``.

    ``x`` (a float ndarray) is perturbed in place, one entry at a time, and restored
    exactly; ``indices`` limits the entries (flat indices; the others stay 0). Returns a
    float64 array of ``x``'s shape.
    """
    g = np.zeros(x.shape, dtype=np.float64)
    flat = x.reshape(-1)
    for i in (range(x.size) if indices is None else indices):
        orig = flat[i]
        flat[i] = orig + eps
        fp = float(np.sum(f(x)))
        flat[i] = orig - eps
        fm = float(np.sum(f(x)))
        flat[i] = orig
        g.flat[i] = (fp - fm) / (2 * eps)
    return g


def activation_kinks(act) -> tuple:
    """Kink positions of an activation: its ``kinks`` attribute, ``()`` for the known
    smooth ones, else ``(0.0,)`` (D-04: piecewise activations switch at 0)."""
    kinks = getattr(act, "kinks", None)
    if kinks is not None:
        return tuple(float(k) for k in kinks)
    return () if getattr(act, "name", "") in SMOOTH_ACTIVATIONS else (0.0,)


class _KinkProbe:
    """While active, records the inputs of every non-smooth Activation held by the given
    layers (or their sub-layers), to tell which perturbations touch or cross a kink."""

    def __init__(self, layers):
        self.acts, self.records, seen = [], [], set()

        def visit(obj, depth):
            if id(obj) in seen or depth > 3:
                return
            seen.add(id(obj))
            if isinstance(obj, Activation):
                self.acts += [obj] if activation_kinks(obj) else []
            elif isinstance(obj, (list, tuple)):
                for o in obj:
                    visit(o, depth + 1)
            elif isinstance(obj, Layer):
                for v in vars(obj).values():
                    if isinstance(v, (Activation, Layer, list, tuple)):
                        visit(v, depth + 1)

        for layer in layers:
            visit(layer, 0)

    def __enter__(self):
        for act in self.acts:
            for meth in ("forward", "forward_with"):
                if getattr(act, meth, None) is not None:
                    setattr(act, meth, self._wrap(act, getattr(act, meth)))
        return self

    def _wrap(self, act, orig):
        def wrapped(x, *args, **kwargs):
            self.records.append((act, np.array(x, dtype=np.float64)))
            return orig(x, *args, **kwargs)
        return wrapped

    def __exit__(self, *exc):
        for act in self.acts:
            act.__dict__.pop("forward", None)
            act.__dict__.pop("forward_with", None)
        return False

    def take(self):
        out, self.records = self.records, []
        return out

    @staticmethod
    def near_kink(base, plus, minus, eps):
        """Name of an activation whose input, changed by the perturbation, is within
        10·eps of a kink or crosses it; None otherwise."""
        if not len(base) == len(plus) == len(minus):
            return None
        for (act, xb), (_, xp), (_, xm) in zip(base, plus, minus):
            if not xb.shape == xp.shape == xm.shape or not (changed := xp != xm).any():
                continue
            for k in activation_kinks(act):
                d = np.minimum(np.minimum(np.abs(xb - k), np.abs(xp - k)), np.abs(xm - k))
                if ((d < 10 * eps) | ((xp - k) * (xm - k) <= 0))[changed].any():
                    return act.name
        return None


@dataclass
class GradientCheckResult:
    """Outcome of a gradient check: the maximum relative error over the checked entries
    (README §3.1), the maximum per array, the skipped entries ``(array, index, reason)``
    and the worst entry ``(array, index, analytic, numerical)``."""

    max_rel_error: float = 0.0
    errors: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    n_checked: int = 0
    worst: tuple = ()

    def __float__(self):
        return float(self.max_rel_error)

    def assert_ok(self, tol=TOL, who="check_gradients"):
        if self.max_rel_error > tol:
            name, idx, a, n = self.worst
            per = ", ".join(f"{k}: {v:.3g}" for k, v in self.errors.items())
            _expect(False, who, "gradients", f"max relative error {self.max_rel_error:.3g} > "
                                             f"{tol:g} at {name}{list(idx)}: analytic {a!r}, "
                                             f"numerical {n!r} (per array: {per})")
        return self


def _grad_check(run, arrays, probe, eps, tol, atol, rng, max_entries):
    """Compare analytic gradients with central differences of the scalar ``run()``;
    ``arrays``: ``(name, array perturbed in place, analytic gradient, mask or None)``."""
    res = GradientCheckResult()
    with probe:
        base = run()
        rec0 = probe.take()
        atol = 1e-9 * max(1.0, abs(base)) * (EPS / eps) if atol is None else atol
        for name, arr, ga, mask in arrays:
            ga, flat, worst = np.asarray(ga, dtype=np.float64), arr.reshape(-1), 0.0
            idx = np.arange(arr.size)
            if max_entries is not None and arr.size > max_entries:
                idx = np.sort(rng.choice(arr.size, max_entries, replace=False))
            for i in idx:
                where = tuple(int(j) for j in np.unravel_index(i, arr.shape))
                if mask is not None and mask.flat[i] == 0:
                    res.skipped.append((name, where, "masked"))
                    continue
                orig = flat[i]
                flat[i] = orig + eps
                fp, recp = run(), probe.take()
                flat[i] = orig - eps
                fm, recm = run(), probe.take()
                flat[i] = orig
                kink = probe.near_kink(rec0, recp, recm, eps)
                if kink is not None:
                    res.skipped.append((name, where, f"within 10·eps of a kink of {kink}"))
                    continue
                a, n = float(ga.flat[i]), (fp - fm) / (2 * eps)
                err = float(rel_error(a, n)) if abs(a - n) > atol else 0.0
                dp, dm = (fp - base) / eps, (base - fm) / eps
                if err > tol and abs(dp - dm) > 1e-3 * max(abs(dp), abs(dm)) + 1e-6:
                    res.skipped.append((name, where, "non-smooth point (one-sided "
                                                     "differences disagree)"))
                    continue
                res.n_checked += 1
                worst = max(worst, err)
                if err >= res.max_rel_error:
                    res.max_rel_error, res.worst = err, (name, where, a, n)
            res.errors[name] = max(worst, res.errors.get(name, 0.0))
    return res


def _float64_clone(model):
    cfg = model.get_config()
    cfg["dtype"] = "float64"
    clone = type(model).from_config(cfg)
    if not clone.built:
        clone.build(model.input_shape)
    for src, dst in zip(model.layers_in_order(), clone.layers_in_order()):
        for p, q in zip(src.parameters(), dst.parameters()):
            q.data[...] = p.data
            q.mask, q.trainable = (p._mask if p.masked else None), p.trainable
        if src.buffers():
            dst.load_buffers({k: v.astype(np.float64) for k, v in src.buffers().items()})
    return clone


def check_gradients(model, loss, X, y, eps=EPS, params=None, random_state=0, *,
                    sample_weight=None, regularizers=(), tol=TOL, atol=None,
                    max_entries=None, check_input=True) -> GradientCheckResult:
    """Gradient check of README §11 for a model (built on ``X`` if needed).

    Compares the analytic gradient of ``R = L(model(X), y) + Σ penalties`` (through the
    fused pre-activation path when the loss pairs with the model's output activation, as
    the trainer does) w.r.t. every trainable parameter (or those in ``params``: Parameters
    or names) and w.r.t. the input(s) ``X`` with central differences, in float64 (a float32
    model is checked on a float64 copy) and in ``eval`` mode. Masked weights, entries
    whose perturbation brings an activation input within ``10·eps`` of a kink and points
    where one-sided differences disagree are skipped and listed in ``result.skipped``.
    ``max_entries`` checks a random subset (``random_state``) of larger arrays; see the
    module docstring for ``atol``. Returns a :class:`GradientCheckResult`
    (``float(result)`` is the maximum relative error; ``result.assert_ok(tol)``).
    """
    loss = registry.create("loss", loss)
    multi = isinstance(X, (list, tuple))
    xs = [np.array(a, dtype=np.float64) for a in (X if multi else [X])]
    if not model.built:
        model.build([a.shape[1:] for a in xs] if multi else xs[0].shape[1:])
    work = model if model.dtype == np.float64 else _float64_clone(model)
    regs = [registry.create("regularizer", r) for r in regularizers]
    fuse = loss.fused_activation is not None and loss.fused_activation == work.output_activation
    arg, was_training = (xs if multi else xs[0]), work.training
    work.eval()

    def value_and_grad():
        out = work.forward(arg, logits=fuse)
        return (loss.fused_value_and_grad if fuse else loss.value_and_grad)(out, y,
                                                                            sample_weight)

    def objective():
        return float(np.sum(value_and_grad()[0])) + sum(r.penalty(work.parameters())
                                                        for r in regs)
    try:
        work.zero_grad()
        dx = work.backward(value_and_grad()[1], logits=fuse)
        for r in regs:
            r.add_grad(work.parameters())
        wanted = None if params is None else {p if isinstance(p, str) else p.name
                                              for p in params}
        arrays = [(p.name, p.data, p.grad.copy(), p._mask if p.masked else None)
                  for p in work.trainable_parameters() if wanted is None or p.name in wanted]
        if check_input:
            arrays += [(f"input{i}" if multi else "input", a, np.array(d), None)
                       for i, (a, d) in enumerate(zip(xs, dx if multi else [dx]))
                       if d is not None]
        return _grad_check(objective, arrays, _KinkProbe(work.layers_in_order()), eps, tol,
                           atol, np.random.default_rng(random_state), max_entries)
    finally:
        work.train(was_training)


# ============================================================================ examples
def _category_of(cls) -> str:
    for base, cat in ((Layer, "layer"), (Loss, "loss"), (Optimizer, "optimizer"),
                      (Activation, "activation"), (Regularizer, "regularizer")):
        if isinstance(cls, type) and issubclass(cls, base):
            return cat
    raise TypeError(f"corenet.testing: cannot tell the category of {cls!r}")


def _shape(s):
    if s and isinstance(s[0], (list, tuple)):
        return [tuple(int(v) for v in t) for t in s]
    return tuple(int(v) for v in s)


def examples(cls, category=None) -> list:
    """Example cases of a component class: ``cls.examples()`` if it defines it, else the
    generic default of its category (module docstring). Returns fresh copies."""
    category = category or _category_of(cls)
    fn = getattr(cls, "examples", None)
    shape = None
    if category == "layer":
        shape = (5,) if cls.n_inputs == 1 else [(5,)] * (cls.n_inputs or 2)
    if callable(fn):
        cases = list(fn())
        if not cases:
            raise AssertionError(f"{cls.__name__}.examples() returned no example")
        if category == "layer":
            cases = [{"config": c[0], "input_shape": c[1]} if isinstance(c, (tuple, list))
                     else c if "config" in c else {"config": c, "input_shape": shape}
                     for c in cases]
    elif category == "layer":
        cases = [{"config": {}, "input_shape": shape, "default": True}]
    elif category == "loss":
        cases = [{"config": {}, "y_pred_shape": (4, 3), "targets": None}]
    else:
        cases = [{}]
    return copy.deepcopy(cases)


def make_predictions(kind, shape, rng, axis=-1):
    """Predictions of a loss example (kinds in the module docstring)."""
    if callable(kind):
        return np.ascontiguousarray(kind(rng, shape), dtype=np.float64)
    if kind == "unit":
        return rng.uniform(0.05, 0.95, shape)
    z = rng.standard_normal(shape)
    if kind == "real":
        return z
    q = z - z.max(axis=axis, keepdims=True)
    q -= np.log(np.exp(q).sum(axis=axis, keepdims=True))
    if kind in ("log_probabilities", "probabilities"):
        return q if kind == "log_probabilities" else np.exp(q)
    raise ValueError(f"corenet.testing: unknown prediction kind {kind!r}")


def make_targets(kind, shape, rng, axis=-1):
    """Targets of a loss example (kinds in the module docstring)."""
    if callable(kind):
        return kind(rng, shape)
    shape = tuple(shape)
    simple = {"real": lambda: rng.standard_normal(shape),
              "pm_one": lambda: rng.choice([-1.0, 1.0], size=shape),
              "binary": lambda: rng.integers(0, 2, size=shape).astype(np.float64),
              "unit": lambda: rng.uniform(0.0, 1.0, shape),
              "probabilities": lambda: make_predictions("probabilities", shape, rng, axis)}
    if kind in simple:
        return simple[kind]()
    ax = axis % len(shape)
    labels = rng.integers(0, shape[ax], size=shape[:ax] + shape[ax + 1:]).astype(np.int64)
    if kind == "labels":
        return labels
    if kind == "onehot":
        out = np.moveaxis(np.zeros(labels.shape + (shape[ax],)), -1, ax)
        np.put_along_axis(out, np.expand_dims(labels, ax), 1.0, axis=ax)
        return np.ascontiguousarray(out)
    raise ValueError(f"corenet.testing: unknown target kind {kind!r}")


# ============================================================================ layers
def _copy_state(src, dst):
    """Copy parameter values and buffers; False if the parameter shapes differ."""
    ps, qs = src.parameters(), dst.parameters()
    if [p.shape for p in ps] != [q.shape for q in qs]:
        return False
    for p, q in zip(ps, qs):
        q.data[...] = p.data
    if src.buffers():
        dst.load_buffers({k: v.astype(dst.dtype) for k, v in src.buffers().items()})
    return True


def _random_mask(shape, rng):
    """0/1 mask with zeros and ones, keeping an entry of every output unit (row)."""
    m = (rng.random(shape) < 0.5).astype(np.float64)
    if m.ndim > 1:
        m.reshape(m.shape[0], -1)[:, -1] = 1.0
    m.flat[0], m.flat[-1] = 0.0, 1.0
    return m


def check_layer(layer_or_factory, input_shape, *, dtypes=("float64", "float32"),
                random_state=0, batch_size=3, eps=EPS, tol=TOL, atol=None, max_entries=200,
                checks=LAYER_CHECKS, skip_checks=()) -> dict:
    """Check the layer contract (README §9) on per-sample ``input_shape`` (a list of
    shapes for multi-input layers); returns ``{"max_rel_error", "skipped"}``.

    Every sub-check builds a fresh layer from the factory (for a layer instance:
    ``type(layer).from_config(layer.get_config())``) with the same seeded rng. Checks
    (select with ``checks`` / ``skip_checks``): ``forward`` (shape = ``output_shape`` with
    the batch axis, dtype = input dtype, finite, input not mutated); ``backward`` (input
    shapes, a tuple for multi-input layers; parameter gradients of the parameters'
    shapes and dtypes; ``dy`` not mutated); ``accumulate`` (two backward passes give
    twice the gradient); ``gradients`` (central differences in float64 of
    ``L = Σ w ⊙ y``, w random, for the inputs and every trainable parameter, in eval mode
    and also in train mode when that is deterministic); ``float32`` (forward and backward
    agree with float64 on the same weights); ``config`` (JSON-serialisable; ``from_config``
    round-trips, initialises the same parameters from the same rng and gives the same
    output); ``errors`` (wrong rank or feature count -> ShapeError, integer input ->
    DTypeError, nothing else); ``mode`` (train/eval flag); ``mask`` (masked weights stay
    exactly 0 through SGD steps with momentum and weight decay, pruning.md §1);
    ``batch1`` (one sample, eval mode).
    """
    if isinstance(layer_or_factory, Layer):
        proto = layer_or_factory
        factory = lambda: type(proto).from_config(copy.deepcopy(proto.get_config()))  # noqa: E731
    else:
        factory = layer_or_factory
    checks = [c for c in checks if c not in skip_checks]
    shape, seed = _shape(input_shape), np.random.SeedSequence(random_state)

    def fresh(dtype="float64"):
        lay = factory()
        lay.build(shape, np.dtype(dtype), np.random.default_rng(seed))
        return lay

    layer = fresh()
    who = f"check_layer({layer.name or type(layer).__name__}, input {shape})"
    rng = np.random.default_rng(random_state + 1)
    multi = layer.n_inputs != 1
    xs = [rng.standard_normal((batch_size,) + s) for s in (shape if multi else [shape])]
    with _Section(who, "output_shape"):
        out_shape = (batch_size,) + tuple(layer.output_shape(shape))
    w = rng.standard_normal(out_shape)
    report = {"max_rel_error": 0.0, "skipped": []}

    def passes(lay, inputs, dy):
        """forward then backward of dy; returns (y, tuple of input gradients)."""
        y = lay.forward(*inputs)
        d = dy.astype(y.dtype)
        keep = d.copy()
        dx = lay.backward(d)
        _expect("backward" not in checks or np.array_equal(d, keep), who, "backward",
                "backward mutated its argument dy")
        return y, (dx if multi else (dx,))

    if "mode" in checks:
        _expect(layer.mode == "train" and layer.training, who, "mode",
                f"a new layer must be in train mode, got {layer.mode!r}")
        layer.eval()
        _expect(layer.mode == "eval" and not layer.training, who, "mode",
                f"eval() did not switch to eval mode ({layer.mode!r})")
        layer.train()
        _expect(layer.mode == "train", who, "mode", "train() did not switch back")
    if "forward" in checks:
        with _Section(who, "forward"):
            keep = [x.copy() for x in xs]
            y = layer.forward(*xs)
            _expect(isinstance(y, np.ndarray) and y.shape == out_shape, who, "forward",
                    f"output shape {getattr(y, 'shape', type(y))} != output_shape(input_shape)"
                    f" with the batch axis {out_shape}")
            _expect(y.dtype == xs[0].dtype, who, "forward",
                    f"output dtype {y.dtype} != input dtype {xs[0].dtype}")
            _expect(all(np.array_equal(a, b) for a, b in zip(xs, keep)), who, "forward",
                    "forward mutated its input")
            _expect(np.isfinite(y).all(), who, "forward", "output contains NaN or inf")
    if "backward" in checks or "accumulate" in checks:
        with _Section(who, "backward"):
            for p in layer.parameters():
                p.zero_grad()
            _, dxs = passes(layer, xs, w)
            _expect(not multi or isinstance(dxs, tuple), who, "backward",
                    f"a multi-input layer must return a tuple, got {type(dxs).__name__}")
            _expect(len(dxs) == len(xs) and all(np.shape(d) == x.shape
                                                for d, x in zip(dxs, xs)), who, "backward",
                    f"input gradient shapes {[np.shape(d) for d in dxs]} != input shapes "
                    f"{[x.shape for x in xs]}")
            for p in layer.parameters():
                _expect(p.grad.shape == p.data.shape and p.grad.dtype == p.data.dtype, who,
                        "backward", f"gradient of {p.name} has shape {p.grad.shape} / dtype "
                                    f"{p.grad.dtype}, parameter {p.shape} / {p.dtype}")
            if "accumulate" in checks:
                first = [p.grad.copy() for p in layer.parameters()]
                passes(layer, xs, w)
                for p, g in zip(layer.parameters(), first):
                    _expect(not p.trainable or np.allclose(p.grad, 2 * g, rtol=1e-12,
                                                           atol=1e-15), who, "accumulate",
                            f"two backward passes must accumulate twice the gradient of "
                            f"{p.name} (grad += ...); max |g2 − 2 g1| = "
                            f"{np.max(np.abs(p.grad - 2 * g), initial=0):.3g}")
    if "gradients" in checks:
        with _Section(who, "gradients"):
            lay = fresh()
            y1 = lay.forward(*xs).copy()
            for mode in ["eval"] + (["train"] if np.array_equal(y1, lay.forward(*xs)) else []):
                lay.train(mode == "train")
                inputs = [x.copy() for x in xs]
                for p in lay.parameters():
                    p.zero_grad()
                _, dxs = passes(lay, inputs, w)
                arrays = [(f"input{i}", a, np.array(d), None)
                          for i, (a, d) in enumerate(zip(inputs, dxs))]
                arrays += [(p.name, p.data, p.grad.copy(), p._mask if p.masked else None)
                           for p in lay.parameters() if p.trainable]
                res = _grad_check(lambda: float(np.sum(w * lay.forward(*inputs))), arrays,
                                  _KinkProbe([lay]), eps, tol, atol,
                                  np.random.default_rng(random_state), max_entries)
                report["max_rel_error"] = max(report["max_rel_error"], res.max_rel_error)
                report["skipped"] += res.skipped
                res.assert_ok(tol, who=f"{who} [{mode} mode]")
    if "float32" in checks and "float32" in dtypes:
        with _Section(who, "float32"):
            l64, l32 = fresh(), fresh("float32")
            _expect(_copy_state(l64, l32), who, "float32",
                    "float32 and float64 builds have different parameter shapes")
            l64.eval(), l32.eval()
            y64, d64 = passes(l64, xs, w)
            y32, d32 = passes(l32, [x.astype(np.float32) for x in xs], w)
            _expect(_dtype_ok([y32, *d32] + [p.grad for p in l32.parameters()], np.float32),
                    who, "float32", "float32 input gave a float64 output or gradient")
            _close(who, "float32", y32, y64, RTOL32, ATOL32 * max(1.0, np.abs(y64).max()),
                   "float32 vs float64 output")
            for a, b in zip(d32, d64):
                _close(who, "float32", a, b, 1e-4, 1e-5 * max(1.0, np.abs(b).max()),
                       "float32 vs float64 input gradient")
    if "config" in checks:
        with _Section(who, "config"):
            cfg = _json(who, layer.get_config())
            clone = type(layer).from_config(copy.deepcopy(cfg))
            _expect(_json(who, clone.get_config()) == cfg, who, "config",
                    f"from_config(get_config()) does not round-trip: {cfg} -> "
                    f"{clone.get_config()}")
            clone.build(shape, np.dtype("float64"), np.random.default_rng(seed))
            src = fresh()
            same = [p.shape for p in src.parameters()] == [q.shape for q in clone.parameters()]
            same = same and all(np.array_equal(p.data, q.data)
                                for p, q in zip(src.parameters(), clone.parameters()))
            _expect(same, who, "config", "from_config(get_config()) built with the same rng "
                                         "initialises different parameters; get_config() "
                                         "misses an argument")
            _copy_state(src, clone)
            src.eval(), clone.eval()
            _close(who, "config", clone.forward(*xs), src.forward(*xs), 1e-12, 1e-14,
                   "output of from_config(get_config()) with the same parameters")
    if "errors" in checks:
        with _Section(who, "errors"):
            lay = fresh()
            lay.forward(*xs)
        for i, x in enumerate(xs):
            def call(bad, i=i):
                return lambda: lay.forward(*xs[:i], bad, *xs[i + 1:])
            tag = f"input {i}: " if multi else ""
            bad = [x[..., None], np.concatenate([x, x[..., :1]], axis=-1)]
            bad += [x.reshape(len(x), -1)] if x.ndim > 2 else []
            for b in bad:
                _raises(who, "errors", ShapeError, call(b), f"{tag}input of shape {b.shape}")
            _raises(who, "errors", DTypeError, call(x.astype(np.int64)), f"{tag}integer input")
    if "mask" in checks:
        with _Section(who, "mask"):
            lay, mrng = fresh(), np.random.default_rng(random_state + 2)
            masked = [p for p in lay.parameters() if p.trainable and p.size >= 2]
            for p in masked:
                p.mask = _random_mask(p.shape, mrng) * p.mask
            if masked:
                opt = registry.create("optimizer", {
                    "name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01,
                    "decoupled_weight_decay": 0.01}).bind(lay.parameters())
                for _ in range(3):
                    opt.zero_grad()
                    passes(lay, xs, w)
                    opt.step()
                passes(lay, xs, w)
            for p in masked:
                _expect(not np.any(p.data[p.mask == 0]), who, "mask",
                        f"masked entries of {p.name} became non-zero after SGD steps and a "
                        f"forward pass (pruning.md §1)")
    if "batch1" in checks:
        with _Section(who, "batch1"):
            lay = fresh()
            lay.eval()
            one = [x[:1].copy() for x in xs]
            y, dxs = passes(lay, one, w[:1])
            _expect(y.shape == (1,) + out_shape[1:] and all(
                np.shape(d) == x.shape for d, x in zip(dxs, one)), who, "batch1",
                f"a batch of 1 gave output {y.shape}, input gradients "
                f"{[np.shape(d) for d in dxs]}")
    return report


# ============================================================================ activations
def check_activation(activation, *, random_state=0, eps=EPS, tol=TOL, n=64,
                     dtypes=("float64", "float32")) -> dict:
    """Check an activation (instance, class or registered name/dict): ``f``/``df``/``d2f``
    against central differences (float64; points within 10·eps of a kink skipped),
    ``forward == f`` and ``backward(x, f(x), dy) == dy ⊙ f′(x)`` in float64 and float32,
    dtypes and shapes kept, input not mutated, the ``get_config`` round trip. A
    non-differentiable activation (``differentiable = False``, e.g. ``sign``) must raise
    from ``backward`` and ``df`` instead."""
    act = registry.create("activation", activation() if isinstance(activation, type)
                          else activation)
    who = f"check_activation({act.name})"
    rng = np.random.default_rng(random_state)
    kinks = activation_kinks(act)
    x = np.sort(np.concatenate([rng.uniform(-3, 3, n), [-2.0, -0.5, 0.0, 0.5, 2.0],
                                kinks]))[:, None] * np.array([[1.0, 0.7]])
    smooth = np.all([np.abs(x - k) >= 10 * eps for k in kinks], axis=0)
    differentiable = getattr(act, "differentiable", True)
    for dt in dtypes:
        xd, dy = x.astype(dt), rng.standard_normal(x.shape).astype(dt)
        rtol, atol = (1e-12, 1e-14) if dt == "float64" else (RTOL32, ATOL32)
        with _Section(who, f"forward {dt}"):
            keep = xd.copy()
            fx, y = act.f(xd), act.forward(xd)
            _expect(np.array_equal(xd, keep), who, "forward", "forward mutated its input")
            _expect(fx.shape == y.shape == xd.shape and _dtype_ok([fx, y], xd.dtype), who,
                    "forward", f"f / forward returned {fx.shape} {fx.dtype} / {y.shape} "
                               f"{y.dtype} for {xd.shape} {xd.dtype}")
            _close(who, "forward", y, act.f(x), rtol, atol, f"forward vs f ({dt})")
        if not differentiable:
            for what, fn in (("backward", lambda: act.backward(xd, y, dy)),
                             ("df", lambda: act.df(xd))):
                _raises(who, "backward", (NotImplementedError, CorenetError), fn,
                        f"{what} of a non-differentiable activation")
            continue
        with _Section(who, f"backward {dt}"):
            dx, d1, d2 = act.backward(xd, y, dy), act.df(xd), act.d2f(xd)
            _expect(dx.shape == d1.shape == d2.shape == xd.shape and _dtype_ok(
                [dx, d1, d2], xd.dtype), who, "backward", "backward / df / d2f changed the "
                                                          "shape or dtype")
            _close(who, "backward", dx, dy.astype(np.float64) * act.df(x), rtol, 10 * atol,
                   f"backward vs dy*df ({dt})")
    if differentiable:
        with _Section(who, "derivatives"):
            for fn, dfn in (("f", "df"), ("df", "d2f")):
                f = getattr(act, fn)
                num, ana = (f(x + eps) - f(x - eps)) / (2 * eps), getattr(act, dfn)(x)
                err = np.where((np.abs(ana - num) > 1e-9 * np.maximum(1, np.abs(f(x))))
                               & smooth, rel_error(ana, num), 0.0)
                i = np.unravel_index(np.argmax(err), err.shape)
                _expect(err[i] <= tol, who, dfn, f"{dfn} vs central differences of {fn}: "
                                                 f"relative error {err[i]:.3g} > {tol:g} at "
                                                 f"x={x[i]!r} ({ana[i]!r} vs {num[i]!r})")
    with _Section(who, "config"):
        clone = type(act)(**_json(who, act.get_config()))
        _close(who, "config", clone.f(x), act.f(x), 0, 0, "f of type(a)(**a.get_config())")
    return {"skipped": int((~smooth).sum())}


# ============================================================================ losses
def _with(loss, **changes):
    return type(loss)(**{**loss.get_config(), **changes})


def check_loss(loss, y_pred, y, *, sample_weight=None, random_state=0, eps=EPS, tol=TOL,
               atol=None, checks=LOSS_CHECKS, skip_checks=()) -> dict:
    """Check a loss (instance or registered name/dict) on ``(y_pred, y)``: ``gradient``
    (``grad`` vs central differences of the reduced value in float64; shapes;
    ``value_and_grad`` consistent), ``reductions`` (``sum = N·mean``, ``none`` sums to
    ``sum``, the same for gradients), ``weights`` (all-ones = none; ``mean = Σwℓ/Σw``,
    ``sum = Σwℓ``, ``none = wℓ``), ``float32`` (runs, agrees with float64), ``fused``
    (the fused pre-activation path vs the unfused path through ``fused_activation``),
    ``hessian`` (``hess_output``, if defined, vs differences of per-sample gradients),
    ``config`` (JSON round trip) and ``errors`` (wrong target shape -> ShapeError or
    ValueError, integer predictions -> DTypeError)."""
    loss = registry.create("loss", loss)
    checks = [c for c in checks if c not in skip_checks]
    who = f"check_loss({loss.name}, {loss.get_config()})"
    rng = np.random.default_rng(random_state)
    yp = np.array(y_pred, dtype=np.float64)
    n, report = yp.shape[0], {"max_rel_error": 0.0}
    _expect("reduction" in loss.get_config(), who, "config",
            "get_config() must contain 'reduction'")
    with _Section(who, "gradient"):
        v, g = loss.value_and_grad(yp, y, sample_weight)
        _expect(g.shape == yp.shape and g.dtype == yp.dtype, who, "gradient",
                f"grad has shape {g.shape} / dtype {g.dtype}, predictions {yp.shape} / "
                f"{yp.dtype}")
        _expect(loss.reduction == "none" or isinstance(v, float), who, "gradient",
                f"value must be a float for reduction {loss.reduction!r}, got {type(v)}")
        _close(who, "gradient", v, loss.value(yp, y, sample_weight), 1e-12, 1e-14,
               "value_and_grad()[0] vs value()")
        _close(who, "gradient", g, loss.grad(yp, y, sample_weight), 1e-12, 1e-14,
               "value_and_grad()[1] vs grad()")
        if "gradient" in checks:
            work = yp.copy()
            res = _grad_check(lambda: float(np.sum(loss.value(work, y, sample_weight))),
                              [("y_pred", work, g, None)], _KinkProbe([]), eps, tol, atol,
                              rng, None)
            report["max_rel_error"] = res.max_rel_error
            res.assert_ok(tol, who=who)
    mean, tot, none = (_with(loss, reduction=r) for r in ("mean", "sum", "none"))
    if "reductions" in checks:
        with _Section(who, "reductions"):
            (vm, gm), (vs, gs), (vn, gn) = (r.value_and_grad(yp, y) for r in (mean, tot, none))
            _expect(np.shape(vn) == (n,), who, "reductions",
                    f"reduction='none' must give shape ({n},), got {np.shape(vn)}")
            for a, b, what in ((vs, n * vm, "sum vs N·mean"), (np.sum(vn), vs, "Σ none vs sum"),
                               (gs, n * gm, "grad of sum vs N·grad of mean"),
                               (gn, gs, "grad of none vs grad of sum")):
                _close(who, "reductions", a, b, 1e-10, 1e-12, what)
    if "weights" in checks:
        with _Section(who, "weights"):
            wts, col = rng.uniform(0.5, 2.0, n), (n,) + (1,) * (yp.ndim - 1)
            ell, gl = none.value_and_grad(yp, y)
            expect = {"mean": (wts @ ell / wts.sum(), gl * wts.reshape(col) / wts.sum()),
                      "sum": (wts @ ell, gl * wts.reshape(col)),
                      "none": (wts * ell, gl * wts.reshape(col))}
            for r in (mean, tot, none):
                tag = f"reduction={r.reduction!r}"
                for a, b in zip(r.value_and_grad(yp, y, np.ones(n)), r.value_and_grad(yp, y)):
                    _close(who, "weights", a, b, 1e-12, 1e-14, f"{tag}: all-ones weights "
                                                               f"vs no weights")
                for a, b in zip(r.value_and_grad(yp, y, wts), expect[r.reduction]):
                    _close(who, "weights", a, b, 1e-10, 1e-12, f"{tag}: weighted value/grad "
                                                               f"vs Σ w ℓ (/ Σ w)")
    if "float32" in checks:
        with _Section(who, "float32"):
            v32, g32 = loss.value_and_grad(yp.astype(np.float32), y)
            v64, g64 = loss.value_and_grad(yp, y)
            _expect(g32.dtype == np.float32, who, "float32",
                    f"float32 predictions gave a {g32.dtype} gradient")
            _close(who, "float32", v32, v64, 1e-4, 1e-5, "float32 vs float64 value")
            _close(who, "float32", g32, g64, 1e-4, 1e-5 * max(1.0, np.abs(g64).max()),
                   "float32 vs float64 gradient")
    if "fused" in checks and loss.fused_activation:
        with _Section(who, "fused"):
            name, s = loss.fused_activation, rng.standard_normal(yp.shape)
            try:
                act = registry.create("activation", name)
                p, back = act.f(s), (lambda d: d * act.df(s))
            except PluginError:   # a layer (softmax), along the loss's class axis
                axis = loss.get_config().get("axis")
                act = registry.create("layer", name if axis is None else
                                      {"name": name, "axis": axis})
                p, back = act.forward(s), act.backward
            unfused = _with(loss, from_probs=True) if "from_probs" in loss.get_config() \
                else loss
            vf, gf = loss.fused_value_and_grad(s, y)
            vu, gu = unfused.value_and_grad(p, y)
            _close(who, "fused", vf, vu, 1e-9, 1e-12, f"fused value vs value({name}(s))")
            _close(who, "fused", gf, back(gu), 1e-7, 1e-10,
                   f"fused gradient vs the chain rule through {name}")
            _close(who, "fused", loss.fused_output_grad(s, y), gf, 1e-12, 1e-14,
                   "fused_output_grad vs fused_value_and_grad")
    if "hessian" in checks:
        try:
            h = loss.hess_output(yp, y)
        except NotImplementedError:
            h = None
        if h is not None:
            with _Section(who, "hessian"):
                d = int(np.prod(yp.shape[1:]))
                _expect(np.shape(h) == (n, d, d), who, "hessian",
                        f"hess_output must have shape {(n, d, d)}, got {np.shape(h)}")
                work = yp.copy()
                cols = work.reshape(n, d)   # a view: per-sample losses, one column at a time
                g0 = none.grad(work, y).reshape(n, d)
                num, kink = np.zeros((n, d, d)), np.zeros((n, d, d), bool)
                for j in range(d):
                    orig = cols[:, j].copy()
                    cols[:, j] = orig + eps
                    gp = none.grad(work, y).reshape(n, d)
                    cols[:, j] = orig - eps
                    gm = none.grad(work, y).reshape(n, d)
                    cols[:, j] = orig
                    num[:, :, j] = (gp - gm) / (2 * eps)
                    dp, dm = gp - g0, g0 - gm     # one-sided: a jump marks a kink
                    kink[:, :, j] = np.abs(dp - dm) > 1e-3 * np.maximum(abs(dp), abs(dm)) + 1e-9
                err = np.where((np.abs(h - num) > 1e-8) & ~kink, rel_error(h, num), 0.0)
                i = np.unravel_index(np.argmax(err), err.shape)
                _expect(err[i] <= 1e-5, who, "hessian",
                        f"hess_output vs differences of per-sample gradients: relative error "
                        f"{err[i]:.3g} at {tuple(map(int, i))}: {h[i]!r} vs {num[i]!r}")
    if "config" in checks:
        with _Section(who, "config"):
            clone = type(loss)(**_json(who, loss.get_config()))
            for a, b in zip(clone.value_and_grad(yp, y), loss.value_and_grad(yp, y)):
                _close(who, "config", a, b, 1e-12, 1e-14, "type(l)(**l.get_config())")
    if "errors" in checks:
        listed = isinstance(y, (list, tuple))
        bad = [t[:-1] for t in y] if listed else np.concatenate([y, np.asarray(y)[:1]])
        _raises(who, "errors", (ShapeError, ValueError), lambda: loss.value(yp, bad),
                f"targets with {n - 1 if listed else n + 1} rows for {n} predictions")
        _raises(who, "errors", DTypeError, lambda: loss.value(yp.astype(np.int64), y),
                "integer predictions")
    return report


# ============================================================================ optimizers
class _Quadratic:
    """``f(θ) = Σ_p ½ Σ a_p (θ_p − c_p)²`` over a (3, 2) weight and a (4,) bias."""

    def __init__(self, seed, dtype=np.float64):
        rng = np.random.default_rng(seed)
        shapes = [(3, 2), (4,)]
        self.a = [rng.uniform(0.5, 2.0, s) for s in shapes]
        self.c = [rng.uniform(-1, 1, s) for s in shapes]
        self.params = [Parameter((c + rng.choice([-1, 1], s) * rng.uniform(0.5, 1, s))
                                 .astype(dtype), role)
                       for c, s, role in zip(self.c, shapes, ("weight", "bias"))]

    def clone(self):
        new = copy.copy(self)
        new.params = [Parameter(p.data.copy(), p.role) for p in self.params]
        return new

    def loss(self):
        return sum(0.5 * float(np.sum(a * (p.data - c) ** 2))
                   for p, a, c in zip(self.params, self.a, self.c))

    def step(self, opt, loss=None):
        """Fill the gradients, then one step (``step(loss=...)`` for ``uses_loss``)."""
        loss = self.loss() if loss is None else loss
        for p, a, c in zip(self.params, self.a, self.c):
            p.grad[...] = a * (p.data - c)
        opt.step(loss=loss) if getattr(opt, "uses_loss", False) else opt.step()

    def run(self, opt, steps):
        for _ in range(steps):
            self.step(opt)
        return self


def check_optimizer(optimizer_factory, *, steps=300, random_state=0, checks=OPTIMIZER_CHECKS,
                    skip_checks=()) -> dict:
    """Check an optimizer given as a factory returning an unbound optimizer (or a class,
    a registered name/dict, an instance) on a convex quadratic: ``decrease`` (the loss
    falls to at most half in ``steps`` steps), ``resume`` (``state_dict`` saved at step k
    and loaded into a fresh optimizer continues bit-identically), ``groups`` (a group's
    own lr gives the same result as a separate optimizer with that lr), ``mask`` (masked
    entries stay exactly 0 with weight decay; ``zero_state``), ``frozen`` (trainable=False
    unchanged), ``zero_grad``, ``lr`` (a negative lr raises HyperparameterError at
    construction and in a parameter group), ``float32`` (parameters and state stay
    float32). Returns ``{"loss_ratio", "not_applicable"}``."""
    if isinstance(optimizer_factory, Optimizer):
        inst = optimizer_factory
        make = lambda: type(inst)(**copy.deepcopy(inst.get_config()))  # noqa: E731
    elif isinstance(optimizer_factory, (str, dict, type)):
        make = lambda: registry.create("optimizer", copy.deepcopy(optimizer_factory))  # noqa
    else:
        make = optimizer_factory
    probe = make()
    cls, cfg = type(probe), probe.get_config()
    who = f"check_optimizer({probe.name}, {cfg})"
    checks = [c for c in checks if c not in skip_checks]
    report = {"not_applicable": []}
    if getattr(probe, "needs_data", False):   # data solvers: no gradient step
        report["not_applicable"] = [c for c in checks if c not in ("lr", "zero_grad")]
        checks = [c for c in checks if c in ("lr", "zero_grad")]
    quad = lambda dtype=np.float64: _Quadratic(random_state, dtype)  # noqa: E731
    if "lr" in checks:
        _raises(who, "lr", HyperparameterError, lambda: cls(**{**cfg, "lr": -0.1}),
                "construction with lr=-0.1")
        prob = quad()
        opt = make().bind(prob.params[:1])
        _raises(who, "lr", HyperparameterError,
                lambda: opt.add_param_group({"params": prob.params[1:], "lr": -0.1}),
                "a parameter group with lr=-0.1")
    if "decrease" in checks:
        with _Section(who, "decrease"):
            prob = quad()
            f0 = prob.loss()
            f1 = prob.run(make().bind(prob.params), steps).loss()
            report["loss_ratio"] = f1 / f0
            _expect(np.isfinite(f1) and f1 <= 0.5 * f0, who, "decrease",
                    f"on a convex quadratic the loss went from {f0:.4g} to {f1:.4g} in "
                    f"{steps} steps (expected at most half)")
    if "resume" in checks:
        with _Section(who, "resume"):
            k, a = 7, quad()
            b = a.clone()
            a.run(make().bind(a.params), 2 * k)
            opt_b = make().bind(b.params)
            b.run(opt_b, k)
            saved = copy.deepcopy(opt_b.state_dict())
            c = b.clone()
            opt_c = make().bind(c.params)
            opt_c.load_state_dict(saved)
            c.run(opt_c, k)
            diff = max(float(np.max(np.abs(p.data - q.data))) for p, q in zip(a.params,
                                                                             c.params))
            _expect(diff == 0, who, "resume", f"a run restored from state_dict() after {k} "
                                              f"steps differs from the uninterrupted run by "
                                              f"{diff:.3g}")
    if "groups" in checks:
        with _Section(who, "groups"):
            lr2 = (cfg.get("lr") or 0.01) * 0.5
            g = quad()
            ref1, ref2 = g.clone(), g.clone()
            runs = [(g, make().bind([{"params": g.params[:1]},
                                     {"params": g.params[1:], "lr": lr2}])),
                    (ref1, make().bind(ref1.params[:1])),
                    (ref2, cls(**{**cfg, "lr": lr2}).bind(ref2.params[1:]))]
            for _ in range(20):
                total = g.loss()   # loss-based rules see the same objective in every run
                for prob, o in runs:
                    prob.step(o, total)
            _expect(np.array_equal(g.params[0].data, ref1.params[0].data) and
                    np.array_equal(g.params[1].data, ref2.params[1].data), who, "groups",
                    f"a parameter group with its own lr={lr2} does not match a separate "
                    f"optimizer with that lr")
    if "mask" in checks:
        with _Section(who, "mask"):
            prob, mrng = quad(), np.random.default_rng(random_state + 1)
            for p in prob.params:
                p.mask, p.decay = _random_mask(p.shape, mrng), True
            try:
                opt = cls(**{**cfg, "weight_decay": 0.01, "decoupled_weight_decay": 0.01})
            except HyperparameterError:
                opt = cls(**cfg)
            opt.bind(prob.params)
            for step in range(50):
                prob.step(opt)
                for p in prob.params:
                    _expect(not np.any(p.data[p.mask == 0]), who, "mask",
                            f"masked entries of {p.name} became non-zero at step {step + 1}")
            for p in prob.params:
                opt.zero_state(p, p.mask)
                for key, v in opt.state.get(p, {}).items():
                    _expect(not (isinstance(v, np.ndarray) and v.shape == p.shape and
                                 np.any(v[p.mask == 0])), who, "mask",
                            f"zero_state left state {key!r} non-zero at masked positions")
    if "frozen" in checks:
        with _Section(who, "frozen"):
            prob = quad()
            prob.params[0].trainable = False
            before = prob.params[0].data.copy()
            prob.run(make().bind(prob.params), 10)
            _expect(np.array_equal(prob.params[0].data, before), who, "frozen",
                    "a parameter with trainable=False was changed")
    if "zero_grad" in checks:
        with _Section(who, "zero_grad"):
            prob = quad()
            opt = make().bind(prob.params)
            for p in prob.params:
                p.grad[...] = 1.0
            opt.zero_grad()
            _expect(not any(np.any(p.grad) for p in prob.params), who, "zero_grad",
                    "zero_grad() left non-zero gradients")
    if "float32" in checks:
        with _Section(who, "float32"):
            prob = quad(np.float32)
            opt = make().bind(prob.params)
            prob.run(opt, 5)
            arrays = [p.data for p in prob.params] + [
                v for p in prob.params for v in opt.state.get(p, {}).values()
                if isinstance(v, np.ndarray) and v.shape == p.shape]
            _expect(_dtype_ok(arrays, np.float32), who, "float32",
                    f"float32 parameters or state became {[a.dtype for a in arrays]}")
    return report


# ============================================================================ regularizers
def check_regularizer(regularizer, *, random_state=0, eps=EPS, tol=TOL) -> dict:
    """Check a penalty regularizer on a weight, a bias (``decay=False``) and a frozen
    weight: ``penalty`` is a finite float, ``add_grad`` matches central differences of
    ``penalty`` (float64; parameters it does not apply to get no gradient), ``lam=0``
    gives no penalty, the config round-trips through JSON."""
    reg = registry.create("regularizer", regularizer)
    who = f"check_regularizer({reg.name}, {reg.get_config()})"
    rng = np.random.default_rng(random_state)
    params = [Parameter(rng.uniform(0.1, 1.0, (3, 4)) * rng.choice([-1, 1], (3, 4)), "weight"),
              Parameter(rng.uniform(0.1, 1.0, 3), "bias"),
              Parameter(rng.uniform(0.1, 1.0, (2, 2)), "weight", trainable=False)]
    for i, p in enumerate(params):
        p.name = f"{i}.{p.role}"
    with _Section(who, "gradients"):
        value = reg.penalty(params)
        _expect(isinstance(value, float) and math.isfinite(value), who, "penalty",
                f"penalty must be a finite float, got {value!r}")
        reg.add_grad(params)
        res = _grad_check(lambda: reg.penalty(params),
                          [(p.name, p.data, p.grad.copy(), None) for p in params],
                          _KinkProbe([]), eps, tol, None, rng, None)
        res.assert_ok(tol, who=who)
    with _Section(who, "config"):
        cfg = _json(who, reg.get_config())
        _close(who, "config", type(reg)(**cfg).penalty(params), value, 1e-12, 0,
               "penalty of type(r)(**r.get_config())")
        _expect("lam" not in cfg or type(reg)(**{**cfg, "lam": 0.0}).penalty(params) == 0,
                who, "config", "lam=0 must give a zero penalty")
    return {"max_rel_error": res.max_rel_error, "penalty": value}


# ============================================================================ running examples
_TARGET_GUESSES = ("real", "probabilities", "labels", "pm_one", "binary")


def _check_loss_case(cls, case, skip, random_state=0, **kwargs):
    cfg = case.get("config", {})
    try:
        loss = cls(**cfg)
    except TypeError as e:
        raise AssertionError(f"{cls.__name__} ({cls.name!r}) cannot be built from config "
                             f"{cfg}: {e}. Define a classmethod examples() (corenet.testing)"
                             ) from e
    shape = tuple(case.get("y_pred_shape", (4, 3)))
    axis = case.get("axis", cfg.get("axis", -1))
    rng = np.random.default_rng(random_state)
    yp = make_predictions(case.get("y_pred", "real"), shape, rng, axis)
    if case.get("targets") is not None:
        y = make_targets(case["targets"], shape, rng, axis)
    else:
        for guess in _TARGET_GUESSES:
            y = make_targets(guess, shape, np.random.default_rng(random_state + 1), axis)
            try:
                loss.prepare_targets(yp, y)
                break
            except (ValueError, TypeError):
                continue
        else:
            raise AssertionError(f"check_loss({loss.name}): none of the target kinds "
                                 f"{_TARGET_GUESSES} fits; define {cls.__name__}.examples()")
    return check_loss(loss, yp, y, random_state=random_state, skip_checks=skip, **kwargs)


def _check_layer_case(cls, case, skip, **kwargs):
    cfg, shape = case.get("config", {}), case.get("input_shape", (5,))
    if case.get("default"):
        try:
            cls.from_config(copy.deepcopy(cfg)).build(_shape(shape))
        except Exception as e:  # noqa: BLE001 - explained in the message
            raise AssertionError(
                f"{cls.__name__} ({cls.name!r}) cannot be built with the generic default "
                f"example (config {{}}, input_shape {shape}): {type(e).__name__}: {e}. Define "
                f"a classmethod examples() returning [{{'config': {{...}}, 'input_shape': "
                f"(...)}}, ...] (see corenet.testing)") from e
    return check_layer(lambda: cls.from_config(copy.deepcopy(cfg)), shape, skip_checks=skip,
                       **kwargs)


def check_component(cls, category=None, *, cases=None, **kwargs) -> list:
    """Run the category's check on every example case of ``cls`` (:func:`examples`, or
    ``cases``); returns the reports."""
    category = category or _category_of(cls)
    reports = []
    for case in (examples(cls, category) if cases is None else copy.deepcopy(list(cases))):
        skip = tuple(case.pop("skip_checks", ()))
        if category == "layer":
            reports.append(_check_layer_case(cls, case, skip, **kwargs))
        elif category == "loss":
            reports.append(_check_loss_case(cls, case, skip, **kwargs))
        elif category == "optimizer":
            reports.append(check_optimizer(lambda: cls(**copy.deepcopy(case)),
                                           skip_checks=skip, **kwargs))
        elif category == "activation":
            reports.append(check_activation(cls(**case), **kwargs))
        elif category == "regularizer":
            reports.append(check_regularizer(cls(**case), **kwargs))
        else:
            raise ValueError(f"corenet.testing: no contract check for category {category!r}")
    return reports


def check_registered(category, name, **kwargs) -> list:
    """:func:`check_component` on the class registered as ``category:name``."""
    return check_component(registry.get(category, name), category, **kwargs)


def parametrize_registered(category) -> list:
    """``[pytest.param(name, id=name), ...]`` for every name registered in ``category``
    (pytest is imported here, not by corenet)."""
    import pytest

    return [pytest.param(name, id=name) for name in registry.names(category)]


__all__ = ["EPS", "TOL", "LAYER_CHECKS", "LOSS_CHECKS", "OPTIMIZER_CHECKS",
           "GradientCheckResult", "activation_kinks", "check_activation", "check_component",
           "check_gradients", "check_layer", "check_loss", "check_optimizer",
           "check_registered", "check_regularizer", "examples", "make_predictions",
           "make_targets", "numerical_gradient", "parametrize_registered", "rel_error"]


def check_linear_second_order(layer, xs, eps=1e-6):
    """Second-order passes of a parameter-free, piecewise-linear layer (pooling, pad, crop,
    dropout with a fixed mask, ...; networks.md §7.2, §7.5): the R-forward of unit vectors
    gives the Jacobian J of ``layer`` at ``xs`` (checked against central differences of
    forward); R-backward must apply Jᵀ to dy and R{dy}, and the Gauss-Newton diagonal
    pass (J∘J)ᵀ. Only the first input varies. Raises AssertionError on a mismatch."""
    multi = len(xs) > 1
    y = layer.forward(*xs)
    x = xs[0]

    def tangent(v):
        return [v] + [None] * (len(xs) - 1) if multi else v

    J = np.stack([layer.rop_forward(tangent(e.reshape(x.shape)), []).ravel()
                  for e in np.eye(x.size)], axis=1)
    num = np.empty_like(J)
    for i in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp.flat[i] += eps
        xm.flat[i] -= eps
        diff = layer.forward(xp, *xs[1:]) - layer.forward(xm, *xs[1:])
        num[:, i] = (diff / (2 * eps)).ravel()
    np.testing.assert_allclose(J, num, rtol=1e-6, atol=1e-8)
    layer.forward(*xs)                                     # restore the caches
    assert layer.rop_forward(tangent(None), []) is None
    rng = np.random.default_rng(9)
    dy, dy_dot = rng.standard_normal(y.shape), rng.standard_normal(y.shape)
    h = rng.random(y.shape)
    dx, dx_dot = layer.rop_backward(dy, dy_dot, [], [])
    g = layer.diag_gn_backward(h, [])
    if multi:
        dx, dx_dot, g = dx[0], dx_dot[0], g[0]
    np.testing.assert_allclose(dx.ravel(), J.T @ dy.ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx_dot.ravel(), J.T @ dy_dot.ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g.ravel(), (J ** 2).T @ h.ravel(), rtol=1e-12, atol=1e-12)

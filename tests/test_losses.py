"""Tests of corenet.losses (spec networks.md §3, README §6/§10, TV-LOSS-01..07)."""
import math

import numpy as np
import pytest

import corenet.losses as L
from corenet import registry
from corenet.errors import DTypeError, HyperparameterError, NotFiniteError, ShapeError

TOL = {np.float64: dict(rtol=1e-9, atol=1e-10), np.float32: dict(rtol=1e-5, atol=1e-6)}
DTYPES = [np.float64, np.float32]
NAMES = ["mse", "sse", "mae", "huber", "huber_norm", "bce", "bce_with_logits", "cross_entropy",
         "nll", "grouped_cross_entropy", "hinge", "squared_hinge", "multiclass_hinge",
         "logistic", "perceptron", "kl_div", "multitask"]


def make(name, **kw):
    return registry.create("loss", {"name": name, **kw})


def arr(x, dt=np.float64):
    return np.array(x, dtype=dt)


def sig(x):
    return 1 / (1 + np.exp(-x))


def softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def numgrad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (f(xp) - f(xm)) / (2 * h)
    return g


def assert_grad_close(a, n):
    rel = np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n))
    assert rel.max() <= 1e-6, (rel.max(), a, n)


# ----------------------------------------------------------------------------- test vectors
@pytest.mark.parametrize("dt", DTYPES)
def test_tv_loss_01_cross_entropy_labels(dt):
    z, y = arr([[1, 2, 3], [1, -1, 0.5]], dt), np.array([1, 0])
    np.testing.assert_allclose(make("cross_entropy", reduction="none").value(z, y),
                               [1.4076059644, 0.5549569196], **TOL[dt])
    ce = make("cross_entropy")
    np.testing.assert_allclose(ce.value(z, y), 0.9812814420431855, **TOL[dt])
    np.testing.assert_allclose(make("cross_entropy", reduction="sum").value(z, y),
                               1.962562884086371, **TOL[dt])
    g = ce.grad(z, y)
    assert g.dtype == dt and g.shape == z.shape
    np.testing.assert_allclose(g, [[0.0450152866, -0.3776357645, 0.3326204779],
                                   [-0.2129515035, 0.0388477896, 0.1741037139]], **TOL[dt])
    np.testing.assert_allclose(ce.value(z, np.eye(3)[y]), ce.value(z, y), **TOL[dt])


@pytest.mark.parametrize("dt", DTYPES)
def test_tv_loss_02_cross_entropy_soft(dt):
    z = arr([[1, 2, 3], [1, -1, 0.5]], dt)
    y = arr([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]], dt)
    np.testing.assert_allclose(make("cross_entropy", reduction="none").value(z, y),
                               [0.8076059644, 1.1799569196], **TOL[dt])
    v, g = make("cross_entropy").value_and_grad(z, y)
    np.testing.assert_allclose(v, 0.9937814420431856, **TOL[dt])
    np.testing.assert_allclose(g, [[-0.0049847134, 0.0223642355, -0.0173795221],
                                   [0.0370484965, -0.0861522104, 0.0491037139]], **TOL[dt])
    with pytest.raises(ValueError, match="sum to 1"):
        make("cross_entropy").value(z, arr([[0.1, 0.2, 0.7 + 2e-6], [0.5, 0.25, 0.25]], dt))
    make("cross_entropy").value(z, arr([[0.1, 0.2, 0.7 + 5e-7], [0.5, 0.25, 0.25]]))


@pytest.mark.parametrize("dt", DTYPES)
def test_tv_loss_03_bce(dt):
    z, y = arr([[-3, 0, 2.5, 40, -40]], dt), arr([[0, 1, 1, 0, 1]], dt)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        v, g = make("bce_with_logits").value_and_grad(z, y)
        elems = make("bce_with_logits", reduction="none").value(z.reshape(5), y.reshape(5))
    np.testing.assert_allclose(elems, [0.0485873516, 0.6931471806, 0.0788897343, 40.0, 40.0],
                               **TOL[dt])
    np.testing.assert_allclose(v, 16.164124853285248, **TOL[dt])
    np.testing.assert_allclose(g, arr([[0.0474258732, -0.5, -0.07585818, 1.0, -1.0]]) / 5,
                               **TOL[dt])
    e = make("bce", reduction="none").value(arr([0.2, 0.9, 1.0], dt), arr([0, 1, 1], dt))
    np.testing.assert_allclose(e[:2], [0.2231435513, 0.1053605157], **TOL[dt])
    if dt is np.float64:
        np.testing.assert_allclose(e[2], 1.0e-12, rtol=1e-3)
    else:
        assert 0 < e[2] < 2e-7


REG_TV = [("mse", {}, 1.75, [-1 / 3, 4 / 3, 2 / 3]),
          ("sse", {}, 2.625, [-0.5, 2, 1]),
          ("sse", {"half": False}, 5.25, [-1, 4, 2]),
          ("mae", {}, 1.1666666667, [-1 / 3, 1 / 3, 1 / 3]),
          ("huber", {"delta": 1}, 0.7083333333, [-1 / 6, 1 / 3, 1 / 3]),
          ("huber_norm", {"delta": 1}, 1.79128784747792,
           np.array([-0.5, 2, 1]) / 2.29128784747792),
          ("huber_norm", {"delta": 3}, 0.875, np.array([-0.5, 2, 1]) / 3)]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name,kw,value,grad", REG_TV)
def test_tv_loss_04_regression(dt, name, kw, value, grad):
    yp, y = arr([[0.5, 0, 4]], dt), arr([[1, -2, 3]], dt)
    v, g = make(name, **kw).value_and_grad(yp, y)
    np.testing.assert_allclose(v, value, **TOL[dt])
    np.testing.assert_allclose(g, [grad], **TOL[dt])
    assert g.dtype == dt


MARGIN_TV = [("hinge", [0, 0.7, 1.5, 2.0], [0, -1, -1, 1]),
             ("squared_hinge", [0, 0.49, 2.25, 4.0], [0, -1.4, -3.0, 4.0]),
             ("logistic", [0.126928011, 0.5543552445, 0.9740769842, 1.3132616875],
              [-0.119202922, -0.4255574832, -0.6224593312, 0.7310585786]),
             ("perceptron", [0, 0, 0.5, 1.0], [0, 0, -1, 1])]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name,values,grads", MARGIN_TV)
def test_tv_loss_05_margin(dt, name, values, grads):
    f, y = arr([2, 0.3, -0.5, 1.0], dt), arr([1, 1, 1, -1], dt)
    np.testing.assert_allclose(make(name, reduction="none").value(f, y), values, **TOL[dt])
    np.testing.assert_allclose(make(name, reduction="sum").grad(f, y), grads, **TOL[dt])
    np.testing.assert_allclose(make(name).value(f, y), np.mean(values), **TOL[dt])
    if name == "hinge":
        np.testing.assert_allclose(make(name).value(f, y), 1.05, **TOL[dt])


@pytest.mark.parametrize("dt", DTYPES)
def test_tv_loss_05_perceptron_tie_and_multiclass_hinge(dt):
    v, g = make("perceptron").value_and_grad(arr([0.0], dt), arr([1], dt))
    assert v == 0 and g[0] == -1
    v, g = make("multiclass_hinge").value_and_grad(arr([[3.2, 5.1, -1.7]], dt), np.array([0]))
    np.testing.assert_allclose(v, 2.9, **TOL[dt])
    np.testing.assert_allclose(g, [[-1, 1, 0]], **TOL[dt])


@pytest.mark.parametrize("dt", DTYPES)
def test_tv_loss_06_entropy_identity(dt):
    p, q = arr([[0.5, 0.25, 0.25]], dt), arr([[0.25, 0.5, 0.25]], dt)
    kl = make("kl_div").value(np.log(q), p)
    hpq = make("cross_entropy", from_probs=True).value(q, p)
    hp = make("cross_entropy", from_probs=True).value(p, p)
    np.testing.assert_allclose(kl, 0.17328679513998632, **TOL[dt])
    np.testing.assert_allclose(hpq, 1.2130075659799042, **TOL[dt])
    np.testing.assert_allclose(hp, 1.0397207708399179, **TOL[dt])
    np.testing.assert_allclose(make("cross_entropy").value(np.log(q), p), hpq, **TOL[dt])
    np.testing.assert_allclose(make("nll").value(np.log(q), p), hpq, **TOL[dt])
    np.testing.assert_allclose(hpq - hp, kl, **TOL[dt])


@pytest.mark.parametrize("dt", DTYPES)
def test_tv_loss_07_saturation(dt):
    z, y = arr([[10.0]], dt), arr([[0.0]], dt)
    yh = sig(z)
    sse_delta = make("sse", half=False, reduction="sum").grad(yh, y) * yh * (1 - yh)
    np.testing.assert_allclose(sse_delta, [[9.078749372597685e-05]], **TOL[dt])
    bce = make("bce", reduction="sum")
    np.testing.assert_allclose(bce.fused_output_grad(z, y), [[0.9999546021312976]], **TOL[dt])
    np.testing.assert_allclose(bce.grad(yh, y) * yh * (1 - yh), [[0.9999546021312976]],
                               rtol=1e-4 if dt is np.float32 else 1e-9)


# ----------------------------------------------------------------------------- naive references
def per_elem(e, average=True):
    def ref(yp, y):
        out = []
        for a_row, b_row in zip(yp.reshape(len(yp), -1), np.reshape(y, (len(yp), -1))):
            s = sum(e(float(a), float(b)) for a, b in zip(a_row, b_row))
            out.append(s / len(a_row) if average else s)
        return np.array(out)
    return ref


def huber_e(d):
    return lambda a, b: 0.5 * (a - b) ** 2 if abs(a - b) <= d else d * (abs(a - b) - d / 2)


def huber_norm_ref(d):
    def ref(yp, y):
        rho = [math.sqrt(sum((a - b) ** 2 for a, b in zip(r, s))) for r, s in zip(yp, y)]
        return np.array([p * p / (2 * d) if p <= d else p - d / 2 for p in rho])
    return ref


def bce_e(a, b):
    p = min(max(a, 1e-12), 1 - 1e-12)
    return -(b * math.log(p) + (1 - b) * math.log(1 - p))


def dist(y, k):
    y = np.asarray(y)
    return np.eye(k)[y] if y.dtype.kind == "i" else y


def ce_ref(smooth=0.0, probs=False):
    def ref(z, y):
        t = dist(y, z.shape[1]) * (1 - smooth) + smooth / z.shape[1]
        out = []
        for zr, tr in zip(z, t):
            p = zr if probs else [math.exp(v) / sum(math.exp(u) for u in zr) for v in zr]
            out.append(-sum(tk * math.log(pk) for tk, pk in zip(tr, p)))
        return np.array(out)
    return ref


def ce_map_ref(z, y):          # (N, K, H, W) logits, (N, H, W) labels: mean over pixels
    n, k, hh, ww = z.shape
    return np.array([np.mean([ce_ref()(z[i, :, a, b][None], y[i, a, b][None])[0]
                              for a in range(hh) for b in range(ww)]) for i in range(n)])


def nll_ref(q, y):
    return np.array([-sum(t * v for t, v in zip(tr, qr)) for qr, tr in zip(q, dist(y, q.shape[1]))])


def kl_ref(q, p):
    return np.array([sum(pk * (math.log(pk) - qk) if pk > 0 else -pk * qk
                         for pk, qk in zip(pr, qr)) for qr, pr in zip(q, p)])


def mch_ref(z, c):
    return np.array([sum(max(0.0, 1 - zr[ci] + zr[j]) for j in range(len(zr)) if j != ci)
                     for zr, ci in zip(z, c)])


def gce_sum_ref(z, y, g=3, alphas=(1.0, 2.0)):  # per-sample Σ_t α_t v_nt ℓ_nt
    out = []
    for zr, yr in zip(z, y):
        out.append(sum(a * ce_ref()(zr[t * g:(t + 1) * g][None], np.array([yr[t]]))[0]
                       for t, a in enumerate(alphas) if yr[t] != -1))
    return np.array(out)


def away_from_kink(f, y, m):
    f = f.copy()
    close = np.abs(m - y * f) < 1e-3
    f[close] += 0.05
    return f


def cases():
    """(id, name, kwargs, y_pred, y, naive per-sample) at smooth random points."""
    rng = np.random.default_rng(0)
    n = 4
    yp, y = rng.normal(size=(n, 3)), rng.normal(size=(n, 3)) * 1.5
    pm = rng.choice([-1.0, 1.0], size=(n, 2))
    f = rng.normal(size=(n, 2))
    z = rng.normal(size=(n, 3)) * 2
    soft = rng.dirichlet(np.ones(3), size=n)
    pk = soft.copy()
    pk[0, 1] = 0
    pk[0] /= pk[0].sum()
    lab = rng.integers(0, 3, size=n)
    c = [("mse", "mse", {}, yp, y, per_elem(lambda a, b: (a - b) ** 2)),
         ("sse_half", "sse", {}, yp, y, per_elem(lambda a, b: 0.5 * (a - b) ** 2, False)),
         ("sse_full", "sse", {"half": False}, yp, y, per_elem(lambda a, b: (a - b) ** 2, False)),
         ("mae", "mae", {}, yp, y, per_elem(lambda a, b: abs(a - b))),
         ("huber", "huber", {"delta": 1.0}, yp, y, per_elem(huber_e(1.0))),
         ("huber_half", "huber", {"delta": 0.5}, yp, y, per_elem(huber_e(0.5))),
         ("huber_norm1", "huber_norm", {"delta": 1.0}, yp, y, huber_norm_ref(1.0)),
         ("huber_norm9", "huber_norm", {"delta": 9.0}, yp, y, huber_norm_ref(9.0)),
         ("bce", "bce", {}, rng.uniform(0.05, 0.95, (n, 2)), rng.uniform(0, 1, (n, 2)),
          per_elem(bce_e)),
         ("bce_logits", "bce_with_logits", {}, f * 3, rng.uniform(0, 1, (n, 2)),
          per_elem(lambda a, b: -(b * math.log(sig(a)) + (1 - b) * math.log(1 - sig(a))))),
         ("bce_logits_1d", "bce_with_logits", {}, f[:, 0].copy(), rng.uniform(0, 1, n),
          per_elem(lambda a, b: -(b * math.log(sig(a)) + (1 - b) * math.log(1 - sig(a))))),
         ("hinge", "hinge", {}, away_from_kink(f, pm, 1), pm,
          per_elem(lambda a, b: max(0.0, 1 - a * b))),
         ("hinge_m2", "hinge", {"margin": 2.0}, away_from_kink(f, pm, 2), pm,
          per_elem(lambda a, b: max(0.0, 2 - a * b))),
         ("sq_hinge", "squared_hinge", {}, away_from_kink(f, pm, 1), pm,
          per_elem(lambda a, b: max(0.0, 1 - a * b) ** 2)),
         ("logistic", "logistic", {}, f, pm, per_elem(lambda a, b: math.log1p(math.exp(-a * b)))),
         ("perceptron", "perceptron", {}, away_from_kink(f, pm, 0), pm,
          per_elem(lambda a, b: max(0.0, -a * b))),
         ("ce_labels", "cross_entropy", {}, z, lab, ce_ref()),
         ("ce_soft", "cross_entropy", {}, z, soft, ce_ref()),
         ("ce_smooth", "cross_entropy", {"label_smoothing": 0.1}, z, lab, ce_ref(0.1)),
         ("ce_probs", "cross_entropy", {"from_probs": True}, softmax(z), soft, ce_ref(probs=True)),
         ("ce_map", "cross_entropy", {"axis": 1}, rng.normal(size=(2, 3, 2, 2)),
          rng.integers(0, 3, size=(2, 2, 2)), ce_map_ref),
         ("nll", "nll", {}, np.log(softmax(z)), lab, nll_ref),
         ("nll_soft", "nll", {}, z, soft, nll_ref),
         ("kl_div", "kl_div", {}, np.log(softmax(z)), pk, kl_ref),
         ("mc_hinge", "multiclass_hinge", {}, z, lab, mch_ref),
         ("gce", "grouped_cross_entropy", {"groups": 3, "task_weights": [1.0, 2.0]},
          rng.normal(size=(n, 6)), np.array([[0, 2], [1, -1], [2, 1], [-1, 0]]), gce_sum_ref)]
    return c


CASES = cases()
STANDARD = [cs for cs in CASES if cs[1] != "grouped_cross_entropy"]


@pytest.mark.parametrize("case", STANDARD, ids=[cs[0] for cs in STANDARD])
def test_reductions_and_sample_weights_match_naive(case):
    _, name, kw, yp, y, ref = case
    per = ref(yp, y)
    w = np.array([0.5, 2.0, 0.0, 1.5])[:yp.shape[0]]
    np.testing.assert_allclose(make(name, reduction="none", **kw).value(yp, y), per, rtol=1e-12)
    np.testing.assert_allclose(make(name, **kw).value(yp, y), per.mean(), rtol=1e-12)
    np.testing.assert_allclose(make(name, reduction="sum", **kw).value(yp, y), per.sum(),
                               rtol=1e-12)
    np.testing.assert_allclose(make(name, **kw).value(yp, y, sample_weight=w),
                               (w * per).sum() / w.sum(), rtol=1e-12)
    np.testing.assert_allclose(make(name, reduction="sum", **kw).value(yp, y, sample_weight=w),
                               (w * per).sum(), rtol=1e-12)
    np.testing.assert_allclose(make(name, reduction="none", **kw).value(yp, y, sample_weight=w),
                               w * per, rtol=1e-12)
    g_sum = make(name, reduction="sum", **kw).grad(yp, y)
    bshape = (-1,) + (1,) * (yp.ndim - 1)
    np.testing.assert_allclose(make(name, **kw).grad(yp, y), g_sum / len(yp), rtol=1e-12)
    np.testing.assert_allclose(make(name, **kw).grad(yp, y, sample_weight=w),
                               g_sum * (w / w.sum()).reshape(bshape), rtol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=[cs[0] for cs in CASES])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradient_matches_central_differences(case, reduction):
    _, name, kw, yp, y, _ = case
    loss = make(name, reduction=reduction, **kw)
    w = np.array([0.5, 2.0, 0.3, 1.5])[:yp.shape[0]]
    for sw in (None, w):
        f = (lambda x: np.sum(loss.value(x, y, sample_weight=sw)))
        assert_grad_close(loss.grad(yp, y, sample_weight=sw), numgrad(f, yp))


@pytest.mark.parametrize("case", CASES, ids=[cs[0] for cs in CASES])
def test_hess_output_matches_differences_of_per_sample_gradients(case):
    _, name, kw, yp, y, _ = case
    loss = make(name, reduction="none", **kw)
    n, d = yp.shape[0], yp[0].size
    hess = loss.hess_output(yp, y)
    assert hess.shape == (n, d, d)
    fd = np.zeros_like(hess)
    h = 1e-6
    for j in range(d):
        e = np.zeros((n, d))
        e[:, j] = h
        e = e.reshape(yp.shape)
        diff = loss.grad(yp + e, y) - loss.grad(yp - e, y)
        fd[:, :, j] = diff.reshape(n, d) / (2 * h)
    np.testing.assert_allclose(hess, fd, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hess, hess.transpose(0, 2, 1), atol=1e-12)


def test_hess_output_spec_table():
    rng = np.random.default_rng(1)
    yp, y, z = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    eye = np.eye(4)
    np.testing.assert_allclose(make("sse").hess_output(yp, y), np.broadcast_to(eye, (3, 4, 4)))
    np.testing.assert_allclose(make("mse").hess_output(yp, y), np.broadcast_to(eye / 2, (3, 4, 4)))
    s = sig(z)
    np.testing.assert_allclose(make("bce_with_logits").hess_output(z, (y > 0) * 1.0),
                               np.einsum("ni,ij->nij", s * (1 - s) / 4, eye), rtol=1e-12)
    p = softmax(z)
    np.testing.assert_allclose(make("cross_entropy").hess_output(z, np.array([0, 1, 3])),
                               np.einsum("ni,ij->nij", p, eye) - p[:, :, None] * p[:, None, :],
                               rtol=1e-12, atol=1e-15)
    for name in ("mae", "hinge", "perceptron"):
        t = np.sign(y) if name != "mae" else y
        assert not make(name).hess_output(yp, t).any()


# ----------------------------------------------------------------------------- fused pairs
@pytest.mark.parametrize("targets", ["labels", "soft"])
def test_fused_cross_entropy_equals_unfused_softmax_chain(targets):
    rng = np.random.default_rng(2)
    s = rng.normal(size=(5, 4)) * 2
    y = rng.integers(0, 4, 5) if targets == "labels" else rng.dirichlet(np.ones(4), 5)
    ce = make("cross_entropy")
    assert ce.fused_activation == "softmax"
    v_f, g_f = ce.fused_value_and_grad(s, y)
    p = softmax(s)
    v_u, dp = make("cross_entropy", from_probs=True).value_and_grad(p, y)
    dz = p * (dp - (dp * p).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(v_f, v_u, rtol=1e-12)
    np.testing.assert_allclose(g_f, dz, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(ce.fused_output_grad(s, y), ce.grad(s, y), rtol=1e-14)
    np.testing.assert_allclose(g_f, (p - dist(y, 4)) / 5, rtol=1e-12, atol=1e-15)


def test_fused_bce_equals_unfused_sigmoid_chain():
    rng = np.random.default_rng(3)
    s, y = rng.normal(size=(5, 3)) * 3, rng.uniform(0, 1, (5, 3))
    bce = make("bce", reduction="sum")
    assert bce.fused_activation == "sigmoid"
    v_f, g_f = bce.fused_value_and_grad(s, y)
    p = sig(s)
    v_u, dp = bce.value_and_grad(p, y)
    np.testing.assert_allclose(v_f, v_u, rtol=1e-12)
    np.testing.assert_allclose(g_f, dp * p * (1 - p), rtol=1e-9)
    np.testing.assert_allclose(g_f, (p - y) / 3, rtol=1e-12)
    bl = make("bce_with_logits", reduction="sum").value_and_grad(s, y)
    np.testing.assert_allclose(v_f, bl[0], rtol=1e-14)
    np.testing.assert_allclose(g_f, bl[1], rtol=1e-14)


@pytest.mark.parametrize("dt", DTYPES)
def test_no_overflow_for_logits_of_1000(dt):
    z = arr([[1000, -1000, 0], [-1000, -1000, 1000], [1000, 1000, 1000]], dt)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        v, g = make("cross_entropy", reduction="none").value_and_grad(z, np.array([0, 1, 2]))
        np.testing.assert_allclose(v, [0, 2000, math.log(3)], rtol=1e-6)
        assert np.isfinite(g).all()
        assert np.isfinite(make("cross_entropy").hess_output(z, np.array([0, 1, 2]))).all()
        zz, yy = z.reshape(-1), arr([1, 0, 1, 0, 1, 0, 1, 1, 1], dt)
        for name in ("bce_with_logits", "logistic"):
            t = yy if name == "bce_with_logits" else 2 * yy - 1
            v, g = make(name, reduction="none").value_and_grad(zz, t)
            assert np.isfinite(v).all() and np.isfinite(g).all() and v.max() == 1000
        v, g = make("bce", reduction="none").fused_value_and_grad(zz, yy)
        assert np.isfinite(v).all() and v.max() == 1000 and np.abs(g).max() == 1
        v, g = make("bce").value_and_grad(arr([0, 1, 0, 1], dt), arr([1, 0, 0, 1], dt))
        assert np.isfinite(v) and np.isfinite(g).all()
        v, g = make("grouped_cross_entropy", groups=3).value_and_grad(
            z.reshape(1, 9), np.array([[0, 1, 2]]))
        assert np.isfinite(v) and np.isfinite(g).all()


# ----------------------------------------------------------------------------- cross-entropy details
def test_cross_entropy_label_smoothing_and_float_labels():
    z = arr([[1, 2, 3], [1, -1, 0.5]])
    t = np.eye(3)[[1, 0]] * 0.8 + 0.2 / 3
    sm = make("cross_entropy", label_smoothing=0.2)
    np.testing.assert_allclose(sm.value(z, np.array([1, 0])), make("cross_entropy").value(z, t),
                               rtol=1e-14)
    np.testing.assert_allclose(sm.grad(z, np.array([1, 0])), (softmax(z) - t) / 2, rtol=1e-12)
    np.testing.assert_allclose(make("cross_entropy").value(z, arr([1.0, 0.0])), 0.9812814420431855,
                               rtol=1e-12)


def test_cross_entropy_axis1_maps_match_per_pixel_loop():
    rng = np.random.default_rng(4)
    z, y = rng.normal(size=(2, 3, 2, 4)), rng.integers(0, 3, size=(2, 2, 4))
    ce = make("cross_entropy", axis=1, reduction="none")
    v, g = ce.value_and_grad(z, y)
    zl = np.moveaxis(z, 1, -1).reshape(-1, 3)
    ref_v, ref_g = make("cross_entropy", reduction="none").value_and_grad(zl, y.reshape(-1))
    np.testing.assert_allclose(v, ref_v.reshape(2, 8).mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(g, np.moveaxis(ref_g.reshape(2, 2, 4, 3), -1, 1) / 8, rtol=1e-12)
    soft = np.moveaxis(np.eye(3)[y], -1, 1)
    np.testing.assert_allclose(ce.value(z, soft), v, rtol=1e-12)


def test_kernel_is_used_and_matches_numpy_fallback(monkeypatch):
    kernels = pytest.importorskip("corenet.kernels")
    assert L._kernel("softmax_cross_entropy") is kernels.softmax_cross_entropy
    rng = np.random.default_rng(5)
    z, y = rng.normal(size=(6, 5)), rng.integers(0, 5, 6)
    soft = rng.dirichlet(np.ones(5), 6)
    ce = make("cross_entropy", reduction="none")
    with_kernel = [ce.value_and_grad(z, t) for t in (y, soft)]
    monkeypatch.setattr(L, "_KERNELS", False)
    assert L._kernel("softmax_cross_entropy") is None
    for t, (v, g) in zip((y, soft), with_kernel):
        v2, g2 = ce.value_and_grad(z, t)
        np.testing.assert_allclose(v, v2, rtol=1e-12)
        np.testing.assert_allclose(g, g2, rtol=1e-12, atol=1e-16)


# ----------------------------------------------------------------------------- task losses
def test_grouped_cross_entropy_per_task_means_d58():
    rng = np.random.default_rng(6)
    z = rng.normal(size=(4, 6))
    y = np.array([[0, 2], [1, -1], [2, -1], [-1, 0]])
    w = np.array([1.0, 2.0, 0.5, 3.0])
    ce_rows = [make("cross_entropy", reduction="none").value(z[:, 3 * t:3 * t + 3].copy(),
                                                             np.maximum(y[:, t], 0))
               for t in range(2)]
    valid = y != -1
    gce = make("grouped_cross_entropy", groups=3, task_weights=[1.0, 2.0])
    expect = ce_rows[0][valid[:, 0]].mean() + 2 * ce_rows[1][valid[:, 1]].mean()
    np.testing.assert_allclose(gce.value(z, y), expect, rtol=1e-12)
    expect_w = sum(a * (w * valid[:, t] * ce_rows[t]).sum() / (w * valid[:, t]).sum()
                   for t, a in enumerate([1.0, 2.0]))
    np.testing.assert_allclose(gce.value(z, y, sample_weight=w), expect_w, rtol=1e-12)
    g = gce.grad(z, y)
    assert not g[1, 3:].any() and not g[2, 3:].any() and not g[3, :3].any()
    # one-hot targets with NaN rows for the missing labels give the same loss
    oh = np.eye(3)[np.maximum(y, 0)]
    oh[~valid] = np.nan
    np.testing.assert_allclose(gce.value(z, oh), expect, rtol=1e-12)
    np.testing.assert_allclose(gce.value(z, np.where(valid, y, np.nan)), expect, rtol=1e-12)
    # sum / none: no per-task normalisation
    s = make("grouped_cross_entropy", groups=3, task_weights=[1.0, 2.0], reduction="sum")
    np.testing.assert_allclose(s.value(z, y), gce_sum_ref(z, y).sum(), rtol=1e-12)
    # a task without valid samples contributes 0
    y2 = y.copy()
    y2[:, 1] = -1
    np.testing.assert_allclose(gce.value(z, y2), ce_rows[0][valid[:, 0]].mean(), rtol=1e-12)
    assert not gce.grad(z, y2)[:, 3:].any()
    with pytest.raises(ValueError, match="missing"):
        make("grouped_cross_entropy", groups=3, missing="error").value(z, y)


def test_grouped_cross_entropy_one_task_equals_cross_entropy():
    rng = np.random.default_rng(7)
    z, y = rng.normal(size=(5, 4)), rng.integers(0, 4, 5)
    gce, ce = make("grouped_cross_entropy", groups=4), make("cross_entropy")
    np.testing.assert_allclose(gce.value(z, y[:, None]), ce.value(z, y), rtol=1e-14)
    np.testing.assert_allclose(gce.grad(z, y), ce.grad(z, y), rtol=1e-14)


def multitask_setup():
    rng = np.random.default_rng(8)
    yp = rng.normal(size=(5, 5))
    y = np.column_stack([rng.integers(0, 3, 5).astype(float), rng.normal(size=(5, 2))])
    y[1, 0] = np.nan          # missing class label for head 0
    y[3, 1] = np.nan          # missing regression target for head 1
    spec = [{"name": "cross_entropy", "columns": [0, 3], "target_columns": 0},
            {"name": "mse", "columns": [3, 5], "target_columns": [1, 3], "weight": 0.5}]
    return yp, y, spec


def test_multitask_weighted_sum_of_heads_with_missing_rows():
    yp, y, spec = multitask_setup()
    mt = make("multitask", losses=spec)
    v0 = np.array([0, 2, 3, 4])
    v1 = np.array([0, 1, 2, 4])
    head0 = make("cross_entropy").value(yp[v0, :3].copy(), y[v0, 0].astype(int))
    head1 = make("mse").value(yp[v1, 3:].copy(), y[v1, 1:])
    np.testing.assert_allclose(mt.value(yp, y), head0 + 0.5 * head1, rtol=1e-12)
    g = mt.grad(yp, y)
    assert not g[1, :3].any() and not g[3, 3:].any()
    assert_grad_close(g, numgrad(lambda x: mt.value(x, y), yp))
    listed = [y[:, 0], y[:, 1:]]
    np.testing.assert_allclose(mt.value(yp, listed), mt.value(yp, y), rtol=1e-14)
    mts = make("multitask", losses=spec, reduction="sum")
    assert_grad_close(mts.grad(yp, y), numgrad(lambda x: mts.value(x, y), yp))
    hess = mts.hess_output(yp, y)
    assert hess.shape == (5, 5, 5) and not hess[:, :3, 3:].any()
    np.testing.assert_allclose(hess[3, 3:, 3:], 0)
    np.testing.assert_allclose(hess[0, 3:, 3:], 0.5 * np.eye(2), rtol=1e-14)
    with pytest.raises(ShapeError):
        mt.value(yp[:, :4].copy(), y)


# ----------------------------------------------------------------------------- float32
@pytest.mark.parametrize("case", CASES, ids=[cs[0] for cs in CASES])
def test_float32_matches_float64(case):
    _, name, kw, yp, y, _ = case
    loss = make(name, reduction="none", **kw)
    y32 = y.astype(np.float32) if y.dtype.kind == "f" else y
    v32, g32 = loss.value_and_grad(yp.astype(np.float32), y32)
    v64, g64 = loss.value_and_grad(yp, y)
    assert v32.dtype == np.float32 and g32.dtype == np.float32
    np.testing.assert_allclose(v32, v64, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- errors
def test_label_errors_name_loss_range_and_value():
    z = arr([[1, 2, 3], [1, -1, 0.5]])
    with pytest.raises(ValueError, match=r"'cross_entropy'.*\[0, 2\].*got 3"):
        make("cross_entropy").value(z, np.array([1, 3]))
    for bad in (np.array([-1, 0]), arr([0.5, 1])):
        with pytest.raises(ValueError):
            make("cross_entropy").value(z, bad)
    with pytest.raises(ValueError, match=r"'nll'.*got 7"):
        make("nll").value(z, np.array([7, 0]))
    with pytest.raises(ValueError, match=r"'multiclass_hinge'.*got 3"):
        make("multiclass_hinge").value(z, np.array([3, 0]))
    with pytest.raises(ValueError, match=r"'grouped_cross_entropy'.*\[0, 2\].*got 3"):
        make("grouped_cross_entropy", groups=3).value(z.reshape(1, 6), np.array([[3, 0]]))
    for name in ("hinge", "squared_hinge", "logistic", "perceptron"):
        with pytest.raises(ValueError, match=rf"'{name}'.*-1, \+1.*got value 0"):
            make(name).value(arr([0.5, 1]), arr([1, 0]))
    for name in ("bce", "bce_with_logits"):
        with pytest.raises(ValueError, match=rf"'{name}'.*\[0, 1\].*1.5"):
            make(name).value(arr([0.5, 0.2]), arr([1, 1.5]))
    with pytest.raises(ValueError, match="'kl_div'"):
        make("kl_div").value(np.log(arr([[0.5, 0.5]])), arr([[1.5, -0.5]]))


def test_shape_and_nan_errors():
    z = arr([[1, 2, 3], [1, -1, 0.5]])
    for name in ("mse", "bce_with_logits", "mae"):
        with pytest.raises(ShapeError, match=name):
            make(name).value(z, z[:, :2])
    with pytest.raises(ShapeError):
        make("cross_entropy").value(z, np.zeros((2, 4)))
    with pytest.raises(ShapeError):
        make("cross_entropy").value(z[0], np.array(1))
    with pytest.raises(ShapeError):
        make("kl_div").value(z, np.array([0, 1]))
    with pytest.raises(ShapeError):
        make("grouped_cross_entropy", groups=4).value(z, np.array([0, 1]))
    with pytest.raises(ShapeError):
        make("grouped_cross_entropy", groups=3, task_weights=[1, 1]).value(z, np.array([0, 1]))
    with pytest.raises(ShapeError):
        make("mse").value(z, z, sample_weight=np.ones(3))
    with pytest.raises(DTypeError):
        make("mse").value(z.astype(int), z)
    nan = z.copy()
    nan[0, 0] = np.nan
    for name in ("mse", "huber_norm", "sse"):
        with pytest.raises(NotFiniteError):
            make(name).value(z, nan)
    with pytest.raises(NotFiniteError):
        make("cross_entropy").value(z, softmax(nan))
    with pytest.raises(NotFiniteError):
        make("cross_entropy").value(z, arr([np.nan, 1]))


def test_hyperparameter_errors():
    for name, kw in [("huber", {"delta": 0}), ("huber_norm", {"delta": -1}),
                     ("hinge", {"margin": -1}), ("cross_entropy", {"label_smoothing": 1.5}),
                     ("mse", {"reduction": "avg"}), ("grouped_cross_entropy", {"groups": 0}),
                     ("grouped_cross_entropy", {"groups": 2, "missing": "drop"}),
                     ("multitask", {"losses": []}),
                     ("multitask", {"losses": [{"name": "mse"}]}),
                     ("multitask", {"losses": [{"name": "mse", "columns": [2, 1]}]})]:
        with pytest.raises(HyperparameterError):
            make(name, **kw)


# ----------------------------------------------------------------------------- registry
@pytest.mark.parametrize("name", NAMES)
def test_registry_lookup(name):
    cls = registry.get("loss", name)
    assert cls.name == name and cls.__module__ == "corenet.losses"
    assert cls in L.corenet_register_losses()


@pytest.mark.parametrize("case", CASES + [("mt", "multitask", {"losses": multitask_setup()[2]},
                                           None, None, None)], ids=lambda c: c[0])
def test_get_config_round_trip(case):
    _, name, kw, *_ = case
    loss = make(name, reduction="sum", **kw)
    cfg = loss.get_config()
    assert cfg["reduction"] == "sum"
    again = type(loss)(**cfg)
    assert again.get_config() == cfg
    assert repr(loss).startswith(type(loss).__name__)

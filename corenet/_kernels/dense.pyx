# cython: language_level=3
"""A compiled training step for stacks of dense layers (the fast path of the trainer).

One call runs forward, the loss and its output gradient, backward and the update (SGD,
momentum, Nesterov, Adam, AdamW) of every layer, without the GIL and without allocating:
``Y = X Wᵀ + b`` and the gradients go through ``scipy.linalg.cython_blas`` GEMMs on
row-major arrays (operands swapped, never copied); activations use the loops of
``activations.pyx``; cross-entropy uses the row kernel of ``softmax_ce.pyx``.

Private module: :mod:`corenet.fastpath` decides when a model qualifies, validates every
array and owns the buffers (the parameters' own ``data``/``grad``/``mask`` and the
optimizer's momentum buffers are used in place, so both paths share one state).
The math is the same as the layer-by-layer path (networks.md §1-4, optimizers.md §1-3).
"""
cimport numpy as cnp
from cython cimport floating
from libc.stdint cimport int64_t
from libc.math cimport sqrt
from libc.stdlib cimport calloc, free
from scipy.linalg.cython_blas cimport dgemm, dgemv, sgemm, sgemv

from corenet._kernels.activations cimport _fwd, _bwd
from corenet._kernels.softmax_ce cimport _ce_row

cnp.import_array()

cdef enum:
    LOSS_MSE = 0          # (1/K) Σ r²           grad 2r/K
    LOSS_SSE_HALF = 1     # ½ Σ r²               grad r
    LOSS_SSE = 2          # Σ r²                 grad 2r
    LOSS_CE_LABELS = 3    # softmax CE, int64 labels
    LOSS_CE_DENSE = 4     # softmax CE, float targets

LOSSES = {"mse": LOSS_MSE, "sse_half": LOSS_SSE_HALF, "sse": LOSS_SSE,
          "ce_labels": LOSS_CE_LABELS, "ce_dense": LOSS_CE_DENSE}

ctypedef struct LayerSlot:
    void* W          # (dout, din) weights
    void* b          # (dout,) bias or NULL
    void* gW         # gradients (written, not accumulated: the trainer zeroes them anyway)
    void* gb
    void* mW         # masks or NULL
    void* mb
    void* vW         # momentum buffers / Adam first moments, or NULL
    void* vb
    void* sW         # Adam second moments, or NULL
    void* sb
    void* S          # (B, dout) pre-activations
    void* A          # (B, dout) outputs (== S for identity)
    void* D          # (B, dout) deltas
    void* dX         # (B, din) gradient w.r.t. the input (NULL for the first layer)
    int din, dout, act
    double p1, p2
    bint from_y, decay_W, decay_b, train_W, train_b


cdef inline void _gemm(char ta, char tb, int m, int n, int k, floating alpha,
                       floating* a, int lda, floating* b, int ldb, floating beta,
                       floating* c, int ldc) noexcept nogil:
    if floating is float:
        sgemm(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc)
    else:
        dgemm(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc)


cdef inline void _gemv(char ta, int m, int n, floating alpha, floating* a, int lda,
                       floating* x, floating beta, floating* y) noexcept nogil:
    cdef int one = 1
    if floating is float:
        sgemv(&ta, &m, &n, &alpha, a, &lda, x, &one, &beta, y, &one)
    else:
        dgemv(&ta, &m, &n, &alpha, a, &lda, x, &one, &beta, y, &one)


cdef void _forward(LayerSlot* L, floating* X, int B) noexcept nogil:
    """S = X Wᵀ + b (row-major: Sᵀ = W·Xᵀ in column-major terms); A = f(S)."""
    cdef floating* S = <floating*>L.S
    cdef floating* b = <floating*>L.b
    cdef Py_ssize_t i, j
    cdef int dout = L.dout
    if b != NULL:
        for i in range(B):
            for j in range(dout):
                S[i * dout + j] = b[j]
    if B == 1:   # one sample: s = W x (+ b) is a matrix-vector product
        _gemv(c'T', L.din, dout, <floating>1.0, <floating*>L.W, L.din, X,
              <floating>(1.0 if b != NULL else 0.0), S)
    else:
        _gemm(c'T', c'N', dout, B, L.din, <floating>1.0, <floating*>L.W, L.din, X, L.din,
              <floating>(1.0 if b != NULL else 0.0), S, dout)
    if L.A != L.S:
        _fwd(L.act, <const floating*>S, <floating*>L.A, 0, <Py_ssize_t>B * dout, L.p1, L.p2)


cdef double _loss_grad(int loss, LayerSlot* L, floating* Y, int64_t* labels,
                       int B) noexcept nogil:
    """Mean batch loss; writes ∂L/∂(output) into L.D (∂L/∂logits for cross-entropy)."""
    cdef floating* out = <floating*>L.A
    cdef floating* D = <floating*>L.D
    cdef int K = L.dout
    cdef Py_ssize_t i, n = <Py_ssize_t>B * K
    cdef double total = 0.0, r, inv_b = 1.0 / B
    if loss == LOSS_CE_LABELS or loss == LOSS_CE_DENSE:
        for i in range(B):
            total += _ce_row(<const floating*>(out + i * K),
                             <const floating*>(NULL if loss == LOSS_CE_LABELS else Y + i * K),
                             labels[i] if loss == LOSS_CE_LABELS else 0, D + i * K, K)
        for i in range(n):
            D[i] = <floating>(D[i] * inv_b)
        return total * inv_b
    for i in range(n):
        r = out[i] - Y[i]
        if loss == LOSS_MSE:
            total += r * r / K
            D[i] = <floating>(2.0 * r / K * inv_b)
        elif loss == LOSS_SSE_HALF:
            total += 0.5 * r * r
            D[i] = <floating>(r * inv_b)
        else:
            total += r * r
            D[i] = <floating>(2.0 * r * inv_b)
    return total * inv_b


cdef void _backward(LayerSlot* L, floating* X, int B) noexcept nogil:
    """D ← D ⊙ f′(S); gW = Dᵀ X; gb = Σ_n D; dX = D W."""
    cdef floating* D = <floating*>L.D
    cdef floating* gb = <floating*>L.gb
    cdef Py_ssize_t i, j
    cdef int dout = L.dout
    if L.A != L.S:
        _bwd(L.act, <const floating*>(L.A if L.from_y else L.S), <const floating*>D, D, 0,
             <Py_ssize_t>B * dout, L.p1, L.p2, L.from_y)
    if L.train_W:
        _gemm(c'N', c'T', L.din, dout, B, <floating>1.0, X, L.din, D, dout, <floating>0.0,
              <floating*>L.gW, L.din)
    if gb != NULL and L.train_b:
        for j in range(dout):
            gb[j] = 0
        for i in range(B):
            for j in range(dout):
                gb[j] += D[i * dout + j]
    if L.dX != NULL:
        if B == 1:   # dx = Wᵀ d
            _gemv(c'N', L.din, dout, <floating>1.0, <floating*>L.W, L.din, D,
                  <floating>0.0, <floating*>L.dX)
        else:
            _gemm(c'N', c'N', L.din, B, dout, <floating>1.0, <floating*>L.W, L.din, D, dout,
                  <floating>0.0, <floating*>L.dX, L.din)


cdef inline double _effective_grad(floating* w, floating* g, floating* mask, Py_ssize_t i,
                                   double wd) noexcept nogil:
    """The gradient an optimizer sees: masked (pruning.md §1), plus coupled decay λθ."""
    cdef double gi = g[i]
    if mask != NULL:
        gi = gi * mask[i]
    if wd != 0.0:
        gi = gi + wd * w[i]
    return gi


cdef void _sgd(floating* w, floating* g, floating* mask, floating* v, Py_ssize_t n,
               double lr, double mu, double tau, bint nesterov, double wd) noexcept nogil:
    """optimizers.md §1-3 with coupled weight decay; masks on g before and on w after.

    The common cases (no mask, no decay, no dampening) run branch-free loops in the array
    dtype, as NumPy's in-place updates of the layer path do; the rest the general loop."""
    cdef Py_ssize_t i
    cdef double gi
    cdef floating lr_f = <floating>lr, mu_f = <floating>mu
    if mask == NULL and wd == 0.0 and tau == 0.0:
        if v == NULL:
            for i in range(n):
                w[i] = w[i] - lr_f * g[i]
        elif nesterov:
            for i in range(n):
                v[i] = mu_f * v[i] + g[i]
                w[i] = w[i] - lr_f * (g[i] + mu_f * v[i])
        else:
            for i in range(n):
                v[i] = mu_f * v[i] + g[i]
                w[i] = w[i] - lr_f * v[i]
        return
    for i in range(n):
        gi = _effective_grad(w, g, mask, i, wd)
        if v == NULL:
            w[i] = <floating>(w[i] - lr * gi)
        else:
            v[i] = <floating>(mu * v[i] + (1.0 - tau) * gi if tau != 0.0 else mu * v[i] + gi)
            if nesterov:
                w[i] = <floating>(w[i] - lr * (gi + mu * v[i]))
            else:
                w[i] = <floating>(w[i] - lr * v[i])
        if mask != NULL:
            w[i] = w[i] * mask[i]


cdef void _adam(floating* w, floating* g, floating* mask, floating* m, floating* v,
                Py_ssize_t n, double lr, double b1, double b2, double eps, double c1,
                double c2, double wd, double dwd) noexcept nogil:
    """optimizers.md §9 (Adam, bias-corrected by c1 = 1 − β₁ᵗ, c2 = 1 − β₂ᵗ; ε outside
    the root) with coupled (wd) and decoupled (dwd, AdamW) weight decay."""
    cdef Py_ssize_t i
    cdef double gi, mi, vi
    for i in range(n):
        gi = _effective_grad(w, g, mask, i, wd)
        if dwd != 0.0:
            w[i] = <floating>(w[i] - lr * dwd * w[i])
        mi = b1 * m[i] + (1.0 - b1) * gi
        vi = b2 * v[i] + (1.0 - b2) * (gi * gi)
        m[i] = <floating>mi
        v[i] = <floating>vi
        w[i] = <floating>(w[i] - (lr / c1) * (<double>m[i] / (sqrt(<double>v[i] / c2) + eps)))
        if mask != NULL:
            w[i] = w[i] * mask[i]


ctypedef struct Rule:
    int kind            # 0 sgd, 1 adam
    double lr, mu, tau, wd, dwd, b1, b2, eps, c1, c2
    bint nesterov


cdef double _step(LayerSlot* layers, int n_layers, floating* X, floating* Y, int64_t* labels,
                  int B, int loss, Rule* rule) noexcept nogil:
    cdef int l
    cdef floating* inp
    cdef double value
    cdef LayerSlot* L
    for l in range(n_layers):
        inp = X if l == 0 else <floating*>layers[l - 1].A
        _forward(&layers[l], inp, B)
    value = _loss_grad(loss, &layers[n_layers - 1], Y, labels, B)
    for l in range(n_layers - 1, -1, -1):
        inp = X if l == 0 else <floating*>layers[l - 1].A
        _backward(&layers[l], inp, B)   # its dX is the delta buffer D of layer l-1
    for l in range(n_layers):
        L = &layers[l]
        if L.train_W:
            _update(rule, <floating*>L.W, <floating*>L.gW, <floating*>L.mW, <floating*>L.vW,
                    <floating*>L.sW, <Py_ssize_t>L.din * L.dout, L.decay_W)
        if L.b != NULL and L.train_b:
            _update(rule, <floating*>L.b, <floating*>L.gb, <floating*>L.mb, <floating*>L.vb,
                    <floating*>L.sb, L.dout, L.decay_b)
    return value


cdef inline void _update(Rule* r, floating* w, floating* g, floating* mask, floating* v,
                         floating* s, Py_ssize_t n, bint decay) noexcept nogil:
    cdef double wd = r.wd if decay else 0.0
    cdef double dwd = r.dwd if decay else 0.0
    if r.kind == 0:
        _sgd(w, g, mask, v, n, r.lr, r.mu, r.tau, r.nesterov, wd)
    else:
        _adam(w, g, mask, v, s, n, r.lr, r.b1, r.b2, r.eps, r.c1, r.c2, wd, dwd)


cdef inline void* _ptr(object arr):
    if arr is None:
        return NULL
    return cnp.PyArray_DATA(<cnp.ndarray>arr)


cdef class DenseTrainStep:
    """Holds the raw pointers of one model's arrays for a fixed batch size.

    ``spec`` is a list of dicts (one per layer) prepared and validated by
    :mod:`corenet.fastpath`; the arrays must stay alive (the plan keeps references)."""

    cdef LayerSlot* layers
    cdef int n_layers, batch, loss, is_double
    cdef Rule rule
    cdef object keep

    def __cinit__(self, list spec, int batch, int loss, bint is_double):
        self.n_layers = len(spec)
        self.batch = batch
        self.loss = loss
        self.is_double = is_double
        self.keep = spec
        self.layers = <LayerSlot*>calloc(self.n_layers, sizeof(LayerSlot))
        if self.layers == NULL:
            raise MemoryError()
        cdef int i
        for i in range(self.n_layers):
            s = spec[i]
            L = &self.layers[i]
            L.W, L.b = _ptr(s["W"]), _ptr(s["b"])
            L.gW, L.gb = _ptr(s["gW"]), _ptr(s["gb"])
            L.mW, L.mb = _ptr(s["mW"]), _ptr(s["mb"])
            L.vW, L.vb = _ptr(s["vW"]), _ptr(s["vb"])
            L.sW, L.sb = _ptr(s["sW"]), _ptr(s["sb"])
            L.S, L.A, L.D, L.dX = _ptr(s["S"]), _ptr(s["A"]), _ptr(s["D"]), _ptr(s["dX"])
            L.din, L.dout, L.act = s["din"], s["dout"], s["act"]
            L.p1, L.p2, L.from_y = s["p1"], s["p2"], s["from_y"]
            L.decay_W, L.decay_b = s["decay_W"], s["decay_b"]
            L.train_W, L.train_b = s["train_W"], s["train_b"]

    def __dealloc__(self):
        free(self.layers)

    def set_sgd(self, double lr, double mu, double tau, bint nesterov, double wd):
        """SGD / momentum / Nesterov hyperparameters (optimizers.md §1-3)."""
        self.rule.kind = 0
        self.rule.lr, self.rule.mu, self.rule.tau = lr, mu, tau
        self.rule.nesterov, self.rule.wd, self.rule.dwd = nesterov, wd, 0.0

    def set_adam(self, double lr, double b1, double b2, double eps, double wd, double dwd):
        """Adam / AdamW hyperparameters (optimizers.md §9-10)."""
        self.rule.kind = 1
        self.rule.lr, self.rule.b1, self.rule.b2, self.rule.eps = lr, b1, b2, eps
        self.rule.wd, self.rule.dwd = wd, dwd

    def set_bias_correction(self, double c1, double c2):
        self.rule.c1, self.rule.c2 = c1, c2

    def set_moments(self, int i, vW, vb, sW, sb):
        """Adam's first (v*) and second (s*) moment arrays of layer i."""
        self.keep[i]["vW"], self.keep[i]["vb"] = vW, vb
        self.keep[i]["sW"], self.keep[i]["sb"] = sW, sb
        self.layers[i].vW, self.layers[i].vb = _ptr(vW), _ptr(vb)
        self.layers[i].sW, self.layers[i].sb = _ptr(sW), _ptr(sb)

    def set_loss(self, int loss):
        self.loss = loss

    def step(self, X, Y, labels):
        """One update on a full batch (arrays validated by the caller); returns the loss."""
        cdef void* xp = _ptr(X)
        cdef void* yp = _ptr(Y)
        cdef int64_t* lp = <int64_t*>_ptr(labels)
        cdef double value
        with nogil:
            if self.is_double:
                value = _step[double](self.layers, self.n_layers, <double*>xp, <double*>yp,
                                      lp, self.batch, self.loss, &self.rule)
            else:
                value = _step[float](self.layers, self.n_layers, <float*>xp, <float*>yp, lp,
                                     self.batch, self.loss, &self.rule)
        return value

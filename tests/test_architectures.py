"""Freezing for transfer learning, autoencoders (tied, denoising) and Siamese networks
(regularization.md §3.1, §4.1-4.2)."""
import numpy as np
import pytest

import corenet
import corenet.plugins
from corenet import Graph, Sequential, Trainer, registry
from corenet import testing as ct
from corenet.architectures import autoencoder, encode, freeze, make_pairs, siamese, unfreeze
from corenet.layers import special


@pytest.fixture(autouse=True, scope="module")
def special_layers():
    """Register corenet.layers.special when its entry point is not declared yet."""
    name = None
    if "sigma_pi" not in registry.names("layer"):
        name = corenet.plugins.register(special, name="corenet_layers_special")
    yield
    if name is not None:
        corenet.plugins.unregister(name=name)


def _mlp(seed=0):
    return Sequential([{"name": "dense", "out_features": 6, "activation": "tanh"},
                       {"name": "dense", "out_features": 5, "activation": "tanh"},
                       {"name": "dense", "out_features": 2}], random_state=seed,
                      input_shape=(4,))


def _data(seed=0, n=32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4)), rng.standard_normal((n, 2))


# ----------------------------------------------------------------------------- freezing
@pytest.mark.parametrize("optimizer", [{"name": "sgd", "lr": 0.05, "momentum": 0.9,
                                        "weight_decay": 0.01},
                                       {"name": "adam", "lr": 0.01, "weight_decay": 0.01}])
def test_frozen_layer_gets_no_update(optimizer):
    X, Y = _data()
    model = _mlp()
    freeze(model, ["1"])
    assert [p.name for p in model.trainable_parameters()] == ["0.weight", "0.bias",
                                                              "2.weight", "2.bias"]
    before = [p.data.copy() for p in model.parameters()]
    trainer = Trainer(model, loss="mse", optimizer=optimizer)
    trainer.fit(X, Y, epochs=4, batch_size=8)
    if optimizer["name"] == "sgd":
        assert trainer._fast is not None              # the compiled dense step ran
    after = model.parameters()
    for p, b in zip(after, before):
        frozen = p.name.startswith("1.")
        assert np.array_equal(p.data, b) == frozen, p.name
    assert not any(p.grad.any() for p in model.layers[1].parameters())


def test_gradients_flow_through_frozen_layers():
    X, Y = _data(1, n=8)
    frozen, free = _mlp(2), _mlp(2)
    freeze(frozen, "1")
    loss = registry.create("loss", "mse")
    for m in (frozen, free):
        m.zero_grad()
        m.backward(loss.grad(m.forward(X), Y))
    np.testing.assert_array_equal(frozen.layers[0].W.grad, free.layers[0].W.grad)
    ct.check_gradients(frozen, "mse", X, Y).assert_ok()
    assert frozen.get_flat_parameters().size == free.get_flat_parameters().size - 6 * 5 - 5


def test_freeze_selection_unfreeze_and_persistence(tmp_path):
    model = _mlp()
    freeze(model)
    assert model.trainable_parameters() == []
    unfreeze(model, ["2.bias", model.layers[0]])
    assert [p.name for p in model.trainable_parameters()] == ["0.weight", "0.bias", "2.bias"]
    freeze(model.layers[0], "bias")
    assert [p.name for p in model.trainable_parameters()] == ["0.weight", "2.bias"]
    path = tmp_path / "frozen.npz"
    model.save(path)
    loaded = corenet.load(path)
    assert [p.name for p in loaded.trainable_parameters()] == ["0.weight", "2.bias"]
    with pytest.raises(KeyError, match="neither a layer key"):
        freeze(model, ["9"])
    with pytest.raises(TypeError):
        freeze("model")


def test_freeze_graph_and_refit_rebinds_the_optimizer():
    X, Y = _data(3)
    g = Graph(inputs="x", nodes=[("a", {"name": "dense", "out_features": 3}, "x"),
                                 ("b", {"name": "dense", "out_features": 2}, "a")],
              random_state=0, input_shape=(4,))
    g.compile(loss="mse", optimizer={"name": "adam", "lr": 0.01})
    g.fit(X, Y, epochs=1, batch_size=8)
    freeze(g, "a")
    w = g.nodes["a"][0].W.data.copy()
    g.fit(X, Y, epochs=2, batch_size=8)
    np.testing.assert_array_equal(g.nodes["a"][0].W.data, w)
    assert len(g.optimizer.parameters()) == 2


# ----------------------------------------------------------------------------- autoencoders
def _low_rank(seed=0, n=80, d=6, k=2, noise=0.1):
    """Rank-k data plus a little full-rank noise (exactly rank-deficient data gives a
    tied linear autoencoder stationary points with a row in the data's null space)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, k)) @ rng.standard_normal((k, d))
    X = X + noise * rng.standard_normal((n, d))
    return X - X.mean(axis=0)


@pytest.mark.parametrize("tied, sigma", [(False, 0.0), (True, 0.0), (True, 0.05)])
def test_autoencoder_reconstructs_low_rank_data(tied, sigma):
    X = _low_rank()
    model = autoencoder(6, 2, tied=tied, denoising_std=sigma, activation=None,
                        random_state=0)
    model.compile(loss="mse", optimizer={"name": "adam", "lr": 0.02})
    model.fit(X, X, epochs=150, batch_size=16)
    mean_error = np.mean((X - X.mean(axis=0)) ** 2)
    error = np.mean((model.predict(X) - X) ** 2)
    _, _, Vt = np.linalg.svd(X, full_matrices=False)
    pca_error = np.mean((X - X @ Vt[:2].T @ Vt[:2]) ** 2)
    assert error < 0.02 * mean_error and error < 1.2 * pca_error
    assert encode(model, X).shape == (80, 2)
    n_params = sum(p.size for p in model.parameters())
    assert n_params == (6 * 2 + 2 + 6 if tied else 2 * 6 * 2 + 2 + 6)


def test_tied_linear_autoencoder_reaches_pca_error():
    X = _low_rank(1, n=60, d=5, k=3, noise=0.3)
    model = autoencoder(5, 2, tied=True, activation=None, random_state=1)
    model.compile(loss="mse", optimizer={"name": "adam", "lr": 0.01})
    model.fit(X, X, epochs=400, batch_size=60)
    _, _, Vt = np.linalg.svd(X, full_matrices=False)
    pca = X @ Vt[:2].T @ Vt[:2]
    pca_error, error = np.mean((X - pca) ** 2), np.mean((model.predict(X) - X) ** 2)
    assert pca_error <= error <= 1.01 * pca_error


def test_denoising_noise_only_in_training():
    model = autoencoder(4, [3, 2], denoising_std=0.5, random_state=0)
    assert [layer.name for layer in model.layers] == ["gaussian_noise", "dense", "dense",
                                                      "dense", "dense"]
    assert model.encoder_layers == 3
    X = np.random.default_rng(0).standard_normal((5, 4))
    np.testing.assert_array_equal(model.predict(X), model.predict(X))
    model.train()
    assert not np.array_equal(model.forward(X), model.forward(X))
    ct.check_gradients(model, "mse", X, X).assert_ok()              # eval mode


def test_tied_deep_autoencoder_gradient_check_and_config():
    model = autoencoder(5, [4, 2], tied=True, activation="tanh", output_activation="sigmoid",
                        random_state=3)
    assert [layer.name for layer in model.layers] == ["dense", "dense", "tied_dense",
                                                      "tied_dense"]
    assert [layer.get_config()["tied_to"] for layer in model.layers[2:]] == ["1", "0"]
    X = np.random.default_rng(4).uniform(0, 1, (6, 5))
    ct.check_gradients(model, "mse", X, X).assert_ok()
    clone = special.tie(Sequential.from_config(model.get_config()))
    for p, q in zip(model.parameters(), clone.parameters()):
        q.data[...] = p.data
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))


# ----------------------------------------------------------------------------- Siamese
def _two_blobs(seed, n=120):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    centres = np.array([[-1.0, 0.5], [1.0, -0.5]])
    return centres[labels] + 0.45 * rng.standard_normal((n, 2)), labels


def test_siamese_learns_to_separate_two_classes():
    X, labels = _two_blobs(0)
    P, y = make_pairs(X, labels, 400, rng=1)
    assert P.shape == (400, 2, 2) and y.mean() == pytest.approx(0.5, abs=0.1)
    model = siamese([{"name": "dense", "out_features": 8, "activation": "tanh"},
                     {"name": "dense", "out_features": 2}], margin=1.0,
                    optimizer={"name": "adam", "lr": 0.02}, input_shape=(2,), random_state=0)
    before = model.evaluate(P, y)["loss"]
    model.fit(P, y, epochs=40, batch_size=32)
    Xt, lt = _two_blobs(5)
    Pt, yt = make_pairs(Xt, lt, 300, rng=6)
    d = model.predict(Pt)[:, 0]
    assert model.evaluate(P, y)["loss"] < 0.3 * before
    assert d[yt == 1].mean() < 0.5 * d[yt == 0].mean()
    assert np.mean((d < 0.5) == (yt == 1)) > 0.9
    emb = model.layers[0].embed(Xt)
    centroid_gap = np.linalg.norm(emb[lt == 0].mean(0) - emb[lt == 1].mean(0))
    assert centroid_gap > 0.7


def test_siamese_gradient_check_and_persistence(tmp_path):
    model = siamese([{"name": "dense", "out_features": 3, "activation": "tanh"},
                     {"name": "dense", "out_features": 2}], input_shape=(4,), random_state=1)
    assert model.layers[0].name == "pair_distance" and len(model.parameters()) == 4
    P = np.random.default_rng(0).standard_normal((5, 2, 4))
    y = np.array([1, 0, 0, 1, 0])
    ct.check_gradients(model, model.loss, P, y).assert_ok()
    path = tmp_path / "siamese.npz"
    model.save(path)
    loaded = corenet.load(path)
    np.testing.assert_array_equal(loaded.predict(P), model.predict(P))


def test_make_pairs_errors():
    with pytest.raises(ValueError, match="two classes"):
        make_pairs(np.zeros((4, 2)), [0, 0, 0, 0], 3)
    with pytest.raises(corenet.ShapeError):
        make_pairs(np.zeros((4, 2)), [0, 1], 3)

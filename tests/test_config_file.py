"""TOML run configurations (corenet/config_file.py, corenet/config_data.py)."""
import textwrap

import numpy as np
import pytest

import corenet
from corenet import config_file, plugins
from corenet.config_data import load_data, read_csv, read_inputs, read_npz
from corenet.config_file import ConfigError, hyperparameters, loads


@pytest.fixture(autouse=True)
def clean_plugins():
    plugins.reset()
    yield
    plugins.reset()


BASE = """
seed = 3
loss = "mse"
[data]
name = "xor"
[[model.layers]]
name = "dense"
out_features = 2
activation = "tanh"
[[model.layers]]
name = "dense"
out_features = 1
"""


def cfg(extra="", base=BASE, **kw):
    """``base`` plus ``extra``; the top-level keys of ``extra`` (before its first table
    header) go above ``base``'s tables."""
    lines = textwrap.dedent(extra).splitlines()
    cut = next((i for i, line in enumerate(lines) if line.startswith("[")), len(lines))
    text = "\n".join(lines[:cut]) + "\n" + textwrap.dedent(base) + "\n".join(lines[cut:])
    return loads(text + "\n", source="t.toml", **kw)


def error(extra="", base=BASE):
    with pytest.raises(ConfigError) as info:
        cfg(extra, base)
    return str(info.value)


# ------------------------------------------------------------------ valid configs
def test_minimal_config_builds_a_compiled_seeded_model():
    c = cfg()
    assert c.seed == 3 and c.dtype == "float64" and c.epochs == 10 and c.batch_size == 32
    assert [layer.name for layer in c.layers] == ["dense", "dense"]
    assert c.loss.name == "mse" and c.optimizer.name == "sgd"  # defaults
    m1, m2 = c.build_model((2,)), c.build_model((2,))
    assert m1.built and m1.loss.name == "mse" and m1.optimizer.name == "sgd"
    np.testing.assert_array_equal(m1.get_flat_parameters(), m2.get_flat_parameters())
    assert m1.optimizer is not m2.optimizer  # fresh components every time


def test_every_section_is_used():
    c = cfg("""
        dtype = "float32"
        metrics = ["accuracy", {name = "bit_fail", limit = 0.2}]
        [optimizer]
        name = "adam"
        lr = 0.01
        betas = [0.8, 0.9]
        [scheduler]
        name = "cosine"
        T = 5
        [[regularizers]]
        name = "l2"
        lam = 0.001
        [[callbacks]]
        name = "early_stopping"
        monitor = "loss"
        patience = 3
        [train]
        epochs = 5
        batch_size = 2
        shuffle = false
        [output]
        directory = "somewhere"
        plots = false
    """)
    m = c.build_model((2,))
    assert m.dtype == np.float32
    assert m.optimizer.defaults["lr"] == 0.01 and m.optimizer.defaults["betas"] == (0.8, 0.9)
    assert [x.name for x in m.metrics] == ["accuracy", "bit_fail"]
    assert m.metrics[1].limit == 0.2
    assert m.regularizers[0].lam == 0.001 and m.scheduler.T == 5
    (cb,) = c.build_callbacks()
    assert cb.patience == 3
    assert (c.epochs, c.batch_size, c.shuffle, c.output_dir, c.plots) == (5, 2, False,
                                                                         "somewhere", False)
    X, y, Xt, yt = c.load_data()
    hist = m.fit(X, y, epochs=c.epochs, batch_size=c.batch_size, shuffle=c.shuffle,
                 callbacks=c.build_callbacks())
    assert len(hist) <= 5 and Xt is None and yt is None


def test_checkpoint_directory_is_relative_to_the_output(tmp_path):
    c = cfg("""
        [[callbacks]]
        name = "checkpoint"
        directory = "ckpt"
    """)
    (cb,) = c.build_callbacks(str(tmp_path))
    assert cb.directory == str(tmp_path / "ckpt")


def test_pruners_and_growers_become_callbacks():
    c = cfg("""
        [[pruners]]
        name = "magnitude"
        target_sparsity = 0.5
        start_epoch = 0
        end_epoch = 1
    """)
    (p,) = c.build_callbacks()
    assert p.name == "magnitude"
    m = c.build_model((2,))
    X, y, _, _ = c.load_data()
    m.fit(X, y.astype(float), epochs=3, batch_size=4, callbacks=c.build_callbacks())
    w = [q for q in m.parameters() if q.role == "weight"]
    assert sum(q.count_nonzero_weights() for q in w) == 3  # 6 weights, half pruned


# ------------------------------------------------------------------ errors
def test_unknown_top_level_key_lists_allowed_keys():
    msg = error('optimiser = "adam"\n')
    assert "t.toml" in msg and "unknown top-level key 'optimiser'" in msg
    assert "did you mean 'optimizer'" in msg
    for key in ("data", "model", "loss", "optimizer", "train", "metrics", "regularizers"):
        assert key in msg


def test_unknown_optimizer_lists_known_ones():
    msg = error('[optimizer]\nname = "adamm"\n')
    assert "optimizer.name: unknown optimizer 'adamm'" in msg
    assert "did you mean 'adam'" in msg
    for name in corenet.registry.names("optimizer"):
        assert name in msg


def test_unknown_component_key_lists_hyperparameters():
    msg = error('[optimizer]\nname = "sgd"\nlearning_rate = 0.1\n')
    assert "optimizer: unknown key 'learning_rate' for optimizer 'sgd'" in msg
    assert "lr" in msg and "momentum" in msg and "nesterov" in msg
    msg = error("", base=BASE.replace("out_features = 2", "out_features = 2\nunits = 3"))
    assert "model.layers[0]: unknown key 'units' for layer 'dense'" in msg
    assert "out_features" in msg


def test_key_after_a_table_gets_a_toml_hint():
    msg = error('[optimizer]\nname = "sgd"\nmetrics = ["accuracy"]\n')
    assert "unknown key 'metrics'" in msg and "move top-level keys" in msg


@pytest.mark.parametrize("extra, words", [
    ('[train]\nepochs = "ten"\n', ["train.epochs", "expected an integer", "'ten'"]),
    ('[train]\nepochs = 2.5\n', ["train.epochs", "expected an integer", "2.5"]),
    ('[train]\nshuffle = 1\n', ["train.shuffle", "expected a boolean"]),
    ('[train]\nepochs = 0\n', ["train.epochs", ">= 1"]),
    ('[train]\nbatch_size = 0\n', ["train.batch_size", ">= 1"]),
    ('[train]\nvalidation_split = 1.5\n', ["train.validation_split", "[0, 1)"]),
    ('[train]\nepoch = 3\n', ["unknown key in [train] 'epoch'", "did you mean 'epochs'"]),
    ('metrics = "accuracy"\n', ["metrics", "expected an array"]),
    ('metrics = [3]\n', ["metrics[0]", "expected a string"]),
    ('metrics = [{limit = 1}]\n', ["metrics[0]", "needs a 'name' key", "accuracy"]),
    ('dtype = "float16"\n', ["dtype", "float32, float64"]),
    ('[output]\nmodel = "m.pkl"\n', ["output.model", ".npz"]),
    ('[[regularizers]]\nname = "l2"\nlam = -1.0\n', ["regularizers[0]", "l2"]),
    ('[scheduler]\nname = "cosine"\n', ["scheduler", "needs the key(s) 'T'"]),
])
def test_type_and_value_errors_name_the_key(extra, words):
    msg = error(extra)
    for word in words:
        assert word in msg, msg


def test_layer_errors_name_the_layer():
    msg = error("", base=BASE.replace('name = "dense"\nout_features = 2', 'name = "dence"'))
    assert "model.layers[0].name: unknown layer 'dence'" in msg and "did you mean 'dense'" in msg
    msg = error("", base=BASE.replace("out_features = 2\n", ""))
    assert "model.layers[0]" in msg and "'out_features'" in msg
    msg = error("", base=BASE.replace("out_features = 2", "out_features = -2"))
    assert "model.layers[0]" in msg


@pytest.mark.parametrize("text, words", [
    ("[model]\nlayers = []\n[data]\nname = 'xor'\n", ["model.layers", "non-empty"]),
    ("[data]\nname = 'xor'\n", ["missing the required [model]"]),
    ("[model]\nlayers = ['flatten']\n", ["missing the required [data]"]),
    ("[model]\nlayers = ['flatten']\n[data]\nname = 'spirals'\n",
     ["data.name", "unknown dataset 'spirals'", "two_spirals", "path"]),
    ("[model]\nlayers = ['flatten']\n[data]\n", ["exactly one of 'name'", "'path'"]),
    ("[model]\nlayers = ['flatten']\n[data]\npath = 'x.txt'\n", ["data.path", ".npz or .csv"]),
    ("[model]\nlayers = ['flatten']\n[data]\nname = 'xor'\ntest_split = 1.5\n",
     ["data.test_split"]),
    ("[model]\nlayers = ['flatten']\n[data]\nname = 'xor'\ntarget_dtype = 'str'\n",
     ["data.target_dtype", "auto, int, float"]),
    ("x = = 1", ["invalid TOML"]),
])
def test_structure_errors(text, words):
    with pytest.raises(ConfigError) as info:
        loads(text, source="s.toml")
    for word in words:
        assert word in str(info.value), str(info.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="file not found"):
        config_file.load("/nonexistent/run.toml")


def test_hyperparameters_walk_base_constructors_and_optimizer_defaults():
    names = [p.name for p in hyperparameters(corenet.registry.get("optimizer", "sgd"))]
    assert names[:2] == ["lr", "momentum"] and "weight_decay" in names
    names = [p.name for p in hyperparameters(corenet.registry.get("pruner", "obd"))]
    assert "hessian_method" in names and "target_sparsity" in names  # from Pruner.__init__
    dense = {p.name: p.default for p in hyperparameters(corenet.registry.get("layer", "dense"))}
    assert dense["activation"] is None and "self" not in dense


# ------------------------------------------------------------------ data sources
def test_npz_source_split_subsets_and_normalizer(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(50, 3))
    y = rng.integers(0, 2, 50)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    c = loads(textwrap.dedent("""
        [data]
        path = "d.npz"
        test_split = 0.2
        max_train = 30
        normalize = "standardize"
        [[model.layers]]
        name = "dense"
        out_features = 1
    """), source="n.toml", base_dir=str(tmp_path))
    Xtr, ytr, Xte, yte = load_data(c)
    assert Xtr.shape == (30, 3) and Xte.shape == (10, 3) and ytr.dtype == np.int64
    np.testing.assert_allclose(Xtr.mean(axis=0), 0.0, atol=1e-12)


def test_npz_needs_the_named_arrays_and_refuses_pickles(tmp_path):
    np.savez(tmp_path / "a.npz", inputs=np.zeros((3, 2)), y=np.zeros(3))
    with pytest.raises(ConfigError, match="'X'.*holds 'inputs'"):
        read_npz(str(tmp_path / "a.npz"))
    X, _ = read_npz(str(tmp_path / "a.npz"), x_key="inputs")
    assert X.shape == (3, 2)
    np.savez(tmp_path / "o.npz", X=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    with pytest.raises(ConfigError, match="pickle"):
        read_npz(str(tmp_path / "o.npz"))


def test_csv_source_header_target_and_errors(tmp_path):
    (tmp_path / "h.csv").write_text("a,label,b\n1,0,2\n3,1,4\n5,1,6\n")
    X, y = read_csv(str(tmp_path / "h.csv"), target_column="label")
    np.testing.assert_array_equal(X, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(y, [0, 1, 1])
    (tmp_path / "n.csv").write_text("1,2,0.5\n3,4,1.5\n")
    X, y = read_csv(str(tmp_path / "n.csv"))
    assert X.shape == (2, 2) and list(y) == [0.5, 1.5]
    (tmp_path / "bad.csv").write_text("1,2,3\n4,x,6\n")
    with pytest.raises(ConfigError, match="line 2, column 2: expected a number"):
        read_csv(str(tmp_path / "bad.csv"))
    (tmp_path / "ragged.csv").write_text("1,2,3\n4,5\n")
    with pytest.raises(ConfigError, match="expected 3 fields"):
        read_csv(str(tmp_path / "ragged.csv"))
    with pytest.raises(ConfigError, match="not a column name"):
        read_csv(str(tmp_path / "n.csv"), target_column="label")
    assert read_inputs(str(tmp_path / "n.csv")).shape == (2, 3)


def test_builtin_dataset_options_and_mnist_split():
    c = cfg('[data]\nname = "parity"\noptions = { n_bits = 3 }\n',
            base=BASE.replace('[data]\nname = "xor"\n', ""))
    X, y, _, _ = load_data(c)
    assert X.shape == (8, 3)
    bad = cfg('[data]\nname = "parity"\noptions = { bits = 3 }\n',
              base=BASE.replace('[data]\nname = "xor"\n', ""))
    with pytest.raises(ConfigError, match="data.options: dataset 'parity' rejected"):
        load_data(bad)
    m = cfg('[data]\nname = "mnist"\ntest_split = 2000\nmax_train = 10\nmax_test = 5\n'
            'flatten = true\n', base=BASE.replace('[data]\nname = "xor"\n', ""))
    Xtr, ytr, Xte, yte = load_data(m)
    assert Xtr.shape == (10, 784) and Xte.shape == (5, 784)
    from corenet.datasets import mnist_split

    ref = mnist_split()
    np.testing.assert_array_equal(Xtr, ref[0][:10].reshape(10, -1))
    np.testing.assert_array_equal(yte, ref[3][:5])

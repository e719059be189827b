"""Saving, loading, checkpoints and resume; corrupt and hostile files are refused."""
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import corenet
from corenet import CorruptFileError, Graph, PluginError, Sequential
from corenet.layers.core import Dense


def small_model(dtype="float64", seed=0):
    m = Sequential([Dense(6, activation="tanh"), Dense(3), "softmax"], dtype=dtype,
                   random_state=seed, input_shape=(4,))
    m.layers[0].W.mask = (np.arange(24).reshape(6, 4) % 3 != 0)
    return m


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trip_is_bit_exact(tmp_path, dtype):
    m = small_model(dtype)
    path = tmp_path / "m.npz"
    m.save(path)
    loaded = corenet.load(path)
    assert loaded.dtype == m.dtype
    for p, q in zip(m.parameters(), loaded.parameters()):
        assert p.name == q.name and p.data.dtype == q.data.dtype
        assert np.array_equal(p.data, q.data) and np.array_equal(p.mask, q.mask)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(dtype)
    assert np.array_equal(m.predict(x), loaded.predict(x))
    assert [f for f in os.listdir(tmp_path) if f.startswith(".corenet-")] == []


def test_graph_round_trip(tmp_path):
    g = Graph(inputs="x", outputs="out", random_state=3)
    g.add_node("h", Dense(4, activation="relu"), "x")
    g.add_node("cat", "concat", ["h", "x"])
    g.add_node("out", Dense(2), "cat")
    g.build((3,))
    g.save(tmp_path / "g.npz")
    loaded = corenet.load(tmp_path / "g.npz")
    x = np.ones((2, 3))
    assert np.array_equal(g.predict(x), loaded.predict(x))


def test_unbuilt_model_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="build"):
        Sequential([Dense(2)]).save(tmp_path / "x.npz")


def _rewrite(path, mutate):
    """Load the archive members, let ``mutate`` change them, write them back."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["__corenet__"].tobytes())
    mutate(meta, arrays)
    arrays["__corenet__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def test_hostile_and_inconsistent_files_are_refused(tmp_path):
    good = tmp_path / "good.npz"
    small_model().save(good)

    cases = {
        "wrong shape": lambda meta, a: a.__setitem__("param/0", np.zeros((2, 2))),
        "wrong dtype": lambda meta, a: a.__setitem__("param/0", a["param/0"].astype(np.float32)),
        "nan weights": lambda meta, a: a.__setitem__("param/1", np.full(6, np.nan)),
        "bad mask": lambda meta, a: a.__setitem__("mask/0", np.full((6, 4), 0.5)),
        "missing param": lambda meta, a: a.pop("param/2"),
        "wrong format": lambda meta, a: meta.__setitem__("format", "something-else"),
        "future version": lambda meta, a: meta.__setitem__("format_version", 99),
        "bad kind": lambda meta, a: meta["model"].__setitem__("kind", "os.system"),
        "bad layer config": lambda meta, a: meta["model"]["layers"][0]["config"]
        .__setitem__("out_features", -3),
    }
    for label, mutate in cases.items():
        path = tmp_path / f"{label.replace(' ', '_')}.npz"
        path.write_bytes(good.read_bytes())
        _rewrite(path, mutate)
        with pytest.raises(CorruptFileError):
            corenet.load(path)

    # a pickle inside the archive is never unpickled
    path = tmp_path / "pickle.npz"
    with np.load(good, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["param/0"] = np.array([{"evil": 1}], dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(CorruptFileError, match="pickle"):
        corenet.load(path)

    # a raw pickle file, an empty file, a truncated archive, plain garbage
    (tmp_path / "raw.pkl").write_bytes(pickle.dumps({"a": 1}))
    (tmp_path / "empty.npz").write_bytes(b"")
    data = good.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.npz").write_bytes(os.urandom(300))
    for name in ("raw.pkl", "empty.npz", "trunc.npz", "garbage.npz"):
        with pytest.raises(CorruptFileError):
            corenet.load(tmp_path / name)


def test_missing_plugin_names_the_distribution(tmp_path):
    path = tmp_path / "m.npz"
    small_model().save(path)

    def mutate(meta, arrays):
        meta["components"].append({"category": "layer", "name": "fancy_layer",
                                   "distribution": "corenet-fancy", "version": "1.2"})
    _rewrite(path, mutate)
    with pytest.raises(PluginError, match="pip install corenet-fancy"):
        corenet.load(path)


def test_fuzzed_files_never_crash(tmp_path):
    good = tmp_path / "good.npz"
    small_model().save(good)
    data = bytearray(good.read_bytes())
    rng = np.random.default_rng(0)
    target = tmp_path / "fuzz.npz"
    outcomes = {"refused": 0, "loaded": 0}
    for trial in range(150):
        mutated = bytearray(data)
        kind = trial % 3
        if kind == 0:   # flip bytes
            for pos in rng.integers(0, len(mutated), size=rng.integers(1, 8)):
                mutated[pos] ^= int(rng.integers(1, 256))
        elif kind == 1:  # truncate
            mutated = mutated[: int(rng.integers(0, len(mutated)))]
        else:           # overwrite a run with random bytes
            start = int(rng.integers(0, len(mutated) - 16))
            mutated[start:start + 16] = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
        target.write_bytes(bytes(mutated))
        try:
            model = corenet.load(target)
        except (CorruptFileError, PluginError):
            outcomes["refused"] += 1
        else:
            outcomes["loaded"] += 1
            assert all(np.isfinite(p.data).all() for p in model.parameters())
    assert outcomes["refused"] > 100


def _data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
    return X, y


def _fresh():
    m = Sequential([Dense(8, activation="tanh"), Dense(3), "softmax"], random_state=5)
    m.compile(loss="cross_entropy", optimizer={"name": "sgd", "lr": 0.1, "momentum": 0.9},
              scheduler={"name": "step", "step_size": 2, "gamma": 0.5})
    return m


def test_interrupted_run_resumes_bit_identically(tmp_path):
    X, y = _data()
    full = _fresh()
    full.fit(X, y, epochs=6, batch_size=8, validation_data=(X, y))

    first = _fresh()
    ckpt = corenet.create("callback", "checkpoint", directory=str(tmp_path), keep_last=2)
    first.fit(X, y, epochs=3, batch_size=8, validation_data=(X, y), callbacks=[ckpt])
    assert sorted(os.listdir(tmp_path)) == ["epoch-0001.npz", "epoch-0002.npz"]

    resumed = _fresh()  # a new process would build the same fresh model
    h = resumed.fit(X, y, epochs=6, batch_size=8, validation_data=(X, y),
                    resume_from=tmp_path / "epoch-0002.npz")
    assert np.array_equal(resumed.get_flat_parameters(), full.get_flat_parameters())
    assert h.batch_losses == full.history.batch_losses
    assert [e["val_loss"] for e in h.epochs] == [e["val_loss"] for e in full.history.epochs]


def test_checkpoint_keep_best(tmp_path):
    X, y = _data()
    m = _fresh()
    ckpt = corenet.create("callback", "checkpoint", directory=str(tmp_path), keep_last=1,
                          keep_best=True, monitor="val_loss")
    m.fit(X, y, epochs=4, batch_size=8, validation_data=(X, y), callbacks=[ckpt])
    state = corenet.load_checkpoint(tmp_path / "best.npz")
    best_epoch = int(np.argmin([e["val_loss"] for e in m.history.epochs]))
    assert state["epoch"] == best_epoch

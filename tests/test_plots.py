"""PNG plots (corenet/plots.py); skipped where matplotlib is not installed."""
import builtins
import json

import numpy as np
import pytest

import corenet
from corenet import plots, plugins

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def clean_plugins():
    plugins.reset()
    yield
    plugins.reset()


def is_png(path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(8)
    return head == PNG


def test_missing_matplotlib_names_the_plot_extra(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert plots.available() is False
    with pytest.raises(ImportError, match=r"corenet\[plot\]"):
        plots.learning_curves([{"epoch": 0, "loss": 1.0}], tmp_path / "x.png")
    with pytest.raises(ImportError, match="'plot' extra"):
        plots.pruning_curve([{"weights": 1, "accuracy": 1.0}], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


mpl = pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def xor_run():
    model = corenet.Sequential([{"name": "dense", "out_features": 4, "activation": "tanh"},
                                {"name": "dense", "out_features": 1, "activation": "tanh"}],
                               random_state=0)
    model.compile(loss="mse", optimizer={"name": "sgd", "lr": 0.2, "momentum": 0.9},
                  metrics=["accuracy"])
    from corenet.datasets import xor

    X, y = xor(inputs="pm1")
    hist = model.fit(X, y, epochs=40, batch_size=2, validation_data=(X, y), random_state=0)
    return model, X, y, hist


def test_learning_curves_from_history_dict_and_json(tmp_path, xor_run):
    _, _, _, hist = xor_run
    assert is_png(plots.learning_curves(hist, tmp_path / "a.png", title="xor"))
    assert is_png(plots.learning_curves(hist.to_dict(), tmp_path / "b.png"))
    (tmp_path / "h.json").write_text(json.dumps(hist.to_dict()))
    assert is_png(plots.learning_curves(str(tmp_path / "h.json"), tmp_path / "sub" / "c.png"))
    with pytest.raises(ValueError, match="no epochs"):
        plots.learning_curves([], tmp_path / "d.png")
    with pytest.raises(TypeError, match="learning_curves"):
        plots.learning_curves(3, tmp_path / "d.png")


def test_pruning_curve_one_or_several_methods(tmp_path):
    rows = [{"weights": w, "accuracy": a} for w, a in ((100, 0.98), (50, 0.97), (10, 0.8))]
    assert is_png(plots.pruning_curve(rows, tmp_path / "p1.png", logx=True))
    out = plots.pruning_curve({"magnitude": rows, "obd": rows[::-1]}, tmp_path / "p2.png",
                              title="pruning")
    assert is_png(out)
    with pytest.raises(ValueError):
        plots.pruning_curve({}, tmp_path / "p3.png")


def test_cascade_growth_and_decision_surface(tmp_path):
    from corenet.datasets import two_spirals
    from corenet.growers import CascadeCorrelation

    X, y = two_spirals(targets="pm_half")
    grower = CascadeCorrelation.from_preset("fast", random_state=0, max_hidden_units=3)
    model = grower.fit(X, y)
    assert is_png(plots.cascade_growth(grower.history, tmp_path / "g.png", title="growth"))
    assert is_png(plots.cascade_growth(grower.history.to_dict(), tmp_path / "g2.png"))
    assert is_png(plots.decision_surface(model, X, y, tmp_path / "s.png", resolution=40))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plots.decision_surface(model, np.zeros((3, 3)), y[:3], tmp_path / "t.png")


@pytest.fixture(scope="module")
def cnn():
    model = corenet.Sequential([
        {"name": "conv2d", "in_channels": 1, "out_channels": 3, "kernel_size": 3},
        {"name": "activation", "activation": "relu"},
        {"name": "flatten"},
        {"name": "dense", "out_features": 4}], random_state=0, input_shape=(1, 8, 8))
    x = np.random.default_rng(0).random((1, 8, 8))
    return model, x


def test_filters_feature_maps_and_saliency(tmp_path, cnn):
    model, x = cnn
    assert is_png(plots.filters(model, tmp_path / "f.png"))
    assert is_png(plots.feature_maps(model, x, tmp_path / "m.png"))
    assert is_png(plots.feature_maps(model, x, tmp_path / "m1.png", layer="1"))
    assert is_png(plots.saliency(model, x, tmp_path / "s.png"))
    assert is_png(plots.saliency(model, x, tmp_path / "s2.png", target=2))
    dense = corenet.Sequential([{"name": "dense", "out_features": 2}], input_shape=(3,))
    with pytest.raises(ValueError, match="no convolution"):
        plots.feature_maps(dense, np.zeros(3), tmp_path / "n.png")


def test_cascade_growth_from_trainer_records(tmp_path):
    records = [{"hidden_units": m, "loss_before": 1.0 / m, "epoch": 10 * m} for m in (1, 2, 3)]
    assert is_png(plots.cascade_growth(records, tmp_path / "g.png"))
    with pytest.raises(ValueError, match="no error or loss"):
        plots.cascade_growth([{"hidden_units": 1}], tmp_path / "h.png")

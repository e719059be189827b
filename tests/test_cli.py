"""The ``corenet`` console script (corenet/cli.py)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import corenet
from corenet import cli, plugins, registry


@pytest.fixture(autouse=True)
def clean_plugins():
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture(autouse=True)
def one_thread():
    """These tests check the commands, not the kernels' threading: one kernel thread keeps
    them fast also on a machine busy with other work (oversubscribed OpenMP threads
    slow the compiled steps down many times)."""
    before = corenet.get_num_threads()
    corenet.set_num_threads(1)
    yield
    corenet.set_num_threads(before)


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_plugins_table_lists_every_component(capsys):
    status, out, _ = run(capsys, "plugins")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "CLASS", "DISTRIBUTION", "VERSION"]
    for entry in registry.entries():
        cls = f"{entry.cls.__module__}.{entry.cls.__qualname__}"
        assert any(line.split()[:4] == [entry.category, entry.name, cls, entry.distribution]
                   for line in lines[2:] if line.strip()), entry
    assert "dense" in out and "corenet.layers.core" in out
    assert f"components from corenet {corenet.__version__}" in out


def test_plugins_table_columns_are_aligned(capsys):
    _, out, _ = run(capsys, "plugins")
    lines = [line for line in out.splitlines()[2:] if line.strip()][:-1]  # drop the summary
    header = out.splitlines()[0]
    starts = [header.index(title) for title in ("NAME", "CLASS", "DISTRIBUTION", "VERSION")]
    for line in lines:
        for start in starts[:-1]:
            assert line[start - 2:start] == "  " and line[start] != " ", line


def test_plugins_category_filter_json_and_runtime_plugin(capsys):
    cls = type("CliProbe", (), {"name": "cli_probe_layer", "__module__": "probe_mod"})

    class Provider:
        @corenet.hookimpl
        def corenet_register_layers(self):
            return [cls]

    plugins.register(Provider(), name="probe", distribution="probe-dist")
    status, out, _ = run(capsys, "plugins", "--category", "layer", "--json")
    assert status == 0
    rows = json.loads(out)
    assert {row["category"] for row in rows} == {"layer"}
    probe = [row for row in rows if row["name"] == "cli_probe_layer"]
    assert probe == [{"category": "layer", "name": "cli_probe_layer",
                      "class": "probe_mod.CliProbe", "plugin": "probe",
                      "distribution": "probe-dist", "version": ""}]
    _, out, _ = run(capsys, "plugins", "-c", "layer")
    assert "cli_probe_layer" in out and "probe-dist" in out


def test_plugins_rejects_unknown_category(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["plugins", "--category", "layers"])
    assert info.value.code == 2
    assert "invalid choice: 'layers'" in capsys.readouterr().err


@pytest.mark.parametrize("argv, words", [
    ([], ["plugins", "demo", "--version", "train", "evaluate", "predict", "summary", "prune",
          "grow", "bench"]),
    (["plugins"], ["--category", "--json"]),
    (["demo"], ["--epochs", "--quick", "--seed", "--step", "--lenet-epochs"]),
    (["train"], ["CONFIG", "--out", "--epochs", "--seed", "--no-plots", "--dry-run"]),
    (["evaluate"], ["MODEL", "--config", "--data", "--split", "--loss", "--metric"]),
    (["predict"], ["MODEL", "INPUT", "--output", "--classes"]),
    (["summary"], ["MODEL"]),
    (["prune"], ["prune", "--data", "--method"]),
    (["grow"], ["--dataset", "--preset", "--save"]),
    (["bench"], ["--script", "--list", "--seconds"]),
])
def test_help_everywhere(capsys, argv, words):
    with pytest.raises(SystemExit) as info:
        cli.main(argv + ["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: corenet")
    for word in words:
        assert word in out


def test_no_command_prints_help(capsys):
    status, out, _ = run(capsys)
    assert status == 0 and "plugins" in out and "demo" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"corenet {corenet.__version__}"


def test_format_table():
    text = cli.format_table([{"a": "x", "b": "long value"}, {"a": "wide cell", "b": "y"}],
                            [("a", "A"), ("b", "B")])
    assert text.splitlines() == ["A          B",
                                 "---------  ----------",
                                 "x          long value",
                                 "wide cell  y"]


@pytest.fixture
def fast_lenet(monkeypatch):
    """A stand-in for corenet.models.train_lenet5_mnist (the real one trains for ~10 s per
    epoch; tests/test_lenet_mnist.py covers it): an untrained LeNet-5 scored on 200
    images, so the demo's wiring is tested quickly."""
    models = pytest.importorskip("corenet.models")
    calls = []

    def fake(epochs=15, seed=0, verbose=False):
        from corenet.datasets import mnist_split

        calls.append((epochs, seed, verbose))
        model = models.lenet5(input_size=28, random_state=seed)
        X, y = mnist_split()[2:]
        acc = float((model.predict_classes(X[:200]) == y[:200]).mean())
        return model, acc, 0.01

    monkeypatch.setattr(models, "train_lenet5_mnist", fake)
    return calls


def test_demo_quick_prints_one_report(capsys, fast_lenet):
    status, out, _ = run(capsys, "demo", "--quick", "--seed", "1")
    assert status == 0
    match = re.search(r"\[mlp\] .*test accuracy (\d+\.\d+)%", out)
    assert match, out
    assert 80.0 < float(match.group(1)) <= 100.0
    assert fast_lenet == [(1, 1, False)]
    report = out[out.index("corenet demo report"):]
    header = report.splitlines()[1].split()
    assert header == ["STEP", "MODEL", "PARAMETERS", "UNITS", "ACCURACY", "TIME", "NOTE"]
    rows = {}
    for line in report.splitlines()[3:]:
        if line.strip() and not line.startswith("total"):
            rows.setdefault(line.split()[0], []).append(line)
    assert sorted(rows) == ["grow", "lenet5", "mlp", "prune"]
    assert "235,146" in rows["mlp"][0] and "384" in rows["mlp"][0]
    assert "61,706" in rows["lenet5"][0]
    assert len(rows["prune"]) == 3  # magnitude, OBD (MLP) and OBS (parity net)
    for line in rows["prune"][:2]:
        kept = int(re.search(r"weights\s+([\d,]+)", line).group(1).replace(",", ""))
        assert kept < 0.15 * 235146, line
        acc = float(re.search(r"(\d+\.\d+)% \(test\)", line).group(1))
        assert acc > 70.0, line
    assert "100.00% (train)" in rows["prune"][2]
    assert "100.00% (train)" in rows["grow"][0] and "victory" in rows["grow"][0]
    assert re.search(r"total time \d+\.\d s", report)


def test_demo_single_step(capsys):
    status, out, _ = run(capsys, "demo", "--quick", "--step", "grow")
    assert status == 0 and "[grow]" in out and "[mlp]" not in out


@pytest.mark.parametrize("option", ["--epochs", "--lenet-epochs"])
def test_demo_rejects_bad_epochs(capsys, option):
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", option, "0"])
    assert info.value.code == 2


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("corenet")
    if not script.exists():
        pytest.skip("console script not installed next to this interpreter")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("corenet ")


def test_python_dash_m_runs_the_same_cli():
    done = subprocess.run([sys.executable, "-m", "corenet", "--version"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("corenet ")
    bad = subprocess.run([sys.executable, "-m", "corenet", "no-such-command"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no-such-command" in bad.stderr


# ---------------------------------------------------------------------- train & co
EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.toml"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_config_trains(capsys, tmp_path, config):
    out = tmp_path / "run"
    status, text, err = run(capsys, "train", str(config), "--out", str(out), "--quiet")
    assert status == 0, err
    assert "trained" in text and "training set:" in text
    for name in ("model.npz", "config.toml", "run.json", "history.json", "history.csv"):
        assert (out / name).exists(), name
    history = json.loads((out / "history.json").read_text())
    assert history["epochs"] and history["batch_losses"]
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["epoch", "loss"]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not (out / "learning_curves.png").exists()
    else:
        assert (out / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
        if "[[growers]]" in config.read_text():
            assert (out / "cascade_correlation_growth.png").exists()
    model = corenet.load(str(out / "model.npz"))
    assert model.built


@pytest.fixture
def xor_run(tmp_path, capsys):
    out = tmp_path / "xor"
    config = Path(__file__).resolve().parent.parent / "examples" / "xor.toml"
    assert cli.main(["train", str(config), "-o", str(out), "-q", "--no-plots",
                     "--epochs", "200", "--seed", "0"]) == 0
    capsys.readouterr()
    assert not (out / "learning_curves.png").exists()
    assert json.loads((out / "run.json").read_text())["epochs"] == 200
    return out


def test_evaluate_uses_the_config_next_to_the_model(capsys, xor_run):
    status, out, _ = run(capsys, "evaluate", str(xor_run))
    assert status == 0 and out.startswith("train: 4 samples: loss")
    assert "accuracy 1" in out
    status, out, _ = run(capsys, "evaluate", str(xor_run / "model.npz"), "--data", "xor",
                         "--metric", "accuracy", "--loss", "mse", "--json")
    result = json.loads(out)
    assert result["samples"] == 4 and result["accuracy"] == 1.0 and result["loss"] < 0.1


def test_evaluate_and_predict_on_files(capsys, tmp_path, xor_run):
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    np.savez(tmp_path / "d.npz", X=X, y=np.array([0, 1, 1, 0]))
    status, out, _ = run(capsys, "evaluate", str(xor_run), "--data", str(tmp_path / "d.npz"))
    assert status == 0 and "accuracy 1" in out
    status, out, _ = run(capsys, "predict", str(xor_run), str(tmp_path / "d.npz"), "--classes")
    assert status == 0 and out.split() == ["0", "1", "1", "0"]
    np.savetxt(tmp_path / "in.csv", X, delimiter=",")
    for name in ("p.npy", "p.csv", "p.npz"):
        status, out, _ = run(capsys, "predict", str(xor_run / "model.npz"),
                             str(tmp_path / "in.csv"), "-o", str(tmp_path / name))
        assert status == 0 and "wrote 4 predictions" in out
    p = np.load(tmp_path / "p.npy")
    assert p.shape == (4, 1) and np.all((p > 0.5).ravel() == [False, True, True, False])
    status, _, err = run(capsys, "predict", str(xor_run), str(tmp_path / "in.csv"), "-o",
                         str(tmp_path / "p.txt"))
    assert status == 1 and ".npy, .npz or .csv" in err


def test_summary_of_model_and_config(capsys, xor_run):
    status, out, _ = run(capsys, "summary", str(xor_run))
    assert status == 0 and "total parameters: 17" in out
    config = Path(__file__).resolve().parent.parent / "examples" / "mnist_cnn.toml"
    status, out, _ = run(capsys, "summary", str(config))
    assert status == 0 and "conv2d" in out and "(N, 8, 28, 28)" in out


def test_train_dry_run_and_errors(capsys, tmp_path):
    config = Path(__file__).resolve().parent.parent / "examples" / "xor.toml"
    status, out, _ = run(capsys, "train", str(config), "--dry-run", "-o", str(tmp_path / "d"))
    assert status == 0 and "total parameters: 17" in out and not (tmp_path / "d").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text(config.read_text().replace('name = "sgd"', 'name = "sgdd"'))
    status, _, err = run(capsys, "train", str(bad))
    assert status == 1
    assert err.startswith("corenet: error: config ") and "unknown optimizer 'sgdd'" in err
    assert "adam" in err
    status, _, err = run(capsys, "train", str(tmp_path / "missing.toml"))
    assert status == 1 and "file not found" in err
    status, _, err = run(capsys, "evaluate", str(tmp_path / "nothing.npz"))
    assert status == 1 and err.startswith("corenet: error:")


def test_grow_and_prune_are_wired(capsys, tmp_path, xor_run):
    status, out, _ = run(capsys, "grow", "--dataset", "xor", "--preset", "spec")
    assert status == 0 and "cascade-correlation on xor" in out
    try:
        import corenet.prune_cli  # noqa: F401
    except ImportError:  # the placeholder until corenet/prune_cli.py exists
        status, _, err = run(capsys, "prune")
        assert status == 1 and "prune_cli.py" in err
        return
    status, out, _ = run(capsys, "prune", str(xor_run / "model.npz"), "--data", "xor",
                         "--method", "magnitude", "--amount", "0.5", "-o",
                         str(tmp_path / "pruned.npz"))
    assert status == 0 and "magnitude" in out
    pruned = corenet.load(str(tmp_path / "pruned.npz"))
    assert sum(p.count_nonzero_weights() for p in pruned.parameters()) == 17 - 6
    status, out, _ = run(capsys, "summary", str(tmp_path / "pruned.npz"))
    assert "unmasked 11" in out


def test_bench_builtin_and_list(capsys):
    status, out, _ = run(capsys, "bench", "--seconds", "0.05", "--json")
    assert status == 0
    rows = json.loads(out)
    assert {(r["model"], r["dtype"]) for r in rows} >= {("MLP 784-256-128-10", "float32"),
                                                     ("MLP 784-256-128-10", "float64")}
    assert all(r["steps_per_s"] > 0 and r["samples_per_s"] == r["steps_per_s"] * 64
               for r in rows)
    status, out, _ = run(capsys, "bench", "--list")
    assert status == 0 and "mlp" in out.split()
    status, _, err = run(capsys, "bench", "--script", "nonexistent")
    assert status == 1 and "available:" in err and "mlp" in err

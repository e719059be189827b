"""The ``corenet`` console script (corenet/cli.py)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import corenet
from corenet import cli, plugins, registry


@pytest.fixture(autouse=True)
def clean_plugins():
    plugins.reset()
    yield
    plugins.reset()


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
    ([], ["plugins", "demo", "--version"]),
    (["plugins"], ["--category", "--json"]),
    (["demo"], ["--epochs", "--quick", "--seed"]),
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


def test_demo_quick_prints_accuracy(capsys):
    status, out, _ = run(capsys, "demo", "--quick", "--seed", "1")
    assert status == 0
    match = re.search(r"\[mlp\] .*test accuracy (\d+\.\d+)%", out)
    assert match, out
    assert 80.0 < float(match.group(1)) <= 100.0
    assert "total time" in out


def test_demo_rejects_bad_epochs(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--epochs", "0"])
    assert info.value.code == 2


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("corenet")
    if not script.exists():
        pytest.skip("console script not installed next to this interpreter")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("corenet ")

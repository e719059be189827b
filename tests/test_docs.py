"""The generated documentation pages (docs/gen_components.py; the site build itself runs
in .ci/run as `mkdocs build --strict`)."""
import importlib.util
import inspect
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from corenet import plugins, registry
from corenet.config_file import hyperparameters

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_plugins():
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("gen_components",
                                                  ROOT / "docs" / "gen_components.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pages(gen):
    return gen.generated_pages()


def test_every_corenet_component_is_documented_with_its_defaults(pages):
    for entry in registry.entries():
        page = pages[f"components/{entry.category}.md"]
        if entry.distribution != "corenet":
            assert f"## {entry.name}\n" not in page  # other distributions are left out
            continue
        assert f"## {entry.name}\n" in page, entry
        assert f"`{entry.cls.__module__}.{entry.cls.__qualname__}`" in page
        for p in hyperparameters(entry.cls):
            assert f"| `{p.name}` |" in page, (entry.name, p.name)
    dense = pages["components/layer.md"].split("## dense\n")[1].split("\n## ")[0]
    assert "| `out_features` | required |" in dense and "| `bias` | `True` |" in dense
    sgd = pages["components/optimizer.md"].split("## sgd\n")[1].split("\n## ")[0]
    assert "| `lr` | `0.01` |" in sgd and "| `momentum` | `0.0` |" in sgd
    index = pages["components/index.md"]
    for category in registry.CATEGORIES:
        assert f"({category}.md)" in index


def test_docstrings_and_escaped_summaries(gen, pages):
    cls = registry.get("loss", "cross_entropy")
    assert inspect.getdoc(cls).splitlines()[0] in pages["components/loss.md"]
    assert gen._escape("a*b | c `x*y` ``p|q``") == r"a\*b \| c `x*y` ``p|q``"


def test_cli_reference_and_benchmarks_pages(pages):
    ref = pages["cli-reference.md"]
    for command in ("train", "evaluate", "predict", "summary", "prune", "grow", "plugins",
                    "bench", "demo"):
        assert f"## corenet {command}\n" in ref
    assert "usage: corenet train" in ref
    bench = pages["benchmarks.md"]
    assert bench.startswith("# Benchmarks")
    if (ROOT / "benchmarks" / "README.md").exists():
        assert "<!-- benchmarks/README.md -->" in bench and "\n## Benchmarks" not in bench
        prose = re.sub(r"```.*?```", "", bench, flags=re.S)  # code comments are not headings
        assert prose.count("\n# ") == 0  # every included heading shifted below the title


def test_repository_links_become_paths_and_headings_shift(gen):
    text = "see [the hooks](../corenet/hookspecs.py) and [spec](https://x.org) and [a](#b)"
    assert gen._repo_links(text, "benchmarks") == (
        "see the hooks (`corenet/hookspecs.py`) and [spec](https://x.org) and [a](#b)")
    assert gen._shift_headings("# A\n```bash\n# comment\n```\n## B") == \
        "## A\n```bash\n# comment\n```\n### B"
    docs = ROOT / "docs"
    page = SimpleNamespace(file=SimpleNamespace(src_uri="plugins.md"))
    md = "[hooks](../corenet/hookspecs.py) [missing](../nope.py) [p](plots.md) ![i](img/x.png)"
    out = gen.on_page_markdown(md, page, {"docs_dir": str(docs)}, None)
    assert out == "hooks (`corenet/hookspecs.py`) [missing](../nope.py) [p](plots.md) " \
                  "![i](img/x.png)"


def test_nav_entries_of_missing_pages_are_dropped(gen, tmp_path):
    (tmp_path / "a.md").write_text("# a")
    gen._GENERATED.clear()
    gen._GENERATED["components/layer.md"] = ""
    nav = [{"A": "a.md"}, {"Guides": [{"Gone": "gone.md"}]}, {"L": "components/layer.md"},
           {"Web": "https://example.org"}]
    assert gen._prune_nav(nav, str(tmp_path)) == [{"A": "a.md"}, {"L": "components/layer.md"},
                                                  {"Web": "https://example.org"}]


def test_every_nav_page_exists_or_is_generated(gen, pages):
    import re

    text = (ROOT / "mkdocs.yml").read_text()
    targets = re.findall(r":\s+([\w/.-]+\.md)\s*$", text, re.M)
    assert "components/layer.md" in targets and "config.md" in targets
    others = {"cnn.md", "pruning.md"}  # guides written by other changes; skipped if absent
    for target in targets:
        assert (ROOT / "docs" / target).exists() or target in pages or target in others, target


@pytest.mark.parametrize("page", ["config.md", "getting-started.md"])
def test_toml_examples_in_the_docs_are_valid(page):
    import re

    from corenet.config_file import loads

    blocks = re.findall(r"```toml\n(.*?)```", (ROOT / "docs" / page).read_text(), re.S)
    assert blocks
    for block in blocks:
        cfg = loads(block, source=page)
        assert cfg.layers

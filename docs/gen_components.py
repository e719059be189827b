"""Generated documentation pages, as a MkDocs hook (``hooks:`` in mkdocs.yml) and as a
script.

Pages generated from the live registry and the source tree at build time:

``components/index.md`` and ``components/<category>.md``
    every component registered by the corenet distribution, per category: its class,
    module, docstring, and its hyperparameters with their defaults
    (:func:`corenet.config_file.hyperparameters`: ``inspect.signature`` of the
    constructor, following ``**kwargs`` into base classes; an optimizer's ``defaults``);
``cli-reference.md``
    the ``--help`` text of every ``corenet`` command;
``benchmarks.md``
    ``benchmarks/README.md`` and every ``benchmarks/RESULTS*.md``, headings shifted one
    level down.

As a hook it also

* drops ``nav`` entries whose page does not exist (a guide another change has not added
  yet) with an INFO message, so ``mkdocs build --strict`` stays meaningful for the rest;
* rewrites links from a page to repository files outside ``docs/`` (``../corenet/x.py``,
  ``../plugins/...``) — valid on GitHub, outside the site — into the repository path in
  code font, so that strict builds do not fail on them; links to missing targets are
  left alone and still fail the build.

Script use (writes the generated pages into a directory, e.g. to inspect them)::

    python docs/gen_components.py [--out DIR] [--all-distributions]
"""
from __future__ import annotations

import argparse
import io
import logging
import os
import re
from contextlib import redirect_stdout
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.gen_components")

ROOT = Path(__file__).resolve().parent.parent

TITLES = {"layer": "Layers", "activation": "Activations", "loss": "Losses",
          "metric": "Metrics", "optimizer": "Optimizers", "scheduler": "Schedulers",
          "initializer": "Initializers", "normalizer": "Normalizers",
          "regularizer": "Regularizers", "pruner": "Pruners", "grower": "Growers",
          "callback": "Callbacks", "augmentation": "Augmentations", "dataset": "Data sets"}

USAGE = {
    "layer": ('`Sequential([{"name": "dense", "out_features": 10}])`, '
              '`corenet.create("layer", "dense", out_features=10)`',
              '`[[model.layers]]` tables with `name = "..."`'),
    "activation": ('`dense(out_features=..., activation="relu")` or the `activation` layer',
                   '`activation = "relu"` in a layer table'),
    "loss": ('`model.compile(loss="cross_entropy")`', '`loss = "..."` or `[loss]`'),
    "metric": ('`model.compile(metrics=["accuracy"])`', '`metrics = ["accuracy"]`'),
    "optimizer": ('`model.compile(optimizer={"name": "adam", "lr": 1e-3})`', '`[optimizer]`'),
    "scheduler": ('`model.compile(scheduler={"name": "cosine", "T": 10})`', '`[scheduler]`'),
    "initializer": ('`dense(..., weight_init="he_normal")`',
                    '`weight_init = "..."` in a layer table'),
    "normalizer": ('`corenet.create("normalizer", "standardize").fit_transform(X)`',
                   '`normalize = "standardize"` in `[data]`'),
    "regularizer": ('`model.compile(regularizers=[{"name": "l2", "lam": 1e-4}])`',
                    '`[[regularizers]]`'),
    "pruner": ('`pruner.prune(model, X, y)` or `fit(..., callbacks=[pruner])`',
               '`[[pruners]]` (during training); `corenet prune`'),
    "grower": ('`CascadeCorrelation(...).fit(X, y)` or `fit(..., callbacks=[grower])`',
               '`[[growers]]` (during training); `corenet grow`'),
    "callback": ('`model.fit(..., callbacks=[{"name": "early_stopping"}])`',
                 '`[[callbacks]]`'),
    "augmentation": ('`corenet.create("augmentation", name, ...)`', "(Python only)"),
    "dataset": ('`corenet.registry.get("dataset", "xor").load()`',
                '`name = "..."` in `[data]`, with `options = {...}`'),
}

_MD_SPECIAL = re.compile(r"([\\*_\[\]<>|#])")


# ----------------------------------------------------------------------------- helpers
def _escape(text: str) -> str:
    """Escape Markdown outside ``code`` spans (double or single backticks)."""
    parts = re.split(r"(``.+?``|`[^`]+`)", text)
    return "".join(p if p.startswith("`") else _MD_SPECIAL.sub(r"\\\1", p) for p in parts)


def _docstring(cls) -> str:
    import inspect

    doc = inspect.getdoc(cls) or ""
    base = inspect.getdoc(cls.__mro__[1]) if len(cls.__mro__) > 1 else None
    return "" if doc == base else doc


def _summary(doc: str, limit: int = 160) -> str:
    """The first sentence, without reST roles, at most ``limit`` characters (never cut
    inside a code span)."""
    para = doc.strip().split("\n\n")[0].replace("\n", " ")
    para = re.sub(r":(?:class|func|meth|mod|attr|data|obj):", "", para)
    match = re.match(r"(.+?[.!?])(?:\s+(?=[A-Z])|\s*$)", para)
    text = match.group(1) if match else para
    if len(text) <= limit:
        return text
    out = ""
    for part in re.split(r"(``.+?``|`[^`]+`|\s+)", text):
        if len(out) + len(part) > limit - 3:
            break
        out += part
    return out.rstrip() + "..."


def _default(value) -> str:
    import inspect

    if value is inspect.Parameter.empty:
        return "required"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return "`" + text.replace("`", "'") + "`"


def _annotation(param) -> str:
    import inspect

    ann = param.annotation
    if ann is inspect.Parameter.empty:
        return ""
    text = ann if isinstance(ann, str) else getattr(ann, "__name__", repr(ann))
    return _escape(str(text))


def _entries(all_distributions: bool):
    from corenet import registry

    return [e for e in registry.entries() if all_distributions or e.distribution == "corenet"]


# ----------------------------------------------------------------------------- pages
def category_page(category: str, entries) -> str:
    from corenet.config_file import hyperparameters

    title = TITLES.get(category, category)
    python, config = USAGE.get(category, ("", ""))
    out = [f"# {title} (`{category}`)", ""]
    out.append(f"*Generated from the registry by `docs/gen_components.py`.* "
               f"{len(entries)} component{'s' if len(entries) != 1 else ''} registered by "
               f"corenet. List them with `corenet plugins --category {category}`.")
    out.append("")
    if python:
        out += [f"In Python: {python}. In a run configuration: {config}.", ""]
    if not entries:
        out += ["None registered yet.", ""]
        return "\n".join(out)
    out += ["| name | summary |", "|---|---|"]
    for e in entries:
        out.append(f"| [`{e.name}`](#{e.name}) | {_escape(_summary(_docstring(e.cls)))} |")
    out.append("")
    for e in entries:
        out += [f"## {e.name}", "",
                f"`{e.cls.__module__}.{e.cls.__qualname__}` — plugin `{e.plugin}`", ""]
        doc = _docstring(e.cls)
        if doc:
            out += ["```text", doc.replace("```", "'''"), "```", ""]
        params = hyperparameters(e.cls)
        typed = any(_annotation(p) for p in params)
        if params:
            out += ["| hyperparameter | default |" + (" type |" if typed else ""),
                    "|---|---|" + ("---|" if typed else "")]
            out += [f"| `{p.name}` | {_default(p.default)} |"
                    + (f" {_annotation(p)} |" if typed else "") for p in params]
        else:
            out.append("No constructor hyperparameters.")
        out.append("")
    return "\n".join(out)


def index_page(by_category: dict) -> str:
    out = ["# Components", "",
           "*Generated from the registry by `docs/gen_components.py`.* Every component of "
           "corenet is a plugin registered under a category and a name (see "
           "[Concepts](../concepts.md) and [Writing a plugin](../plugins.md)). Each page "
           "lists a category's components with their docstrings and hyperparameters.", "",
           "| category | components |", "|---|---|"]
    for category, entries in by_category.items():
        names = ", ".join(f"`{e.name}`" for e in entries) or "(none yet)"
        out.append(f"| [{TITLES.get(category, category)}]({category}.md) | {names} |")
    return "\n".join(out) + "\n"


def cli_page() -> str:
    from corenet import cli

    parser = cli.build_parser()
    out = ["# Command reference", "",
           "*Generated by `docs/gen_components.py` from the argparse parsers.* "
           "See [Command line](cli.md) for a guided tour.", "", "## corenet", "", "```text",
           parser.format_help().rstrip(), "```", ""]
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        out += [f"## corenet {name}", "", "```text", p.format_help().rstrip(), "```", ""]
    return "\n".join(out)


def _shift_headings(text: str) -> str:
    out, fence = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        if not fence and re.match(r"#{1,5} ", line):
            line = "#" + line
        out.append(line)
    return "\n".join(out)


def _repo_links(text: str, base: str) -> str:
    """Relative links of a file in ``base`` (a repository folder) -> code-font paths."""
    def sub(m):
        label, target = m.group(1), m.group(2)
        if re.match(r"[a-z]+:|#", target):
            return m.group(0)
        path = os.path.normpath(os.path.join(base, target.split("#")[0]))
        return f"{label} (`{path}`)" if label else f"`{path}`"
    return re.sub(r"!?\[([^\]]*)\]\(([^)\s]+)\)", sub, text)


def benchmarks_page() -> str:
    folder = ROOT / "benchmarks"
    out = ["# Benchmarks", "",
           "*Generated by `docs/gen_components.py` from `benchmarks/README.md` and "
           "`benchmarks/RESULTS*.md`.* The scripts live in `benchmarks/` of the source "
           "repository (not in the installed package). `corenet bench` runs a quick "
           "built-in throughput check; `corenet bench --script NAME` runs "
           "`benchmarks/bench_NAME.py` (`corenet bench --list`).", ""]
    files = ([folder / "README.md"] if (folder / "README.md").exists() else []) + \
        sorted(folder.glob("RESULTS*.md"))
    if not files:
        out.append("No benchmark results in this checkout.")
    for f in files:
        text = _repo_links(f.read_text(encoding="utf-8"), "benchmarks")
        if f.name == "README.md":  # its "# Benchmarks" title is this page's title
            text = re.sub(r"\A\s*# [^\n]*\n", "", text)
        out += [f"<!-- {f.relative_to(ROOT)} -->", _shift_headings(text), ""]
    return "\n".join(out)


def generated_pages(all_distributions: bool = False) -> dict[str, str]:
    """``{docs-relative path: Markdown}`` of every generated page."""
    from corenet.registry import CATEGORIES

    entries = _entries(all_distributions)
    by_category = {c: [e for e in entries if e.category == c] for c in CATEGORIES}
    pages = {f"components/{c}.md": category_page(c, es) for c, es in by_category.items()}
    pages["components/index.md"] = index_page(by_category)
    with redirect_stdout(io.StringIO()):
        pages["cli-reference.md"] = cli_page()
    pages["benchmarks.md"] = benchmarks_page()
    return pages


# ----------------------------------------------------------------------------- mkdocs hooks
def _prune_nav(items, docs_dir):
    kept = []
    for item in items:
        if isinstance(item, dict):
            (title, value), = item.items()
            if isinstance(value, list):
                value = _prune_nav(value, docs_dir)
                if value:
                    kept.append({title: value})
                continue
            item_path = value
        else:
            item_path = item
        if isinstance(item_path, str) and item_path.endswith(".md") and \
                not re.match(r"[a-z]+://", item_path) and \
                not (Path(docs_dir) / item_path).exists() and item_path not in _GENERATED:
            log.info("gen_components: nav entry %r skipped: docs/%s does not exist yet",
                     item, item_path)
            continue
        kept.append(item)
    return kept


_GENERATED: dict[str, str] = {}


def on_config(config, **kwargs):
    _GENERATED.clear()
    _GENERATED.update(generated_pages())
    if config.get("nav"):
        config["nav"] = _prune_nav(config["nav"], config["docs_dir"])
    return config


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File

    for path, content in _GENERATED.items():
        existing = files.get_file_from_path(path)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, path, content=content))
    return files


def on_page_markdown(markdown, page, config, files, **kwargs):
    """Links from a page to repository files outside docs/ -> code-font paths."""
    docs_dir = Path(config["docs_dir"]).resolve()
    page_dir = (docs_dir / page.file.src_uri).parent

    def sub(m):
        bang, label, target = m.group(1), m.group(2), m.group(3)
        if re.match(r"[a-z]+:|#|/", target):
            return m.group(0)
        resolved = (page_dir / target.split("#")[0]).resolve()
        if resolved.is_relative_to(docs_dir) or not resolved.exists() or \
                not resolved.is_relative_to(ROOT):
            return m.group(0)
        rel = resolved.relative_to(ROOT).as_posix()
        return f"{label} (`{rel}`)" if label and not bang else f"`{rel}`"
    return re.sub(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)", sub, markdown)


# ----------------------------------------------------------------------------- script
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write corenet's generated doc pages.")
    parser.add_argument("--out", default="build/docs-generated",
                        help="output directory (default build/docs-generated)")
    parser.add_argument("--all-distributions", action="store_true",
                        help="include components of other installed plugins")
    args = parser.parse_args(argv)
    for path, content in generated_pages(args.all_distributions).items():
        target = Path(args.out) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

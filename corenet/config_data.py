"""Data sources of run configurations and of ``corenet evaluate`` / ``corenet predict``.

* a registered data set by name (``xor``, ``two_spirals``, ``parity``, ``mnist``, any
  plugin's): ``registry.get("dataset", name).load(**options)``;
* an ``.npz`` file holding arrays ``X`` and ``y`` (names configurable), read with
  ``allow_pickle=False``;
* a ``.csv`` file of numbers: one sample per row, the target in ``target_column``
  (default the last; an index or, with a header row, a column name); a header row is
  detected when the first row is not numeric (or forced with ``header``).

:func:`load_data` applies the ``[data]`` table of a :class:`~corenet.config_file.RunConfig`:
source, optional fixed-seed test split (``test_split``, ``split_seed``; the MNIST
default split is ``test_split = 2000, split_seed = 0``) or ``test_path``, subsets
(``max_train``, ``max_test``: the first N samples), ``flatten`` and a ``normalize``
normalizer fitted on the training part only.
"""
from __future__ import annotations

import csv

import numpy as np

from . import registry
from .config_file import ConfigError


def _fail(where: str, message: str):
    raise ConfigError(f"{where}: {message}")


def read_npz(path: str, x_key: str = "X", y_key: str | None = "y", where: str = ""):
    """``(X, y)`` from an ``.npz`` archive (``y`` None when ``y_key`` is None)."""
    where = where or path
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            if x_key not in keys or (y_key is not None and y_key not in keys):
                wanted = [k for k in (x_key, y_key) if k is not None]
                _fail(where, f"{path} must hold arrays {', '.join(map(repr, wanted))}; it "
                             f"holds {', '.join(map(repr, keys)) or 'nothing'} (set x_key / "
                             f"y_key to use other names)")
            X = np.asarray(archive[x_key])
            y = np.asarray(archive[y_key]) if y_key is not None else None
    except FileNotFoundError:
        _fail(where, f"file not found: {path}")
    except ValueError as exc:  # object arrays need pickle: refused
        if isinstance(exc, ConfigError):
            raise
        _fail(where, f"{path} cannot be read without pickle ({exc})")
    except OSError as exc:
        _fail(where, f"{path} is not a readable .npz file ({exc})")
    return X, y


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_csv_table(path: str, header=None, delimiter: str = ",", where: str = ""):
    """``(column names or None, float64 array (rows, columns))`` of a numeric CSV file."""
    where = where or path
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [row for row in csv.reader(fh, delimiter=delimiter) if row]
    except FileNotFoundError:
        _fail(where, f"file not found: {path}")
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        _fail(where, f"{path} cannot be read as CSV ({exc})")
    if not rows:
        _fail(where, f"{path} is empty")
    if header is None:
        header = not all(_is_number(c) for c in rows[0])
    names = [c.strip() for c in rows[0]] if header else None
    body = rows[1:] if header else rows
    if not body:
        _fail(where, f"{path} has no data rows")
    width = len(body[0])
    values = np.empty((len(body), width))
    for r, row in enumerate(body):
        if len(row) != width:
            _fail(where, f"{path} line {r + 1 + bool(header)}: expected {width} fields, got "
                         f"{len(row)}")
        for c, cell in enumerate(row):
            try:
                values[r, c] = float(cell)
            except ValueError:
                _fail(where, f"{path} line {r + 1 + bool(header)}, column {c + 1}: expected "
                             f"a number, got {cell!r}")
    return names, values


def read_csv(path: str, target_column=-1, header=None, delimiter: str = ",",
             where: str = ""):
    """``(X, y)`` from a numeric CSV file; ``target_column`` is an index or a name."""
    where = where or path
    names, values = read_csv_table(path, header, delimiter, where)
    width = values.shape[1]
    if isinstance(target_column, str):
        if names is None or target_column not in names:
            _fail(where, f"target_column {target_column!r} is not a column name of {path} "
                         f"(columns: {names if names else 'no header row'})")
        col = names.index(target_column)
    else:
        if not -width <= target_column < width:
            _fail(where, f"target_column {target_column} is out of range for {width} columns")
        col = target_column % width
    if width < 2:
        _fail(where, f"{path} needs at least two columns (features and a target)")
    X = np.ascontiguousarray(np.delete(values, col, axis=1))
    return X, values[:, col].copy()


def read_inputs(path: str, key: str = "X", header=None, delimiter: str = ","):
    """Inputs for ``corenet predict``: ``.npz`` (array ``key``), ``.npy`` or ``.csv``
    (every column is a feature)."""
    low = path.lower()
    if low.endswith(".npz"):
        return read_npz(path, key, None)[0]
    if low.endswith(".npy"):
        try:
            return np.load(path, allow_pickle=False)
        except FileNotFoundError:
            _fail(path, "file not found")
        except (OSError, ValueError) as exc:
            _fail(path, f"not a readable .npy file without pickle ({exc})")
    if low.endswith(".csv"):
        return read_csv_table(path, header, delimiter)[1]
    _fail(path, "expected an .npz, .npy or .csv file")


def _targets(y, target_dtype: str):
    y = np.asarray(y)
    if y.dtype.kind not in "fiub":
        raise ConfigError(f"targets must be numeric, got dtype {y.dtype}")
    if target_dtype == "int" or (target_dtype == "auto" and y.dtype.kind == "f" and y.size
                                 and np.all(np.isfinite(y)) and np.all(y == np.round(y))
                                 and y.ndim == 1):
        return y.astype(np.int64)
    if target_dtype == "float":
        return y.astype(np.float64)
    return y


def load_source(cfg, *, name=None, path=None, where="data"):
    """``(X, y)`` from a registered data set or a file, per the ``[data]`` options."""
    d = cfg.data
    full = f"config {cfg.source or '<string>'}: {where}"
    if name is not None:
        loader = registry.get("dataset", name)
        try:
            X, y = loader.load(**dict(d.options))
        except TypeError as exc:
            raise ConfigError(f"{full}.options: dataset {name!r} rejected the options "
                              f"{sorted(d.options)}: {exc}") from exc
        except (ValueError, LookupError) as exc:
            raise ConfigError(f"{full}.options: dataset {name!r}: {exc}") from exc
    else:
        file = cfg.resolve(path)
        if file.lower().endswith(".npz"):
            X, y = read_npz(file, d.x_key, d.y_key, full)
        else:
            X, y = read_csv(file, d.target_column, d.header, d.delimiter, full)
    X = np.asarray(X)
    if X.dtype.kind not in "fiub":
        raise ConfigError(f"{full}: inputs X must be numeric, got dtype {X.dtype}")
    if X.ndim < 2:
        raise ConfigError(f"{full}: inputs X must have a sample axis and features, got "
                          f"shape {X.shape}")
    if y is None or np.asarray(y).shape[:1] != X.shape[:1]:
        raise ConfigError(f"{full}: X has {X.shape[0]} samples but y has shape "
                          f"{None if y is None else np.asarray(y).shape}")
    return np.ascontiguousarray(X, dtype=np.float64), _targets(y, d.target_dtype)


def load_data(cfg, return_normalizer: bool = False):
    """``(X_train, y_train, X_test, y_test)`` for a run configuration (test arrays None
    when there is no test set); with ``return_normalizer`` also the normalizer fitted on
    the training inputs (None without ``normalize``), to apply to new inputs."""
    from .datasets import train_test_split_fixed

    d = cfg.data
    X, y = load_source(cfg, name=d.name, path=d.path)
    X_test = y_test = None
    if d.test_split:
        n = X.shape[0]
        n_test = d.test_split if isinstance(d.test_split, int) else int(round(d.test_split * n))
        if not 1 <= n_test <= n - 1:
            raise ConfigError(f"config {cfg.source or '<string>'}: data.test_split: gives "
                              f"{n_test} test samples of {n}; need between 1 and {n - 1}")
        X, y, X_test, y_test = train_test_split_fixed(X, y, test_size=n_test,
                                                      random_state=d.split_seed)
    elif d.test_path is not None:
        X_test, y_test = load_source(cfg, path=d.test_path, where="data.test_path")
    if d.max_train is not None:
        X, y = X[:d.max_train], y[:d.max_train]
    if X_test is not None and d.max_test is not None:
        X_test, y_test = X_test[:d.max_test], y_test[:d.max_test]
    if d.flatten:
        X = X.reshape(X.shape[0], -1)
        X_test = None if X_test is None else X_test.reshape(X_test.shape[0], -1)
    if X_test is not None and X_test.shape[1:] != X.shape[1:]:
        raise ConfigError(f"config {cfg.source or '<string>'}: data: test inputs have "
                          f"per-sample shape {X_test.shape[1:]}, training inputs "
                          f"{X.shape[1:]}")
    norm = None
    if d.normalize is not None:
        norm = d.normalize.create()
        X = np.ascontiguousarray(norm.fit_transform(X))
        if X_test is not None:
            X_test = np.ascontiguousarray(norm.transform(X_test))
    out = (np.ascontiguousarray(X), y,
           None if X_test is None else np.ascontiguousarray(X_test), y_test)
    return out + (norm,) if return_normalizer else out


def describe(cfg) -> str:
    """One line naming the data source of a configuration."""
    d = cfg.data
    src = f"dataset {d.name!r}" if d.name else f"file {d.path}"
    if d.options:
        src += " " + ", ".join(f"{k}={v!r}" for k, v in d.options.items())
    return src

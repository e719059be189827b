"""Reader and writer of the IDX format used by MNIST (no pickle).

Layout: 2 zero bytes, a type code, the number of dimensions ``k``, then ``k``
big-endian uint32 sizes and the data in C order, big-endian. Type codes: 0x08 ubyte,
0x09 sbyte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64. Files may be gzip
compressed (detected by content, not by name).
"""
from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

_CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_BY_DTYPE = {np.dtype(v).newbyteorder("="): k for k, v in _CODES.items()}


def _read_bytes(source) -> tuple[bytes, str]:
    if hasattr(source, "read"):
        return source.read(), getattr(source, "name", "<file object>")
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), "<bytes>"
    with open(os.fspath(source), "rb") as fh:
        return fh.read(), os.fspath(source)


def load_idx(path) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a native-byte-order numpy array.

    ``path`` is a file path, a binary file object or the file's bytes. Raises
    ``ValueError`` naming the file for a bad magic number, an unknown type code, a
    corrupt gzip stream, or a data size that differs from the header's dimensions
    (truncated or padded files).
    """
    raw, label = _read_bytes(path)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"load_idx: {label}: corrupt or truncated gzip data ({exc})") from None
    if len(raw) < 4:
        raise ValueError(f"load_idx: {label}: file too short for an IDX header "
                         f"({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"load_idx: {label}: bad magic number 0x{raw[:4].hex()} "
                         f"(IDX files start with two zero bytes)")
    code, ndim = raw[2], raw[3]
    if code not in _CODES:
        raise ValueError(f"load_idx: {label}: unknown IDX type code 0x{code:02x}; "
                         f"known: {', '.join(f'0x{c:02x}' for c in _CODES)}")
    if ndim == 0:
        raise ValueError(f"load_idx: {label}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"load_idx: {label}: truncated header: {ndim} dimensions need "
                         f"{header} bytes, file has {len(raw)}")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_CODES[code])
    expected = int(np.prod(dims, dtype=object)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        kind = "truncated" if got < expected else "has trailing bytes"
        raise ValueError(f"load_idx: {label}: file {kind}: header shape {dims} of "
                         f"{dtype.newbyteorder('=')} needs {expected} data bytes, found {got}")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def save_idx(path, array, compress=None) -> None:
    """Write ``array`` (uint8, int8, int16, int32, float32 or float64) as an IDX file;
    gzip-compressed when ``compress`` is True or (if None) the name ends in ``.gz``."""
    a = np.asarray(array)
    key = a.dtype.newbyteorder("=")
    if key not in _BY_DTYPE:
        raise TypeError(f"save_idx: dtype {a.dtype} has no IDX type code; use one of "
                        f"{sorted(str(d) for d in _BY_DTYPE)}")
    if a.ndim == 0 or a.ndim > 255:
        raise ValueError(f"save_idx: need 1 to 255 dimensions, got shape {a.shape}")
    code = _BY_DTYPE[key]
    data = (bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes()
            + np.ascontiguousarray(a, dtype=_CODES[code]).tobytes())
    path = os.fspath(path)
    if compress or (compress is None and path.endswith(".gz")):
        data = gzip.compress(data)
    with open(path, "wb") as fh:
        fh.write(data)

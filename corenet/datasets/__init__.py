"""Data sets (category ``dataset``; spec growing.md §6–§7, D-15, D-61, D-68).

This module is the family's pluggy plugin. Registered classes (each with
``load(**kwargs) -> (X, y)``): ``xor``, ``two_spirals``, ``parity``, ``mnist``,
``monks``, ``synthetic_segmentation``.
The generators are also importable directly::

    from corenet.datasets import xor, two_spirals, parity, load_mnist, load_idx, mnist_split
    from corenet.datasets import synthetic_segmentation
"""
from __future__ import annotations

from ..plugins import hookimpl
from .idx import load_idx, save_idx
from .mnist import load_mnist, mnist_split, train_test_split, train_test_split_fixed
from .monks import MONKs, monks, monks_split
from .segmentation import synthetic_segmentation
from .synthetic import encode_targets, parity, spiral_grid, two_spirals, xor

__all__ = ["xor", "two_spirals", "spiral_grid", "parity", "encode_targets", "load_idx",
           "save_idx", "load_mnist", "mnist_split", "train_test_split",
           "train_test_split_fixed", "synthetic_segmentation", "XOR", "TwoSpirals", "Parity",
           "MNIST", "monks", "monks_split", "MONKs"]


class XOR:
    """``dataset:xor`` — see :func:`corenet.datasets.xor`."""
    name = "xor"

    @staticmethod
    def load(**kwargs):
        return xor(**kwargs)


class TwoSpirals:
    """``dataset:two_spirals`` — see :func:`corenet.datasets.two_spirals`."""
    name = "two_spirals"

    @staticmethod
    def load(**kwargs):
        return two_spirals(**kwargs)


class Parity:
    """``dataset:parity`` — see :func:`corenet.datasets.parity`."""
    name = "parity"

    @staticmethod
    def load(**kwargs):
        return parity(**kwargs)


class MNIST:
    """``dataset:mnist`` — see :func:`corenet.datasets.load_mnist` (bundled 10k test set
    by default)."""
    name = "mnist"

    @staticmethod
    def load(**kwargs):
        return load_mnist(**kwargs)


class SyntheticSegmentation:
    """``dataset:synthetic_segmentation`` — see
    :func:`corenet.datasets.synthetic_segmentation` (images and per-pixel labels)."""
    name = "synthetic_segmentation"

    @staticmethod
    def load(**kwargs):
        return synthetic_segmentation(**kwargs)


@hookimpl
def corenet_register_datasets():
    return [XOR, TwoSpirals, Parity, MNIST, MONKs, SyntheticSegmentation]

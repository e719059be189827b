"""The base class of callbacks: objects registered as plugins for one training run."""
from __future__ import annotations


class Callback:
    """A stateful plugin for one run (pytest's StepwisePlugin pattern).

    Implement any event hook of :mod:`corenet.hookspecs` as a method of the same name
    decorated with ``@corenet.hookimpl``; the trainer registers the instance with the
    plugin manager when training begins and unregisters it when training ends.
    """

    name: str = ""

    def get_config(self) -> dict:
        return {}

"""The ``epoch_counter`` callback: event hooks and a decision hook on one object."""
import corenet
from corenet.errors import HyperparameterError


class EpochCounter(corenet.Callback):
    """Counts epochs and batches of a run and records each epoch's logs
    (category ``callback``, name ``epoch_counter``).

    A callback is a plugin object registered for one training run: its methods named
    after hooks of :mod:`corenet.hookspecs` and marked ``@corenet.hookimpl`` are called
    by the trainer. Each method takes only the hook arguments it needs.

    * ``corenet_on_train_begin`` resets the counters;
    * ``corenet_on_batch_end`` counts mini-batches (``batches``);
    * ``corenet_on_epoch_end`` counts epochs (``epochs``) and copies ``logs``
      (``history``, one dict per epoch);
    * ``corenet_should_stop`` (a firstresult decision hook) answers ``True`` once
      ``stop_after`` epochs have run, and ``None`` (abstain) otherwise.

    Parameters
    ----------
    stop_after : int or None
        Stop training after this many epochs (``None``: never vote to stop).
    """

    name = "epoch_counter"

    def __init__(self, stop_after: int | None = None):
        if stop_after is not None and (int(stop_after) != stop_after or stop_after < 1):
            raise HyperparameterError(
                f"callback {self.name!r}: stop_after must be a positive integer or None, "
                f"got {stop_after!r}")
        self.stop_after = None if stop_after is None else int(stop_after)
        self.epochs = 0
        self.batches = 0
        self.history: list[dict] = []

    @corenet.hookimpl
    def corenet_on_train_begin(self):
        self.epochs = 0
        self.batches = 0
        self.history = []

    @corenet.hookimpl
    def corenet_on_batch_end(self):
        self.batches += 1

    @corenet.hookimpl
    def corenet_on_epoch_end(self, epoch, logs):
        self.epochs += 1
        self.history.append({"epoch": epoch, **logs})

    @corenet.hookimpl
    def corenet_should_stop(self, epoch):
        if self.stop_after is not None and epoch + 1 >= self.stop_after:
            return True
        return None

    def get_config(self) -> dict:
        return {"stop_after": self.stop_after}

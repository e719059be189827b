"""Every hook of corenet, in one documented file.

A plugin is a module (or an object) whose functions carry the ``@corenet.hookimpl``
marker and whose names are the hook names below. Plugins are found through the
entry-point group ``corenet``; corenet's own components load the same way.

Three kinds of hooks:

1. *Registration hooks* (``corenet_register_<category>s``) return a list of classes,
   each with a class attribute ``name`` (the canonical name of spec README §9).
   The registry calls every implementation once, at first use.
2. *Training-event hooks* (``corenet_on_*``) are called by the trainer with keyword
   arguments at batch or epoch granularity (spec README §8), never inside kernels.
   They return nothing. Stateful plugins (callbacks, pruners, growers) are objects
   registered for one run and unregistered after it.
3. *Decision hooks* (``firstresult``): the first non-``None`` answer wins.

Every event hook receives ``trainer`` (the running :class:`corenet.Trainer`), from which
``trainer.model``, ``trainer.optimizer``, ``trainer.loss`` and ``trainer.history`` are
reachable; hooks may take any subset of the documented arguments (pluggy passes only
the arguments an implementation names).
"""
import pluggy

hookspec = pluggy.HookspecMarker("corenet")

# --------------------------------------------------------------------------- registration
# One hook per component category (spec README §9). Each returns a list of classes.


@hookspec
def corenet_register_layers():
    """Return layer classes (category ``"layer"``): subclasses of :class:`corenet.Layer`."""


@hookspec
def corenet_register_activations():
    """Return activation classes (category ``"activation"``): subclasses of
    :class:`corenet.Activation` with ``f``, ``df``, ``d2f``."""


@hookspec
def corenet_register_losses():
    """Return loss classes (category ``"loss"``): subclasses of :class:`corenet.Loss`."""


@hookspec
def corenet_register_metrics():
    """Return metric classes (category ``"metric"``): subclasses of :class:`corenet.Metric`."""


@hookspec
def corenet_register_optimizers():
    """Return optimizer classes (category ``"optimizer"``): subclasses of
    :class:`corenet.Optimizer`."""


@hookspec
def corenet_register_schedulers():
    """Return learning-rate schedule classes (category ``"scheduler"``)."""


@hookspec
def corenet_register_initializers():
    """Return initializer classes (category ``"initializer"``): subclasses of
    :class:`corenet.Initializer`."""


@hookspec
def corenet_register_normalizers():
    """Return normalizer classes (category ``"normalizer"``): input/target scalers with
    ``fit``/``transform``/``inverse_transform``."""


@hookspec
def corenet_register_regularizers():
    """Return regularizer classes (category ``"regularizer"``): a penalty and its gradient,
    added between backward and the optimizer step."""


@hookspec
def corenet_register_pruners():
    """Return pruner classes (category ``"pruner"``): structural regularizers that own
    parameter masks and act through the event hooks."""


@hookspec
def corenet_register_growers():
    """Return grower classes (category ``"grower"``): structural regularizers that add
    units and answer :func:`corenet_grow_network`."""


@hookspec
def corenet_register_callbacks():
    """Return callback classes (category ``"callback"``): objects implementing event hooks."""


@hookspec
def corenet_register_augmentations():
    """Return data-augmentation classes (category ``"augmentation"``)."""


@hookspec
def corenet_register_datasets():
    """Return dataset classes (category ``"dataset"``) whose ``load(**kwargs)`` returns
    arrays ``(X, y)``."""


# --------------------------------------------------------------------------- training events
# Order within one batch (spec README §8): batch_begin, forward, loss, backward,
# after_backward (gradients exist; coupled regularizers have been added), before_step,
# optimizer step, after_step (masks re-applied), batch_end.


@hookspec
def corenet_on_train_begin(trainer):
    """Called once before the first epoch."""


@hookspec
def corenet_on_train_end(trainer, history):
    """Called once after the last epoch (e.g. to restore the best weights)."""


@hookspec
def corenet_on_epoch_begin(trainer, epoch):
    """Called at the start of each epoch (``epoch`` counts from 0)."""


@hookspec
def corenet_on_epoch_end(trainer, epoch, logs):
    """Called after validation at the end of each epoch. ``logs`` maps metric names
    (``"loss"``, ``"val_loss"``, ``"val_accuracy"``, ...) to floats; a hook may add entries."""


@hookspec
def corenet_on_batch_begin(trainer, batch, X, y):
    """Called before the forward pass of a mini-batch (``batch`` = index within the epoch)."""


@hookspec
def corenet_on_batch_end(trainer, batch, loss):
    """Called after the optimizer step with the batch's (unregularized) loss value."""


@hookspec
def corenet_on_after_backward(trainer, parameters):
    """Called once all gradients of the batch exist (``parameters`` in model order),
    before they are masked and before the optimizer step. Hooks may modify ``p.grad``."""


@hookspec
def corenet_on_before_step(trainer, optimizer):
    """Called just before ``optimizer.step()``."""


@hookspec
def corenet_on_after_step(trainer, optimizer):
    """Called after the step, once masks have been re-applied to the parameters."""


# --------------------------------------------------------------------------- decisions


@hookspec(firstresult=True)
def corenet_should_stop(trainer, epoch, logs):
    """Return True to stop training after this epoch (early stopping, tolerance stop);
    None to abstain. The first non-None answer decides."""


@hookspec(firstresult=True)
def corenet_grow_network(trainer, model):
    """Return a (possibly new) model with added units when the network should grow,
    or None to abstain. The trainer continues with the returned model."""

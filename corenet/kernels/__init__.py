"""Public facade of the compiled kernels of ``corenet/_kernels``.

Every function validates its arrays here, in Python, before the compiled code runs
without the GIL: float32/float64 only, one dtype for all arrays (no silent casts,
README §3), C-contiguous, matching shapes, writable outputs, labels in 0..K-1. Bad input
raises an exception from :mod:`corenet.errors` (``DTypeError``, ``ShapeError``) or
``ValueError`` naming the kernel, what it expected and what it received.

Outputs can be passed with ``out=`` (same shape and dtype, C-contiguous) so layers reuse
buffers; element-wise kernels allow ``out`` to be an input. The thread count comes from
:func:`corenet.config.get_num_threads`; small arrays run serially (activations: below
65,536 elements, 262,144 for the memory-bound ones; 262,144 and 1,048,576 under
``OMP_WAIT_POLICY=PASSIVE``; see each kernel module).
Results are deterministic and do not depend on the thread count.

Submodules (every public name is re-exported here; use ``corenet.kernels.<name>``):

* :mod:`~corenet.kernels.activations`: activation names, codes and hyperparameters
  (listed there), ``activation_forward`` / ``activation_backward``, the 1-bit mask route
  of the ReLU family, PReLU.
* :mod:`~corenet.kernels.softmax_ce`: ``softmax``, ``log_softmax``,
  ``softmax_cross_entropy``.
* :mod:`~corenet.kernels.pooling`: pooling geometry, max / average pooling,
  max-unpooling, nearest-neighbour upsampling.
* :mod:`~corenet.kernels.conv`: conv1d / conv2d forward, backward, input and weight
  gradients, ``conv_bias_grad``, transposed convolutions, ``convolve_true``.
* :mod:`~corenet.kernels.conv_args`: parsing and validation of the convolution
  arguments, ``conv_padding``, ``conv_output_size``, ``conv_transpose_output_size``.
* :mod:`~corenet.kernels.conv_plan`: ``Workspace``, the method choice of a convolution
  pass and its tuning constants, the passes ``_forward_pass`` / ``_backward_pass``.
* :mod:`~corenet.kernels.blas`: OpenBLAS thread control and ``matmul``.
* :mod:`~corenet.kernels.cascade`: ``cascade_pool_values``, ``cascade_quickprop``.
* ``_common``: the validation helpers shared by all of them.
"""
from __future__ import annotations

from .activations import (ACTIVATION_CODES, MASK_ACTIVATIONS,  # noqa: F401
                          activation_backward, activation_backward_mask, activation_forward,
                          activation_forward_mask, activation_params, prelu_backward,
                          prelu_forward)
from .blas import matmul  # noqa: F401
from .cascade import CASCADE_UNIT_CODES, cascade_pool_values, cascade_quickprop  # noqa: F401
from .conv import (conv1d_backward, conv1d_forward, conv1d_input_grad,  # noqa: F401
                   conv1d_weight_grad, conv2d_backward, conv2d_forward, conv2d_input_grad,
                   conv2d_weight_grad, conv_bias_grad, conv_transpose1d_backward,
                   conv_transpose1d_forward, conv_transpose2d_backward,
                   conv_transpose2d_forward, convolve_true)
from .conv_args import conv_output_size, conv_padding, conv_transpose_output_size  # noqa: F401
from .conv_plan import Workspace  # noqa: F401
from .pooling import (UPSAMPLE_MODES, PoolGeometry, avg_pool2d_backward,  # noqa: F401
                      avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward,
                      max_unpool2d_backward, max_unpool2d_forward, pool2d_geometry,
                      upsample_nearest2d_backward, upsample_nearest2d_forward)
from .softmax_ce import log_softmax, softmax, softmax_cross_entropy  # noqa: F401

__all__ = ["ACTIVATION_CODES", "activation_forward", "activation_backward",
           "MASK_ACTIVATIONS", "activation_forward_mask", "activation_backward_mask",
           "prelu_forward",
           "prelu_backward", "softmax", "log_softmax", "softmax_cross_entropy"]
__all__ += ["PoolGeometry", "pool2d_geometry", "max_pool2d_forward", "max_pool2d_backward",
            "avg_pool2d_forward", "avg_pool2d_backward", "max_unpool2d_forward",
            "max_unpool2d_backward", "upsample_nearest2d_forward",
            "upsample_nearest2d_backward"]
__all__ += ["conv_padding", "conv_output_size", "conv_transpose_output_size", "Workspace",
            "conv1d_forward", "conv1d_backward", "conv1d_input_grad", "conv1d_weight_grad",
            "conv2d_forward", "conv2d_backward", "conv2d_input_grad", "conv2d_weight_grad",
            "conv_bias_grad", "conv_transpose1d_forward", "conv_transpose1d_backward",
            "conv_transpose2d_forward", "conv_transpose2d_backward", "convolve_true",
            "matmul", "activation_params", "UPSAMPLE_MODES", "CASCADE_UNIT_CODES",
            "cascade_pool_values", "cascade_quickprop"]

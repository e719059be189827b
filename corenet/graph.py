"""A DAG of layers with named inputs and outputs (spec networks.md §4.2).

Merges (residual ``add``, ``concat``) are ordinary multi-input layers. Nodes are kept in
insertion order, which must be topological (every input of a node is a model input or an
earlier node). Backward visits nodes in reverse order and *sums* the gradients arriving at
a node output from all its consumers.
"""
from __future__ import annotations

import numpy as np

from .errors import DTypeError, ShapeError
from .layer import Layer, skip_input_grad
from .model import Model, _as_layer


def _add(a, b):
    if isinstance(a, tuple):
        return tuple(_add(x, y) for x, y in zip(a, b))
    if a is None:
        return b
    if b is None:
        return a
    return a + b


class Graph(Model):
    """A graph model: ``Graph(inputs=["x"], outputs=["y"])`` then
    ``add_node(name, layer, inputs)`` per node; or pass ``nodes=[(name, layer, inputs), ...]``.

    ``forward(x)`` takes one array per model input (a single array for one input) and
    returns one array per output (a single array for one output); ``backward`` mirrors it.
    Parameters are named ``"<node>.<role>"`` and ordered by node insertion order.
    """

    kind = "graph"

    def __init__(self, inputs=("input",), outputs=None, nodes=(), *, dtype=None,
                 random_state=None, input_shape=None):
        super().__init__(dtype=dtype, random_state=random_state)
        self.input_names = [inputs] if isinstance(inputs, str) else list(inputs)
        self._output_names = [outputs] if isinstance(outputs, str) else \
            (list(outputs) if outputs is not None else None)
        self.nodes: dict[str, tuple[Layer, list[str]]] = {}
        for name, layer, node_inputs in nodes:
            self.add_node(name, layer, node_inputs)
        if input_shape is not None:
            self.build(input_shape)

    # ----------------------------------------------------------------- structure
    def add_node(self, name: str, layer, inputs) -> "Graph":
        if self.built:
            raise RuntimeError("Graph.add_node: the model is already built")
        if name in self.nodes or name in self.input_names:
            raise ValueError(f"Graph.add_node: the name {name!r} is already used")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        for src in inputs:
            if src not in self.nodes and src not in self.input_names:
                raise ValueError(f"Graph.add_node: node {name!r} reads {src!r}, which is neither "
                                 f"a model input {self.input_names} nor an earlier node")
        layer = _as_layer(layer)
        if layer.n_inputs == 1 and len(inputs) != 1:
            raise ShapeError(f"Graph.add_node: {layer.name} layer {name!r} takes one input, got "
                             f"{len(inputs)}")
        layer.key = name
        self.nodes[name] = (layer, inputs)
        return self

    @property
    def output_names(self) -> list[str]:
        if self._output_names is not None:
            return self._output_names
        return [next(reversed(self.nodes))] if self.nodes else []

    def layers_in_order(self) -> list[Layer]:
        return [layer for layer, _ in self.nodes.values()]

    def build(self, input_shape) -> "Graph":
        """``input_shape``: the per-sample shape of the single input, or a list of shapes
        (one per model input)."""
        if not self.nodes:
            raise ValueError("Graph.build: the graph has no nodes")
        for out in self.output_names:
            if out not in self.nodes:
                raise ValueError(f"Graph.build: output {out!r} is not a node")
        shapes_in = [input_shape] if len(self.input_names) == 1 else list(input_shape)
        if len(shapes_in) != len(self.input_names):
            raise ShapeError(f"Graph.build: {len(self.input_names)} inputs need "
                             f"{len(self.input_names)} shapes, got {len(shapes_in)}")
        shapes = {n: tuple(int(s) for s in sh) for n, sh in zip(self.input_names, shapes_in)}
        self._attach_layers()
        rngs = self.rng.spawn(len(self.nodes))
        for (name, (layer, srcs)), rng in zip(self.nodes.items(), rngs):
            in_shapes = [shapes[s] for s in srcs]
            arg = in_shapes[0] if layer.n_inputs == 1 else in_shapes
            if not layer.built:
                layer.build(arg, self.dtype, rng)
            for p in layer.parameters():
                p.name = f"{name}.{p.role}"
            shapes[name] = tuple(layer.output_shape(arg))
        self._shapes = shapes
        self.input_shape = shapes[self.input_names[0]] if len(self.input_names) == 1 else \
            tuple(shapes[n] for n in self.input_names)
        self.built = True
        return self

    def output_shape(self):
        outs = [self._shapes[n] for n in self.output_names]
        return outs[0] if len(outs) == 1 else outs

    def describe(self):
        for name, (layer, _) in self.nodes.items():
            yield name, layer, self._shapes[name]

    @property
    def output_activation(self) -> str | None:
        if len(self.output_names) != 1:
            return None
        return self.nodes[self.output_names[0]][0].output_activation

    def check_input(self, X, component="model input", *, finite=True):
        if len(self.input_names) == 1:
            return super().check_input(X, component, finite=finite)
        raise NotImplementedError("Graph with several inputs: call forward with a list of "
                                  "arrays; fit/predict take a single input")

    # ----------------------------------------------------------------- passes
    def forward(self, x, *, logits: bool = False):
        xs = [x] if len(self.input_names) == 1 else list(x)
        if not self.built:
            self.build(xs[0].shape[1:] if len(xs) == 1 else [a.shape[1:] for a in xs])
        for a in xs:
            if a.dtype != self.dtype:
                raise DTypeError(f"Graph.forward: model dtype is {self.dtype}, input has "
                                 f"{a.dtype}")
        values = dict(zip(self.input_names, xs))
        fused = self.output_names[0] if logits else None
        for name, (layer, srcs) in self.nodes.items():
            args = [values[s] for s in srcs]
            values[name] = layer.forward_logits(args[0]) if name == fused else layer.forward(*args)
        outs = [values[n] for n in self.output_names]
        return outs[0] if len(outs) == 1 else outs

    def backward(self, dy, *, logits: bool = False, input_grad: bool = True):
        """Backpropagate through the DAG in reverse order; returns ``∂L/∂input`` (a list
        for several inputs), or None with ``input_grad=False`` (layers fed only by model
        inputs may then skip that product)."""
        douts = [dy] if len(self.output_names) == 1 else list(dy)
        grads: dict[str, np.ndarray] = {}
        for n, g in zip(self.output_names, douts):
            grads[n] = g
        fused = self.output_names[0] if logits else None
        for name in reversed(list(self.nodes)):
            layer, srcs = self.nodes[name]
            g = grads.pop(name, None)
            if g is None:
                continue  # the node does not reach an output
            first = not input_grad and all(s in self.input_names for s in srcs)
            with skip_input_grad(layer, first):
                dx = layer.backward_logits(g) if name == fused else layer.backward(g)
            if first:
                continue
            dxs = (dx,) if layer.n_inputs == 1 else dx
            for src, d in zip(srcs, dxs):
                if src in grads:
                    grads[src] = grads[src] + d
                else:
                    grads[src] = d
        if not input_grad:
            return None
        dins = [grads.get(n) for n in self.input_names]
        return dins[0] if len(dins) == 1 else dins

    # ----------------------------------------------------------------- second order
    def rop_forward(self, tangents, *, logits: bool = False):
        """R-forward (after ``forward``); ``tangents`` is one list per node, in order."""
        values = {n: None for n in self.input_names}
        fused = self.output_names[0] if logits else None
        for (name, (layer, srcs)), t in zip(self.nodes.items(), tangents):
            args = [values[s] for s in srcs]
            if name == fused:
                values[name] = layer.rop_forward_logits(args[0], t)
            else:
                values[name] = layer.rop_forward(args[0] if layer.n_inputs == 1 else args, t)
        outs = [values[n] for n in self.output_names]
        return outs[0] if len(outs) == 1 else outs

    def _reverse(self, seeds, step):
        """Walk nodes in reverse order, summing what reaches each node's output."""
        grads = dict(seeds)
        for index in range(len(self.nodes) - 1, -1, -1):
            name = list(self.nodes)[index]
            layer, srcs = self.nodes[name]
            g = grads.pop(name, None)
            if g is None:
                continue
            outs = step(index, name, layer, g)
            outs = (outs,) if layer.n_inputs == 1 else tuple(zip(*outs)) if isinstance(
                outs[0], tuple) else outs
            for src, d in zip(srcs, outs):
                grads[src] = d if src not in grads else _add(grads[src], d)
        return grads

    def rop_backward(self, dy, dy_dot, tangents, rgrads, *, logits: bool = False):
        fused = self.output_names[0] if logits else None

        def step(i, name, layer, g):
            dy_i, dyd_i = g
            if name == fused:
                return layer.rop_backward_logits(dy_i, dyd_i, tangents[i], rgrads[i])
            return layer.rop_backward(dy_i, dyd_i, tangents[i], rgrads[i])

        grads = self._reverse({self.output_names[0]: (dy, dy_dot)}, step)
        return grads.get(self.input_names[0])

    def diag_gn_backward(self, h, diag, *, logits: bool = False):
        fused = self.output_names[0] if logits else None

        def step(i, name, layer, g):
            if name == fused:
                return layer.diag_gn_backward_logits(g, diag[i])
            return layer.diag_gn_backward(g, diag[i])

        return self._reverse({self.output_names[0]: h}, step).get(self.input_names[0])

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict:
        return {"kind": self.kind, "dtype": str(self.dtype), "random_state": self.random_state,
                "inputs": self.input_names, "outputs": self.output_names,
                "input_shape": (list(self.input_shape) if self.input_shape is not None
                                and len(self.input_names) == 1 else
                                [list(s) for s in self.input_shape] if self.input_shape else None),
                "nodes": [{"node": name, "name": layer.name, "config": layer.get_config(),
                           "inputs": srcs} for name, (layer, srcs) in self.nodes.items()]}

    @classmethod
    def from_config(cls, config: dict) -> "Graph":
        from . import registry

        nodes = [(n["node"], registry.get("layer", n["name"]).from_config(n["config"]),
                  n["inputs"]) for n in config["nodes"]]
        return cls(inputs=config["inputs"], outputs=config["outputs"], nodes=nodes,
                   dtype=config.get("dtype"), random_state=config.get("random_state"),
                   input_shape=config.get("input_shape"))

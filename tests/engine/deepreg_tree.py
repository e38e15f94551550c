"""Checkpoints with DeepReg 1.0's object graph, written by a TensorFlow object tree built here, and DeepReg
1.0's forward pass recomputed with plain TensorFlow ops: the references of the DeepReg checkpoint tests.

The tree reproduces the names DeepReg 1.0's Keras 2 objects give their children (read from
``deepreg/model/backbone/{u_net,local_net,global_net}.py`` and ``deepreg/model/layer.py``): attribute names
(``_encode_convs``, ``_layer``, ``_norms``, ...), list indices, and a ``Sequential``'s ``layer-<i>`` and
``layer_with_weights-<j>`` edges to the same layer; it also has TensorFlow 2.3's alias of a
``ResidualBlock``'s norms inside its ``_layers`` list and unrelated objects (an optimizer step, a metric),
so the file's variable keys are the ones TensorFlow's breadth-first naming gives such a graph. Every
variable gets a distinct random value; ``values`` maps its DeepReg path (from the backbone) to it.
"""

from __future__ import annotations

import os
from typing import Dict, Sequence, Tuple

import numpy as np
import tensorflow as tf

Node = tf.__internal__.tracking.AutoTrackable
BN_EPSILON = 1e-3  # Keras' BatchNormalization default, in Keras 2 and 3


class DeepRegTree:
    """Builds DeepReg 1.0 backbones as TensorFlow object trees with known random values."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.values: Dict[str, np.ndarray] = {}

    def _var(self, path: str, shape: Tuple[int, ...], positive: bool = False) -> tf.Variable:
        value = self.rng.uniform(0.5, 1.5, shape) if positive else self.rng.normal(0.0, 0.3, shape)
        value = value.astype(np.float32)
        self.values[path] = value
        return tf.Variable(value, name=path.rsplit("/", 1)[-1])

    def conv(self, path: str, k: int, cin: int, cout: int, bias: bool = False, transpose: bool = False) -> Node:
        """A Keras 2 ``Conv3D`` (kernel ``(k, k, k, cin, cout)``) or ``Conv3DTranspose`` (``(k, k, k, cout, cin)``)."""
        node = Node()
        node.kernel = self._var(f"{path}/kernel", (k, k, k, cout, cin) if transpose else (k, k, k, cin, cout))
        if bias:
            node.bias = self._var(f"{path}/bias", (cout,))
        return node

    def batch_norm(self, path: str, c: int) -> Node:
        node = Node()
        node.gamma = self._var(f"{path}/gamma", (c,), positive=True)
        node.beta = self._var(f"{path}/beta", (c,))
        node.moving_mean = self._var(f"{path}/moving_mean", (c,))
        node.moving_variance = self._var(f"{path}/moving_variance", (c,), positive=True)
        return node

    def norm_block(self, path: str, k: int, cin: int, cout: int, transpose: bool = False) -> Node:
        """DeepReg's ``Conv3dBlock``/``Deconv3dBlock`` (``NormBlock``): ``_layer``, ``_norm``, ``_act``."""
        node = Node()
        node._layer = self.conv(f"{path}/_layer", k, cin, cout, transpose=transpose)
        node._norm = self.batch_norm(f"{path}/_norm", cout)
        node._act = Node()
        return node

    def residual_block(self, path: str, k: int, c: int) -> Node:
        """DeepReg's ``ResidualConv3dBlock``: ``_layers[0..1]``, ``_norms[0..1]``, ``_acts[0..1]``.

        Under TensorFlow 2.3 Keras appends every sub-layer assigned later to the list a layer calls
        ``_layers``, so the norms are also ``_layers/2`` and ``_layers/3`` (and named so in the file).
        """
        node = Node()
        convs = [self.conv(f"{path}/_layers/{i}", k, c, c) for i in range(2)]
        norms = [self.batch_norm(f"{path}/_norms/{i}", c) for i in range(2)]
        acts = [Node(), Node()]
        node._layers = convs + norms + acts
        node._norms = norms
        node._acts = acts
        return node

    @staticmethod
    def sequential(*layers: Node) -> Node:
        """A Keras 2 ``Sequential`` of weighted layers: edges ``layer_with_weights-<i>`` and ``layer-<i>``."""
        node = Node()
        for i, layer in enumerate(layers):
            setattr(node, f"layer_with_weights-{i}", layer)
            setattr(node, f"layer-{i}", layer)
        return node

    def conv_res(self, path: str, k: int, cin: int, c: int) -> Node:
        """``Sequential([Conv3dBlock, ResidualConv3dBlock])``."""
        return self.sequential(
            self.norm_block(f"{path}/layer-0", k, cin, c), self.residual_block(f"{path}/layer-1", k, c)
        )

    def unet(
        self,
        in_channels: int,
        nci: int,
        depth: int,
        extract_levels: Sequence[int],
        local: bool,
        out_channels: int = 3,
        concat_skip: bool = False,
    ) -> Node:
        """DeepReg 1.0's ``UNet`` (``local=False``) or ``LocalNet`` (``local=True``, additive up-sampling)."""
        channels = [nci * 2**d for d in range(depth + 1)]
        kernels = [7] + [3] * depth if local else [3] * (depth + 1)
        node = Node()
        node._encode_convs = [
            self.conv_res(f"_encode_convs/{d}", kernels[d], in_channels if d == 0 else channels[d - 1], channels[d])
            for d in range(depth)
        ]
        node._encode_pools = [Node() for _ in range(depth)]  # max pooling: no weights
        if local:
            node._bottom_block = self.norm_block("_bottom_block", kernels[depth], channels[depth - 1], channels[depth])
        else:
            node._bottom_block = self.conv_res("_bottom_block", kernels[depth], channels[depth - 1], channels[depth])
        low = min(extract_levels)
        deconvs, convs = [None] * depth, [None] * depth
        for d in range(depth - 1, low - 1, -1):
            if local:
                up = Node()
                up.deconv3d = self.norm_block(
                    f"_decode_deconvs/{d}/deconv3d", 3, channels[d + 1], channels[d], transpose=True
                )
                up.resize = Node()
            else:
                up = self.norm_block(f"_decode_deconvs/{d}", 3, channels[d + 1], channels[d], transpose=True)
            deconvs[d] = up
            cin = 2 * channels[d] if concat_skip else channels[d]
            convs[d] = self.conv_res(f"_decode_convs/{d}", 3, cin, channels[d])
        node._decode_deconvs = deconvs
        node._decode_convs = convs
        extraction = Node()
        # Extraction's j-th convolution reads decoder level low + max - level_j (DeepReg 1.0's indexing)
        high = max(extract_levels)
        extraction.layers = [
            self.sequential(
                self.conv(
                    f"_output_block/layers/{j}/layer-0", 3, channels[low + high - level], out_channels, bias=True
                ),
            )
            for j, level in enumerate(extract_levels)
        ]
        for seq in extraction.layers:
            setattr(seq, "layer-1", Node())  # Resize3d: no weights
        node._output_block = extraction
        return node

    def global_net(self, in_channels: int, nci: int, depth: int, image_size: Sequence[int]) -> Node:
        """DeepReg 1.0's ``GlobalNet``: UNet encoder (kernels 3), UNet bottom, ``AffineHead``."""
        channels = [nci * 2**d for d in range(depth + 1)]
        node = Node()
        node._encode_convs = [
            self.conv_res(f"_encode_convs/{d}", 3, in_channels if d == 0 else channels[d - 1], channels[d])
            for d in range(depth)
        ]
        node._encode_pools = [Node() for _ in range(depth)]
        node._bottom_block = self.conv_res("_bottom_block", 3, channels[depth - 1], channels[depth])
        node._decode_deconvs, node._decode_convs = [], []
        head = Node()
        bottom = [-(-s // 2**depth) for s in image_size]
        dense = Node()
        dense.kernel = self._var("_output_block/_dense/kernel", (int(np.prod(bottom)) * channels[depth], 12))
        dense.bias = self._var("_output_block/_dense/bias", (12,))
        head._dense = dense
        head._flatten = Node()
        node._output_block = head
        return node


def save_deepreg_checkpoint(backbone: Node, folder: str, functional: bool = True, epoch: int = 5) -> str:
    """Write ``<folder>/ckpt-<epoch>`` as DeepReg 1.0's ``CheckpointManager`` does (``model`` and ``optimizer``).

    ``functional``: the backbone sits in a functional ``_model`` as ``layer_with_weights-0`` (and
    ``layer-3``, after the inputs and the resize), as in DeepReg 1.0's ``RegistrationModel``; otherwise
    directly under ``model`` (a bare functional model).
    """
    inner = Node()
    for i in range(3):
        setattr(inner, f"layer-{i}", Node())
    setattr(inner, "layer_with_weights-0", backbone)
    setattr(inner, "layer-3", backbone)
    metric = Node()
    metric.total = tf.Variable(3.0, name="total")
    metric.count = tf.Variable(2.0, name="count")
    inner._metrics = [metric]
    if functional:
        model = Node()
        model._model = inner
    else:
        model = inner
    optimizer = Node()
    optimizer.iter = tf.Variable(1000, dtype=tf.int64, name="iter")
    optimizer.learning_rate = tf.Variable(1e-4, name="learning_rate")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, folder, max_to_keep=None)
    return manager.save(checkpoint_number=epoch)


# ---------------------------------------------------------------------------------------------- DeepReg's forward
def _batch_norm(x, values, path):
    g, b = values[f"{path}/gamma"], values[f"{path}/beta"]
    m, v = values[f"{path}/moving_mean"], values[f"{path}/moving_variance"]
    return g * (x - m) / tf.sqrt(v + BN_EPSILON) + b


def _norm_block(x, values, path, strides=1):
    y = tf.nn.conv3d(x, values[f"{path}/_layer/kernel"], [1, strides, strides, strides, 1], "SAME")
    return tf.nn.relu(_batch_norm(y, values, f"{path}/_norm"))


def _deconv_block(x, values, path, out_size):
    kernel = values[f"{path}/_layer/kernel"]
    shape = (x.shape[0], *out_size, kernel.shape[3])
    # Keras 2's Conv3DTranspose with output_padding calls this with the target shape and "SAME" padding
    y = tf.nn.conv3d_transpose(x, kernel, shape, [1, 2, 2, 2, 1], "SAME")
    return tf.nn.relu(_batch_norm(y, values, f"{path}/_norm"))


def _residual_block(x, values, path):
    h = tf.nn.conv3d(x, values[f"{path}/_layers/0/kernel"], [1] * 5, "SAME")
    h = tf.nn.relu(_batch_norm(h, values, f"{path}/_norms/0"))
    h = tf.nn.conv3d(h, values[f"{path}/_layers/1/kernel"], [1] * 5, "SAME")
    return tf.nn.relu(_batch_norm(h, values, f"{path}/_norms/1") + x)


def _conv_res(x, values, path):
    return _residual_block(_norm_block(x, values, f"{path}/layer-0"), values, f"{path}/layer-1")


def resize3d(x, size):
    """DeepReg's ``Resize3d``: bilinear ``tf.image.resize`` over axes 2-3, then over axes 1-2."""
    b, d1, d2, d3, c = x.shape
    y = tf.image.resize(tf.reshape(x, (b * d1, d2, d3, c)), size[1:3])
    y = tf.reshape(y, (b, d1, size[1], size[2] * c))
    y = tf.image.resize(y, size[:2])
    return tf.reshape(y, (b, *size, c))


def deepreg_unet_forward(x, values, depth, extract_levels, local, image_size, concat_skip=False):
    """DeepReg 1.0's ``UNet.call``/``LocalNet`` in inference mode, from the checkpoint's values."""
    x = tf.convert_to_tensor(x, tf.float32)
    sizes = [tuple(image_size)]
    for _ in range(depth):
        sizes.append(tuple(-(-s // 2) for s in sizes[-1]))
    skips = []
    for d in range(depth):
        skip = _conv_res(x, values, f"_encode_convs/{d}")
        x = tf.nn.max_pool3d(skip, 2, 2, "SAME")
        skips.append(skip)
    x = _norm_block(x, values, "_bottom_block") if local else _conv_res(x, values, "_bottom_block")
    outs = [x]
    for d in range(depth - 1, min(extract_levels) - 1, -1):
        if local:
            up = _deconv_block(x, values, f"_decode_deconvs/{d}/deconv3d", sizes[d])
            resized = resize3d(x, sizes[d])
            up = up + tf.add_n(tf.split(resized, 2, axis=4))
        else:
            up = _deconv_block(x, values, f"_decode_deconvs/{d}", sizes[d])
        x = tf.concat([up, skips[d]], axis=4) if concat_skip else up + skips[d]
        x = _conv_res(x, values, f"_decode_convs/{d}")
        outs = [x] + outs
    high = max(extract_levels)
    results = []
    for j, level in enumerate(extract_levels):
        path = f"_output_block/layers/{j}/layer-0"
        y = tf.nn.conv3d(outs[high - level], values[f"{path}/kernel"], [1] * 5, "SAME") + values[f"{path}/bias"]
        results.append(resize3d(y, tuple(image_size)))
    return np.asarray(tf.add_n(results) / len(results))


def deepreg_global_forward(x, values, depth, image_size):
    """DeepReg 1.0's ``GlobalNet`` in inference mode: ``(ddf, theta)``, the DDF on the voxel grid."""
    x = tf.convert_to_tensor(x, tf.float32)
    for d in range(depth):
        x = tf.nn.max_pool3d(_conv_res(x, values, f"_encode_convs/{d}"), 2, 2, "SAME")
    x = _conv_res(x, values, "_bottom_block")
    flat = tf.reshape(x, (x.shape[0], -1))
    theta = tf.reshape(flat @ values["_output_block/_dense/kernel"] + values["_output_block/_dense/bias"], (-1, 4, 3))
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in image_size], indexing="ij"), -1)
    homogeneous = np.concatenate([grid, np.ones(grid.shape[:-1] + (1,), np.float32)], -1)
    ddf = np.einsum("...i,bij->b...j", homogeneous, np.asarray(theta)) - grid
    return ddf, np.asarray(theta)


def checkpoint_folder(tmp_path, name: str) -> str:
    folder = os.path.join(str(tmp_path), name, "save")
    os.makedirs(folder, exist_ok=True)
    return folder

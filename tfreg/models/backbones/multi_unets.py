"""``multi_unets``: one U-Net segmenter per non-overlapping tile of the volume, outputs stitched back.

WSSAMNet++ ("Leveraging Segmentation to Improve Medical Image Registration", Multi-UNets): a 224 x 160 x 192
volume is divided into eight non-overlapping 112 x 80 x 96 sub-volumes, and one 3-D U-Net per sub-volume
learns "contextual information at a fixed spatial location"; at inference "we combined the outputs of all
eight models". Here ``tiles: [2, 2, 2]`` on ``image_size: [224, 160, 192]`` gives those octants.

Choices the paper leaves open, and ours:

- "combined" is read as stitching: each tile's output is put back where its tile was (the tiles do not
  overlap, so nothing is averaged);
- the tile grid is given as tiles per axis; the tile shape is ``image_size / tiles`` and must be whole
  (no padding, no overlap), else a ValueError;
- every tile's U-Net has the same architecture (the ``unet`` arguments of
  :class:`~tfreg.models.backbones.unet_segmenter.UNetSegmenter`), with its own weights; ``shared: true``
  uses one U-Net for every tile instead (the spec's lighter option, tiles run as one batch);
- the U-Nets see only their tile (no context from the neighbours), as in the paper.
"""

import itertools
from numbers import Integral
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import keras
from keras import ops

from tfreg.checks import check_bool, check_positive_int
from tfreg.models.backbones.unet_segmenter import UNetSegmenter
from tfreg.ops.grid import _check_shape
from tfreg.registry import REGISTRY


def tile_shape(image_size: Sequence[int], tiles: Union[int, Sequence[int]]) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """``(tiles per axis, tile shape)`` for a grid of ``tiles`` on ``image_size``.

    Args:
        image_size: spatial size, voxels.
        tiles: tiles per axis: one int for every axis, or one int per axis.

    Raises:
        ValueError: naming ``tiles`` and ``image_size`` when the grid has the wrong length, a non-positive
            count, or does not divide the image into whole tiles.
    """
    image_size = tuple(int(s) for s in image_size)
    if isinstance(tiles, Integral) and not isinstance(tiles, bool):
        tiles = [tiles] * len(image_size)
    if isinstance(tiles, (str, bytes)) or not isinstance(tiles, (list, tuple)) or len(tiles) != len(image_size):
        raise ValueError(
            f"tiles must be an int or a list of {len(image_size)} ints (tiles per axis of image_size "
            f"{image_size}), got {tiles!r}"
        )
    tiles = tuple(check_positive_int(t, "tiles") for t in tiles)
    bad = [a for a, (s, t) in enumerate(zip(image_size, tiles)) if s % t]
    if bad:
        detail = ", ".join(f"axis {a}: {image_size[a]} voxels in {tiles[a]} tiles" for a in bad)
        raise ValueError(
            f"tiles {list(tiles)} do not divide image_size {image_size} into whole, non-overlapping tiles ({detail}); "
            "every size must be a multiple of its tile count (e.g. tiles [2, 2, 2] on [224, 160, 192] gives "
            "tiles of [112, 80, 96])"
        )
    return tiles, tuple(s // t for s, t in zip(image_size, tiles))


def _check_unet(unet: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    if unet is None:
        return {}
    if not isinstance(unet, dict):
        raise ValueError(f"unet must be a mapping of unet_segmenter arguments (channels, norm, ...), got {unet!r}")
    for key in ("image_size", "name"):
        if key in unet:
            raise ValueError(f"unet.{key} is not an argument of multi_unets: each tile's U-Net gets the tile's size")
    return dict(unet)


@REGISTRY.register_backbone(name="multi_unets")
class MultiUNets(keras.Model):
    """One :class:`UNetSegmenter` per tile of a regular grid; see the module docstring (WSSAMNet++).

    Args:
        image_size: spatial size of the whole input, 2 or 3 ints (voxels).
        tiles: tiles per axis, an int (every axis) or one int per axis; default 2 (octants in 3-D).
        unet: the :class:`UNetSegmenter` arguments of every tile's U-Net, without ``image_size`` (e.g.
            ``{channels: [16, 32, 64, 128], norm: batch}``); default: its defaults.
        shared: one U-Net (one set of weights) for every tile instead of one per tile.
        name: Keras model name.

    Call: ``(B, *image_size, C)`` -> ``(B, *image_size, out_channels)``: tile ``(i, j[, k])``, i.e. voxels
    ``[i*t0:(i+1)*t0, j*t1:(j+1)*t1, ...]`` of the output, is U-Net ``unets[n]``'s output on that tile, with
    ``n`` the tile's C-order (last axis fastest) index; ``unets`` has one entry when ``shared``.

    Attributes: ``tiles`` (per axis), ``tile_size``, ``unets``, ``out_channels``.

    Raises:
        ValueError: a ``tiles`` grid that does not divide ``image_size`` (naming both), bad ``unet`` arguments.
    """

    def __init__(
        self,
        image_size: Sequence[int] = (),
        tiles: Union[int, Sequence[int]] = 2,
        unet: Optional[Dict[str, Any]] = None,
        shared: bool = False,
        name: str = "MultiUNets",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.image_size = _check_shape(image_size, "image_size")
        if len(self.image_size) not in (2, 3):
            raise ValueError(f"image_size must have 2 or 3 spatial sizes, got {image_size!r}")
        self.ndim = len(self.image_size)
        self.tiles, self.tile_size = tile_shape(self.image_size, tiles)
        self.unet = _check_unet(unet)
        self.shared = check_bool(shared, "shared")
        self.tile_origins: List[Tuple[int, ...]] = [
            tuple(i * t for i, t in zip(index, self.tile_size))
            for index in itertools.product(*(range(n) for n in self.tiles))
        ]
        count = 1 if self.shared else len(self.tile_origins)
        self.unets = [UNetSegmenter(image_size=self.tile_size, name=f"unet_{n}", **self.unet) for n in range(count)]
        self.out_channels = self.unets[0].out_channels

    def tile(self, x, n: int):
        """Tile ``n`` (C order) of ``x`` ``(B, *image_size, C)``: ``(B, *tile_size, C)``."""
        origin = self.tile_origins[n]
        return x[(slice(None),) + tuple(slice(o, o + t) for o, t in zip(origin, self.tile_size))]

    def stitch(self, outputs: Sequence[Any]):
        """The tiles' outputs (C order, each ``(B, *tile_size, C)``) put back on the whole grid."""

        def join(parts, axis):
            # parts: a flat C-order list for the axes from ``axis`` on; concatenate the last axis first
            if axis == self.ndim:
                return parts[0]
            step = len(parts) // self.tiles[axis]
            rows = [join(parts[i * step : (i + 1) * step], axis + 1) for i in range(self.tiles[axis])]
            return rows[0] if len(rows) == 1 else ops.concatenate(rows, axis=axis + 1)

        return join(list(outputs), 0)

    def call(self, inputs, training=None):
        """``(B, *image_size, C)`` -> ``(B, *image_size, out_channels)``."""
        if len(inputs.shape) != self.ndim + 2 or tuple(inputs.shape[1:-1]) != self.image_size:
            raise ValueError(
                f"{self.name}: expected input (batch, *{self.image_size}, channels), got shape {tuple(inputs.shape)}"
            )
        parts = [self.tile(inputs, n) for n in range(len(self.tile_origins))]
        if self.shared:
            # every tile through the one U-Net as one batch, then split back per tile
            out = self.unets[0](ops.concatenate(parts, axis=0), training=training)
            outputs = ops.split(out, len(parts), axis=0)
        else:
            outputs = [unet(part, training=training) for unet, part in zip(self.unets, parts)]
        return self.stitch(outputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.out_channels,)

    def get_config(self) -> Dict[str, Any]:
        return dict(
            name=self.name,
            image_size=list(self.image_size),
            tiles=list(self.tiles),
            unet=dict(self.unet),
            shared=self.shared,
        )

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "MultiUNets":
        return cls(**config)


__all__ = ["MultiUNets", "tile_shape"]

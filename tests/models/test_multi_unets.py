"""tfreg.models.backbones.multi_unets: stitching against each tile's U-Net run on its own NumPy-sliced tile."""

import itertools

import keras
import numpy as np
import pytest

from tfreg.models.backbones import MultiUNets, UNetSegmenter
from tfreg.models.backbones.multi_unets import tile_shape
from tfreg.registry import REGISTRY


def stitched_reference(model, x):
    """Each tile cut from ``x`` with NumPy slicing, run through its own U-Net, and written back in place."""
    ndim = x.ndim - 2
    tile = [s // t for s, t in zip(x.shape[1:-1], model.tiles)]
    out = np.zeros(x.shape[:-1] + (model.out_channels,), np.float32)
    for n, index in enumerate(itertools.product(*(range(t) for t in model.tiles))):
        where = (slice(None),) + tuple(slice(i * t, (i + 1) * t) for i, t in zip(index, tile))
        unet = model.unets[0] if model.shared else model.unets[n]
        out[where] = keras.ops.convert_to_numpy(unet(x[where], training=False))
        assert out[where].shape[1 : 1 + ndim] == tuple(tile)
    return out


@pytest.mark.parametrize(
    "size, tiles, shared",
    [((8, 12, 6), [2, 2, 2], False), ((8, 12, 6), [1, 3, 2], False), ((12, 8), 2, False), ((8, 12, 6), 2, True)],
)
def test_stitched_output_equals_each_tiles_unet_on_its_tile(size, tiles, shared):
    # batch norm in inference mode: a tile's output depends on that tile alone
    model = MultiUNets(image_size=size, tiles=tiles, unet={"channels": [2, 3]}, shared=shared)
    x = np.random.default_rng(0).normal(size=(2, *size, 2)).astype(np.float32)
    got = keras.ops.convert_to_numpy(model(x, training=False))
    assert got.shape == (2, *size, 2)
    expected_tiles = int(np.prod(model.tiles))
    assert len(model.unets) == (1 if shared else expected_tiles) and len(model.tile_origins) == expected_tiles
    np.testing.assert_allclose(got, stitched_reference(model, x), rtol=1e-5, atol=1e-5)
    if not shared:
        # the tiles' U-Nets have their own weights: different initial kernels
        kernels = [keras.ops.convert_to_numpy(u.encoders[0][0].conv.kernel) for u in model.unets]
        assert not np.allclose(kernels[0], kernels[1])


def test_wssamnet_plus_plus_octants():
    # WSSAMNet++: a 224 x 160 x 192 volume in eight 112 x 80 x 96 sub-volumes
    assert tile_shape((224, 160, 192), [2, 2, 2]) == ((2, 2, 2), (112, 80, 96))
    assert tile_shape((224, 160, 192), 2) == ((2, 2, 2), (112, 80, 96))


def test_each_tile_unet_has_the_configured_architecture():
    model = MultiUNets(image_size=(8, 8), tiles=[2, 1], unet={"channels": [3, 6], "norm": "instance", "scse": True})
    for unet in model.unets:
        assert isinstance(unet, UNetSegmenter)
        assert unet.image_size == (4, 8) and unet.channels == [3, 6] and unet.norm == "instance" and unet.scse
    config = model.get_config()
    assert config["tiles"] == [2, 1] and config["unet"]["channels"] == [3, 6]
    assert MultiUNets.from_config(config).get_config() == config


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            dict(image_size=(9, 12, 16), tiles=[2, 2, 2]),
            r"tiles \[2, 2, 2\] do not divide image_size \(9, 12, 16\) .*axis 0: 9 voxels in 2 tiles",
        ),
        (dict(image_size=(8, 12, 16), tiles=[2, 5, 3]), r"axis 1: 12 voxels in 5 tiles, axis 2: 16 voxels in 3 tiles"),
        (dict(image_size=(8, 8, 8), tiles=[2, 2]), r"tiles must be an int or a list of 3 ints"),
        (dict(image_size=(8, 8, 8), tiles=[2, 0, 2]), r"tiles must be an integer >= 1"),
        (dict(image_size=(8, 8, 8), unet={"image_size": [4, 4, 4]}), r"unet.image_size is not an argument"),
        (dict(image_size=(8, 8, 8), unet=[8, 16]), r"unet must be a mapping of unet_segmenter arguments"),
        (dict(image_size=(8, 8, 8), unet={"channels": [2, 4, 8, 16]}), r"image_size \(4, 4, 4\) does not fit depth 3"),
    ],
)
def test_bad_layouts_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiUNets(**kwargs)


def test_registry_builds_it_with_the_images_size():
    model = REGISTRY.build_backbone(
        {"name": "multi_unets", "tiles": [1, 2], "unet": {"channels": [2]}}, default_args={"image_size": (6, 8)}
    )
    assert model.tile_size == (6, 4)
    with pytest.raises(ValueError, match=r"expected input \(batch, \*\(6, 8\), channels\)"):
        model(np.zeros((1, 8, 6, 1), np.float32))

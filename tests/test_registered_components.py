"""Every registered loss, attention layer and backbone: builds with its defaults, round-trips its config, runs.

The tables below name, for each registered name, only what it cannot be built without (and, for losses,
what it is called on). A new registration without a table entry fails ``test_every_name_has_an_entry``,
so a component cannot join the registry without being built, serialised and called here.
"""

import os

import keras
import numpy as np
import pytest

from tfreg.registry import ATTENTION_CLASS, BACKBONE_CLASS, LOSS_CLASS, REGISTRY

BATCH = 2
#: Spatial size per axis: SSIM's default window needs > 10 voxels, the rest much less.
SIZE = 12

#: name -> (what the loss is called on, required constructor arguments, spatial dimensions it is tested in).
#: Kinds: "image" (two images in [0, 1]), "classes" (one-hot y_true and softmax y_pred with 3 classes),
#: "ddf" (one DDF), "ddf-pair" (forward and backward DDFs).
LOSSES = {
    "bending": ("ddf", {}, (2, 3)),
    "contour": ("image", {}, (2, 3)),
    "contour-ce": ("image", {}, (2, 3)),
    "cross-entropy": ("image", {}, (2, 3)),
    "dice": ("image", {}, (2, 3)),
    "embedding": ("image", {"encoder": "ENCODER"}, (2,)),
    "filtered": ("image", {"loss": {"name": "lncc", "kernel_size": 3}}, (2, 3)),
    "focal": ("image", {}, (2, 3)),
    "folding": ("ddf", {}, (2, 3)),
    "gmi": ("image", {}, (2, 3)),
    "gncc": ("image", {}, (2, 3)),
    "gradient": ("ddf", {}, (2, 3)),
    "gradient-forward": ("ddf", {}, (2, 3)),
    "inverse-consistency": ("ddf-pair", {}, (2, 3)),
    "jaccard": ("image", {}, (2, 3)),
    "lncc": ("image", {}, (2, 3)),
    "macmind": ("image", {}, (2, 3)),
    "mi": ("image", {}, (2, 3)),
    "mind": ("image", {}, (2, 3)),
    "mind-ssc": ("image", {}, (2, 3)),
    "multiclass-cross-entropy": ("classes", {}, (2, 3)),
    "multiclass-dice": ("classes", {}, (2, 3)),
    "ncc": ("image", {}, (2, 3)),
    "ngf": ("image", {}, (2, 3)),
    "rigidity": ("ddf", {}, (2, 3)),
    "ssd": ("image", {}, (2, 3)),
    "ssim": ("image", {}, (2, 3)),
    "tv": ("ddf", {}, (2, 3)),
}

#: name -> required constructor arguments besides image_size (given per test).
BACKBONES = {
    "dfsa_unet": {"num_branches": 2, "channels": [2, 4]},
    "field": {"control_point_spacing": 4},
    "global": {"depth": 1},
    "lapirn": {"num_channels": 4, "num_residual_blocks": 1},
    "local": {"extract_levels": [0, 1]},
    "multi_unets": {"unet": {"channels": [2, 4]}},
    "swin_unetr": {"feature_size": 3, "depths": [1, 1], "num_heads": 1, "window_size": 2},
    "thesis_unet": {"depth": 1},
    "transmorph": {
        "preset": "tiny",
        "patch_size": 2,
        "window_size": 2,
        "embed_dim": 4,
        "depths": [1, 1],
        "num_heads": 2,
    },
    "unet": {},
    "unet_segmenter": {"channels": [2, 4]},
}

#: name -> (required constructor arguments, output channels for an image of 1 and a mask of 2 channels).
ATTENTIONS = {
    "concat": ({}, 3),
    "contour": ({}, 1),
    "mask_only": ({}, 2),
    "masking": ({}, 1),
    "roi": ({}, 1),
}


@pytest.mark.parametrize(
    "category, table", [(LOSS_CLASS, LOSSES), (BACKBONE_CLASS, BACKBONES), (ATTENTION_CLASS, ATTENTIONS)]
)
def test_every_name_has_an_entry(category, table):
    names = set(REGISTRY.names(category))
    missing, stale = sorted(names - set(table)), sorted(set(table) - names)
    assert not missing, f"registered {category} name(s) {missing} have no entry in {__name__}: add one"
    assert not stale, f"entries {stale} in {__name__} are not registered {category} names"


def assert_config_round_trips(obj):
    """``type(obj).from_config(obj.get_config())`` rebuilds an object with the same config."""
    config = obj.get_config()
    clone = type(obj).from_config(config)
    assert clone.get_config() == config


@pytest.fixture(scope="module")
def encoder_path(tmp_path_factory):
    """A small saved Keras encoder of 2-D label maps ``(SIZE, SIZE, 1)`` -> 8 features, for ``embedding``."""
    encoder = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 1)),
            keras.layers.Conv2D(2, 3, strides=2),
            keras.layers.Flatten(),
            keras.layers.Dense(8),
        ]
    )
    path = os.path.join(tmp_path_factory.mktemp("encoder"), "encoder.keras")
    encoder.save(path)
    return path


def loss_inputs(kind, ndim, rng):
    """Random inputs of batch 2 for a loss of ``kind`` on an ``ndim``-D grid of SIZE voxels per axis."""
    spatial = (SIZE,) * ndim
    if kind == "image":
        # (B, *S): no channel axis, read as 2-D/3-D by rank (DeepReg's layout).
        return [rng.uniform(0.0, 1.0, (BATCH,) + spatial).astype("float32") for _ in range(2)]
    if kind == "classes":
        labels = rng.integers(0, 3, (BATCH,) + spatial)
        logits = rng.normal(size=(BATCH,) + spatial + (3,))
        probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        return [np.eye(3, dtype="float32")[labels], probabilities.astype("float32")]
    ddf = [rng.normal(0.0, 0.3, (BATCH,) + spatial + (ndim,)).astype("float32") for _ in range(2)]
    return ddf if kind == "ddf-pair" else ddf[:1]


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_builds_round_trips_and_gives_one_finite_value_per_sample(name, ndim, encoder_path):
    kind, required, dims = LOSSES[name]
    if ndim not in dims:
        pytest.skip(f"{name} is tested in {dims}-D only")
    kwargs = {k: (encoder_path if v == "ENCODER" else v) for k, v in required.items()}
    loss = REGISTRY.build_loss({"name": name, **kwargs, "reduction": None})
    assert_config_round_trips(loss)
    value = keras.ops.convert_to_numpy(loss(*loss_inputs(kind, ndim, np.random.default_rng(ndim))))
    assert value.shape == (BATCH,)
    assert np.all(np.isfinite(value)), value


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("name", sorted(ATTENTIONS))
def test_attention_builds_round_trips_and_keeps_the_grid(name, ndim):
    required, channels = ATTENTIONS[name]
    layer = REGISTRY.build_attention({"name": name, **required})
    assert_config_round_trips(layer)
    rng = np.random.default_rng(0)
    spatial = (SIZE,) * ndim
    image = rng.normal(size=(BATCH,) + spatial + (1,)).astype("float32")
    mask = rng.uniform(size=(BATCH,) + spatial + (2,)).astype("float32")
    out = layer([image, mask])
    expected = (BATCH,) + spatial + (channels,)
    assert tuple(out.shape) == expected
    assert tuple(layer.compute_output_shape([image.shape, mask.shape])) == expected


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_backbone_builds_round_trips_and_maps_the_grid(name, ndim):
    image_size = (8,) * ndim
    backbone = REGISTRY.build_backbone({"name": name, **BACKBONES[name]}, default_args={"image_size": image_size})
    assert_config_round_trips(backbone)
    x = np.random.default_rng(0).normal(size=(BATCH,) + image_size + (2,)).astype("float32")
    out = backbone(x)
    if name == "global":
        ddf, theta = out
        assert tuple(theta.shape) == (BATCH, ndim + 1, ndim)
        out = ddf
    assert tuple(out.shape) == (BATCH,) + image_size + (backbone.out_channels,)

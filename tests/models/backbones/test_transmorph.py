"""TransMorph: published parameter counts, training and prediction on tiny volumes (TF and JAX), options,
mixed precision, pretrained weights and refusals."""

import keras
import numpy as np
import pytest

from tfreg.models import DDFModel, DVFModel
from tfreg.models.backbones.transmorph import TRANSMORPH_PRESETS, TransMorph
from tfreg.registry import REGISTRY

SIZE = (16, 16, 16)
#: a TransMorph small enough for tests: patch 2, window 3, 3 stages
TINY = {
    "preset": "tiny",
    "patch_size": 2,
    "window_size": 3,
    "embed_dim": 8,
    "depths": [1, 1, 1],
    "num_heads": [2, 2, 4],
}
LOSS = {
    "image": {"name": "lncc", "kernel_size": 5, "weight": 1.0},
    "regularization": {"name": "bending", "weight": 0.5},
}


def blob_pairs(n, size=SIZE, seed=0):
    """Gaussian blobs; fixed = moving shifted by one voxel along axis 0."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype="float32") for s in size], indexing="ij"), -1)
    moving = np.stack([np.exp(-((grid - rng.uniform(5, 11, len(size))) ** 2).sum(-1) / 18.0) for _ in range(n)]).astype(
        "float32"
    )
    return {
        "moving_image": moving,
        "fixed_image": np.roll(moving, -1, axis=1),
        "indices": np.arange(n, dtype="float32")[:, None],
    }


def ddf_model(cls=DDFModel, size=SIZE, backbone=None):
    return cls(
        moving_image_size=size,
        fixed_image_size=size,
        index_size=1,
        labeled=False,
        backbone=dict({"name": "transmorph"}, **(backbone or TINY)),
        loss=LOSS,
    )


@pytest.mark.parametrize(
    "preset, published_millions", [("tiny", 0.24), ("small", 11.76), ("base", 46.77), ("large", 108.34)]
)
def test_presets_have_the_published_parameter_counts(preset, published_millions):
    # TransMorph's paper and configs: 0.24 M, 11.76 M, 46.77 M, 108.34 M at 160x192x224 with 2 input channels.
    # PyTorch's InstanceNorm3d has no weights by default; ours have a scale and an offset: left out here.
    backbone = TransMorph(image_size=(160, 192, 224), out_channels=3, preset=preset)
    backbone.build((None, 160, 192, 224, 2))
    norm = sum(int(np.prod(v.shape)) for v in backbone.weights if "instance_normalization" in v.path)
    assert norm > 0
    assert round((backbone.count_params() - norm) / 1e6, 2) == published_millions


@pytest.mark.backend_agnostic
@pytest.mark.slow  # a whole training: the main CI step stays under 15 minutes (the JAX step still runs it)
@pytest.mark.parametrize("cls", [DDFModel, DVFModel])
def test_trains_and_predicts_on_a_tiny_volume(cls):
    # Stochastic depth is off here: with the preset's rate a block's branch can be dropped for both samples
    # of the one step whose gradient reaches the encoder (the zero-initialised head passes none in the
    # first), and that block then rightly does not move, which made "every variable learns" a coin toss.
    keras.utils.set_random_seed(0)
    model = ddf_model(cls, backbone=dict(TINY, drop_path_rate=0.0))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    data = blob_pairs(4)
    model(data)  # build
    variables = model.backbone.trainable_variables
    before = [np.array(v) for v in variables]
    history = model.fit(data, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    still = [v.path for v, a in zip(variables, before) if np.allclose(a, np.array(v))]
    assert still == []  # every variable learns
    out = model.predict(data, batch_size=2, verbose=0)
    assert out["ddf"].shape == (4, *SIZE, 3) and np.isfinite(out["ddf"]).all()


def test_zero_initialised_head_starts_at_the_identity_and_odd_sizes_come_back_exactly():
    size = (18, 14, 11)
    backbone = REGISTRY.build_backbone(
        config=dict({"name": "transmorph"}, **dict(TINY, window_size=[3, 3, 2])),
        default_args={"image_size": size, "out_channels": 3, "out_kernel_initializer": "zeros"},
    )
    y = np.asarray(backbone(np.random.default_rng(0).random((1, *size, 2)).astype("float32")))
    assert y.shape == (1, *size, 3)
    assert np.abs(y).max() == 0.0


def test_2d_and_skip_ablations():
    x = np.random.default_rng(1).random((2, 24, 20, 2)).astype("float32")
    counts = {}
    for conv_skip, transformer_skip in [(True, True), (False, True), (True, False), (False, False)]:
        backbone = TransMorph(
            image_size=(24, 20),
            out_channels=2,
            out_kernel_initializer="glorot_uniform",
            **dict(TINY, window_size=4),
            conv_skip=conv_skip,
            transformer_skip=transformer_skip,
        )
        y = np.asarray(backbone(x))
        assert y.shape == (2, 24, 20, 2) and np.isfinite(y).all()
        counts[(conv_skip, transformer_skip)] = backbone.count_params()
    assert counts[(True, True)] > counts[(False, True)] and counts[(True, True)] > counts[(True, False)]


def test_config_round_trip_rebuilds_the_same_architecture():
    backbone = TransMorph(image_size=SIZE, out_channels=3, **TINY, gradient_checkpointing=True)
    clone = TransMorph.from_config(backbone.get_config())
    x = np.zeros((1, *SIZE, 2), "float32")
    backbone(x)
    clone(x)
    assert clone.count_params() == backbone.count_params()
    assert clone.get_config() == backbone.get_config()


@pytest.mark.slow
def test_mixed_float16_keeps_the_field_and_the_loss_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = ddf_model()
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        data = blob_pairs(2)
        out = model(data)
        assert keras.backend.standardize_dtype(out["ddf"].dtype) == "float32"
        assert model.backbone.encoder.compute_dtype == "float16"
        history = model.fit(data, batch_size=2, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_pretrained_weights_load_and_a_mismatch_is_refused_by_name(tmp_path):
    x = np.random.default_rng(2).random((1, *SIZE, 2)).astype("float32")
    source = TransMorph(image_size=SIZE, out_channels=3, out_kernel_initializer="glorot_uniform", **TINY)
    expected = np.asarray(source(x))
    path = str(tmp_path / "tm.weights.h5")
    source.save_weights(path)
    loaded = TransMorph(image_size=SIZE, out_channels=3, out_kernel_initializer="glorot_uniform", **TINY, weights=path)
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, rtol=1e-5, atol=1e-6)
    wider = TransMorph(image_size=SIZE, out_channels=3, **dict(TINY, embed_dim=12), weights=path)
    with pytest.raises(ValueError, match="does not fit transmorph preset 'tiny'.*arrays"):
        wider(x)
    with pytest.raises(FileNotFoundError, match="missing.weights.h5"):
        TransMorph(image_size=SIZE, out_channels=3, **TINY, weights=str(tmp_path / "missing.weights.h5"))(x)


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match="unknown preset 'huge'; known presets: tiny, small, base, large"):
        TransMorph(image_size=SIZE, preset="huge")
    with pytest.raises(ValueError, match=r"smaller than patch_size x window_size = 4 x \(5, 6, 7\)"):
        TransMorph(image_size=(64, 64, 20), preset="base")
    with pytest.raises(ValueError, match="not a multiple of its num_heads"):
        TransMorph(image_size=SIZE, **dict(TINY, num_heads=[3, 3, 3]))
    assert set(TRANSMORPH_PRESETS) == {"tiny", "small", "base", "large"}

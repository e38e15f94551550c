"""The dfsa model (He, He and Cao 2022): its defaults (one frozen segmenter, binary hard attention), the
multi-branch network on the attentive images, the paper's full loss with every term logged, and config errors."""

import keras
import numpy as np
import pytest

from tests.models.test_wssamnet import _full_config
from tfreg.config import ConfigError, validate_config
from tfreg.models import DFSAModel

SHAPE = (16, 16)
SEGMENTER = {"backbone": {"name": "unet_segmenter", "channels": [4, 8]}, "head": {"num_classes": 1}}


def encoder():
    """A small stand-in for the label auto-encoder's encoder: ``(B, 16, 16, 1)`` -> ``(B, 4)``."""
    inputs = keras.Input(SHAPE + (1,))
    x = keras.layers.Conv2D(2, 3, strides=4, padding="same")(inputs)
    return keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(x)))


def paper_loss(enc):
    return {
        "image": [{"name": "ncc", "weight": 1.0}, {"name": "ssim", "weight": 1.0, "padding": "same"}],
        "label": [{"name": "cross-entropy", "weight": 1.0}, {"name": "embedding", "weight": 0.1, "encoder": enc}],
        "regularization": {"name": "tv", "weight": 3.5},
    }


def train_config(enc=None, **extra):
    return dict(
        {
            "backbone": {"name": "dfsa_unet", "num_branches": 3, "channels": [4, 8, 8]},
            "segmenter": dict(SEGMENTER),
            "loss": paper_loss(enc if enc is not None else encoder()),
        },
        **extra,
    )


def batch(seed=0):
    rng = np.random.default_rng(seed)
    images = {k: rng.random((2,) + SHAPE).astype("float32") for k in ("moving_image", "fixed_image")}
    labels = {k: (rng.random((2,) + SHAPE) > 0.5).astype("float32") for k in ("moving_label", "fixed_label")}
    return dict(images, **labels, indices=np.zeros((2, 3), "float32"))


def test_defaults_are_one_frozen_segmenter_and_binary_hard_attention():
    model = DFSAModel(SHAPE, SHAPE, index_size=3, labeled=True, config=train_config())
    assert model.shared and not model.segmenters_trainable and model.segmenter is not None
    assert model.attention_name == "masking" and model.attention.binary
    x = batch()
    out = {k: keras.ops.convert_to_numpy(v) for k, v in model(x).items()}
    for role in ("moving", "fixed"):
        hard = out[f"{role}_segmentation"][..., 0] >= 0.5
        np.testing.assert_array_equal(out[f"{role}_attention"][..., 0], x[f"{role}_image"] * hard)
    assert out["ddf"].shape == (2,) + SHAPE + (2,)
    assert "target_label" not in out  # frozen segmenters: no segmentation pair
    assert not any(v is w for v in model.trainable_variables for w in model.segmenter.weights)


@pytest.mark.slow  # whole training; the main CI step stays under 15 minutes
def test_the_paper_loss_trains_and_logs_every_term():
    model = DFSAModel(SHAPE, SHAPE, index_size=3, labeled=True, config=train_config())
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(batch(), epochs=2, verbose=0).history
    terms = [k for k in history if k.startswith("loss/") and not k.endswith("_weighted")]
    assert sorted(terms) == sorted(
        [
            "loss/image_GlobalNCCLoss",
            "loss/image_SSIMLoss",
            "loss/label_CrossEntropy",
            "loss/label_EmbeddingLoss",
            "loss/regularization_TotalVariation",
        ]
    ), terms
    last = {k: v[-1] for k, v in history.items()}
    weighted = sum(last[k] for k in last if k.startswith("loss/") and k.endswith("_weighted"))
    np.testing.assert_allclose(last["loss"], weighted, rtol=1e-4)
    # the image terms are negated scores: -(NCC), -(SSIM) in [-1, 1]
    assert -1 <= last["loss/image_GlobalNCCLoss"] <= 1
    assert -1 <= last["loss/image_SSIMLoss"] <= 1


def test_no_attention_ablation_registers_the_plain_images():
    model = DFSAModel(SHAPE, SHAPE, index_size=3, labeled=True, config=train_config(attention={"name": "none"}))
    x = batch()
    out = model(x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out["moving_attention"])[..., 0], x["moving_image"])


def test_a_size_the_branches_cannot_halve_is_refused():
    with pytest.raises(ValueError, match=r"multiple of 2\^\(num_branches - 1\) = 4"):
        DFSAModel((18, 16), (18, 16), index_size=3, labeled=True, config=train_config())


def test_config_checks_use_the_dfsa_defaults(tmp_path):
    train = train_config(enc="encoder.keras")
    config = _full_config(tmp_path, train)
    config["train"]["method"] = "dfsa"
    config["dataset"]["image_shape"] = list(SHAPE)
    # frozen by default: the segmenter must be loaded from a segmentation run
    with pytest.raises(ConfigError, match=r"frozen segmenters need pre-trained weights.*segmenter/backbone"):
        validate_config(config, check_dirs=False)
    config["train"]["init_from"] = {"path": "seg/save/ckpt-1", "parts": {"segmenter/backbone": "backbone"}}
    config["train"]["attention"] = {"name": "masking", "binary": "yes"}
    with pytest.raises(ConfigError, match=r"train\.attention.*binary"):
        validate_config(config, check_dirs=False)

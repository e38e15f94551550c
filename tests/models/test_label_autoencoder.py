"""The label auto-encoder (tfreg/models/label_autoencoder.py): shapes, classes, parameter count, fit, config."""

import math

import keras
import numpy as np
import pytest

from tfreg.config.validate import ConfigChecker
from tfreg.models import LabelAutoencoder
from tfreg.models.label_autoencoder import build_label_encoder, label_classes
from tfreg.registry import REGISTRY

# the loss of config/dfsa_label_autoencoder.yaml
LOSS = {
    "reconstruction": {
        "name": "contour-ce",
        "multi_class": True,
        "contour_weight": 2.0,
        "normalize": True,
        "weight": 1.0,
    }
}


def ellipses(batch, shape, channels=None, seed=0):
    """Binary ellipse masks ``(batch, *shape)`` (or ``channels`` exclusive ones, ``(batch, *shape, C)``)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).astype("float32")
    count = channels or 1
    out = np.zeros((batch, *shape, count), "float32")
    for b in range(batch):
        taken = np.zeros(shape, bool)
        for c in range(count):
            centre = rng.uniform(0.3, 0.7, len(shape)) * np.array(shape)
            radii = rng.uniform(0.15, 0.3, len(shape)) * np.array(shape)
            inside = (((grid - centre) / radii) ** 2).sum(-1) <= 1.0
            out[b, ..., c] = inside & ~taken
            taken |= inside
    return out[..., 0] if channels is None else out


def inputs_for(labels_moving, labels_fixed):
    batch, shape = labels_moving.shape[0], labels_moving.shape[1:]
    return {
        "moving_image": np.zeros((batch, *shape[: len(shape)]), "float32"),
        "fixed_image": np.zeros((batch, *shape[: len(shape)]), "float32"),
        "indices": np.zeros((batch, 3), "float32"),
        "moving_label": labels_moving,
        "fixed_label": labels_fixed,
    }


@pytest.mark.parametrize(
    "size, channels", [((16, 16), None), ((16, 16), 2), ((8, 8, 8), None), ((16, 8, 8), 3)], ids=str
)
def test_outputs_2d_and_3d(size, channels):
    model = LabelAutoencoder(size, loss=LOSS, label_channels=channels or 1, code_size=5)
    moving, fixed = ellipses(2, size, channels, 0), ellipses(2, size, channels, 1)
    outputs = model(inputs_for(moving, fixed), training=False)
    classes = (channels or 1) + 1
    assert tuple(outputs["code"].shape) == (4, 5)
    assert tuple(outputs["pred_classes"].shape) == (4, *size, classes)
    np.testing.assert_allclose(np.asarray(outputs["pred_classes"]).sum(-1), 1.0, atol=1e-5)  # a softmax
    # the target: the clean maps, moving then fixed, with the background first
    stacked = np.concatenate([moving, fixed])
    stacked = stacked[..., None] if channels is None else stacked
    np.testing.assert_array_equal(np.asarray(outputs["target_classes"])[..., 1:], stacked)
    np.testing.assert_array_equal(np.asarray(outputs["target_classes"])[..., 0], 1.0 - stacked.sum(-1))
    # inference is deterministic (no noise) and the encoder alone gives the same code
    again = model(inputs_for(moving, fixed), training=False)
    np.testing.assert_array_equal(np.asarray(again["code"]), np.asarray(outputs["code"]))
    np.testing.assert_allclose(np.asarray(model.encode(fixed)), np.asarray(outputs["code"])[2:], rtol=1e-5, atol=1e-5)


def test_label_classes_of_soft_and_overlapping_labels():
    foreground = np.array([[0.2, 0.3], [0.9, 0.6], [0.0, 0.0], [1.0, 0.0]], "float32").reshape(1, 2, 2, 2)
    got = np.asarray(label_classes(foreground))
    expected_background = np.clip(1.0 - foreground.sum(-1), 0.0, 1.0)  # 0.5, 0 (clipped from -0.5), 1, 0
    np.testing.assert_allclose(got[..., 0], expected_background, atol=1e-7)
    np.testing.assert_array_equal(got[..., 1:], foreground)


def expected_parameters(ndim, size, channels, filters=(16, 32), bottleneck=1, code=32, kernel=3):
    """Hand count: conv ``k^n * in * out + out``, batch norm 2 trainable (gamma, beta) + 2 statistics per
    channel, dense ``in * out + out``; returns (trainable, non-trainable)."""
    k = kernel**ndim
    classes = channels + 1

    def conv(cin, cout):
        return k * cin * cout + cout

    f1, f2 = filters
    encoder_convs = [(classes, f1), (f1, f1), (f1, f2), (f2, f2), (f2, bottleneck)]
    decoder_convs = [(bottleneck, f2), (f2, f2), (f2, f1), (f1, f1), (f1, f1)]  # each followed by batch norm
    flat = math.prod(s // 8 for s in size) * bottleneck
    convs = sum(conv(a, b) for a, b in encoder_convs + decoder_convs) + conv(f1, classes)  # + the logits conv
    norm_channels = sum(b for _, b in encoder_convs + decoder_convs)
    dense = (flat * code + code) + (code * flat + flat)
    return convs + 2 * norm_channels + dense, 2 * norm_channels


def count(variables):
    return sum(int(np.prod(v.shape)) for v in variables)


def test_parameter_count_of_ac_regnets_autoencoder_at_64():
    # 2-D, 64 x 64, one lung mask (2 classes): worked by hand
    # encoder convs 304 + 2320 + 4640 + 9248 + 289, BN gammas/betas 2 * 97, dense 64 * 32 + 32   = 19075
    # decoder dense 32 * 64 + 64, convs 320 + 9248 + 4624 + 2320 + 2320 + 290, BN 2 * 112          = 21458
    model = LabelAutoencoder((64, 64), loss=LOSS)
    assert count(model.trainable_weights) == 19075 + 21458 == expected_parameters(2, (64, 64), 1)[0]
    assert count(model.non_trainable_weights) == 2 * (97 + 112)
    assert count(model.encoder.trainable_weights) == 19075


@pytest.mark.parametrize(
    "size, channels, options",
    [((16, 16), 2, {}), ((16, 8, 8), 1, {"code_size": 7, "filters": [4, 6], "bottleneck_channels": 2})],
)
def test_parameter_count_formula(size, channels, options):
    model = LabelAutoencoder(size, loss=LOSS, label_channels=channels, **options)
    trainable, frozen = expected_parameters(
        len(size),
        size,
        channels,
        filters=tuple(options.get("filters", (16, 32))),
        bottleneck=options.get("bottleneck_channels", 1),
        code=options.get("code_size", 32),
    )
    assert count(model.trainable_weights) == trainable
    assert count(model.non_trainable_weights) == frozen


@pytest.mark.slow  # a whole training: the main CI step stays under 15 minutes
def test_fit_learns_to_reconstruct():
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    size = (16, 16)
    data = inputs_for(ellipses(8, size, seed=2), ellipses(8, size, seed=3))
    model = LabelAutoencoder(size, loss=LOSS, noise={"probability": 0.1, "seed": 0})
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(tf.data.Dataset.from_tensor_slices(data).batch(4), epochs=15, verbose=0).history
    losses = history["loss/reconstruction_ContourCrossEntropy"]
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.75 * losses[0]
    # the reconstruction's foreground overlaps the masks (Dice of the thresholded probabilities)
    assert history["metric/Dice"][-1] > 0.6 > history["metric/Dice"][0]
    assert "metric/moving_label_mean" in history


def test_one_role_and_the_size_and_label_errors():
    model = LabelAutoencoder((16, 16), (8, 8), loss=LOSS, labels="moving")
    out = model({"moving_label": ellipses(3, (16, 16))})
    assert tuple(out["code"].shape) == (3, 32)
    with pytest.raises(ValueError, match=r"divisible by 8 = 2\^3.*train.filters \[16, 32\].*dataset.image_shape"):
        LabelAutoencoder((12, 16), loss=LOSS)
    with pytest.raises(ValueError, match=r"divisible by 4 = 2\^2"):
        LabelAutoencoder((6, 8), loss=LOSS, filters=[4])
    with pytest.raises(ValueError, match="moving_image_size .* must be equal"):
        LabelAutoencoder((16, 16), (8, 8), loss=LOSS)
    with pytest.raises(ValueError, match="needs labeled data"):
        LabelAutoencoder((16, 16), loss=LOSS, labeled=False)
    with pytest.raises(ValueError, match=r"noise has unknown key\(s\) \['p'\]"):
        LabelAutoencoder((16, 16), loss=LOSS, noise={"p": 0.1})
    with pytest.raises(ValueError, match=r"noise.axis must be an integer in \[0, 1\]"):
        LabelAutoencoder((16, 16), loss=LOSS, noise={"axis": 2})
    model = LabelAutoencoder((16, 16), loss=LOSS, label_channels=2)
    with pytest.raises(ValueError, match=r"label_channels=2 foreground channels\), got \(1, 16, 16, 3\)"):
        model.encode(np.zeros((1, 16, 16, 3), "float32"))
    with pytest.raises(ValueError, match=r"inputs must hold \['fixed_label'\]"):
        model({"moving_label": np.zeros((1, 16, 16, 2), "float32")})


def test_the_encoder_is_a_standalone_model_of_the_loader_labels():
    encoder = build_label_encoder((16, 8), label_channels=2, filters=(4, 8), code_size=3)
    assert tuple(encoder.inputs[0].shape) == (None, 16, 8, 2)
    assert tuple(encoder.outputs[0].shape) == (None, 3)
    model = LabelAutoencoder((16, 16), loss=LOSS)
    assert model.exported_models() == {"encoder": model.encoder}
    assert LabelAutoencoder.parameter_group_names() == ("autoencoder",)


def _validate(train, labeled=True):
    checker = ConfigChecker(None, REGISTRY, check_dirs=False)
    LabelAutoencoder.validate_train_config(checker, train, labeled, "label_autoencoder")
    return [str(e) for e in checker.errors]


def test_validate_train_config():
    assert _validate({"loss": LOSS, "code_size": 8, "filters": [8, 16], "noise": {"probability": 0.2}}) == []
    errors = " | ".join(
        _validate(
            {
                "loss": {"segmentation": {"name": "dice"}},
                "code_size": 0,
                "filters": [],
                "noise": {"prob": 1},
                "labels": "all",
            },
            labeled=False,
        )
    )
    for message in (
        "needs labeled data",
        "train.code_size",
        "train.filters",
        "noise has unknown key(s) ['prob']",
        "train.labels",
        "segmentation",
    ):
        assert message in errors, errors

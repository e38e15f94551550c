"""tfreg.models.segmentation: the head, the label forms, model.fit on a threshold problem, config checks, errors."""

import keras
import numpy as np
import pytest

from tfreg.config.validate import ConfigChecker
from tfreg.models import SegmentationModel, label_channels
from tfreg.models.backbones import MultiUNets
from tfreg.models.segmentation import resolve_head
from tfreg.registry import REGISTRY

BACKBONE = {"name": "unet_segmenter", "channels": [4, 8]}
DICE = {"segmentation": {"name": "dice", "weight": 1.0}}


def model_of(size=(8, 8), head=None, **kwargs):
    kwargs.setdefault("config", {"backbone": BACKBONE, "loss": DICE})
    return SegmentationModel(size, head=head, **kwargs)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def threshold_problem(n, size, seed):
    """Smooth random images (a sum of 3 Gaussian blobs) and the label ``image > 0.5``, as the loaders give them."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in size], indexing="ij"), -1).astype(np.float32)
    images = np.zeros((n, *size), np.float32)
    for i in range(n):
        for _ in range(3):
            centre = rng.uniform(0, size[0], len(size))
            images[i] += np.exp(-np.sum((grid - centre) ** 2, -1) / (2 * 2.5**2))
        images[i] /= images[i].max()
    return images, (images > 0.5).astype(np.float32)


def test_model_fit_decreases_the_dice_loss_on_a_threshold_problem():
    keras.utils.set_random_seed(0)
    images, labels = threshold_problem(16, (16, 16), seed=1)
    inputs = {
        "moving_image": images[:8],
        "fixed_image": images[8:],
        "moving_label": labels[:8],
        "fixed_label": labels[8:],
    }
    # instance norm: no moving statistics, so inference sees what training saw after 80 steps
    backbone = {"name": "unet_segmenter", "channels": [4, 8], "norm": "instance"}
    model = model_of((16, 16), config={"backbone": backbone, "loss": DICE})
    model.compile(optimizer=keras.optimizers.Adam(3e-2))
    history = model.fit(inputs, batch_size=4, epochs=20, verbose=0).history
    dice_loss = history["loss/segmentation_DiceScoreLoss"]
    # the loss is -Dice: from a poor start (about -0.3) to a good segmentation
    assert dice_loss[-1] < dice_loss[0] - 0.3, dice_loss
    assert dice_loss[-1] < -0.8, dice_loss
    assert history["metric/Dice"][-1] > history["metric/Dice"][0] + 0.3
    # the thresholded prediction agrees with the label (binary Dice, an independent NumPy count)
    pred = numpy(model(inputs, training=False)["pred_label"]) >= 0.5
    target = np.concatenate([labels[:8], labels[8:]]) >= 0.5
    dice = 2 * (pred & target).sum() / (pred.sum() + target.sum())
    assert dice > 0.85, dice


def test_outputs_and_the_stacked_loss_pair():
    model = model_of((6, 7))
    rng = np.random.default_rng(0)
    inputs = {k: rng.random((3, 6, 7)).astype(np.float32) for k in ("moving_image", "fixed_image")}
    inputs.update({k: (rng.random((3, 6, 7)) > 0.5).astype(np.float32) for k in ("moving_label", "fixed_label")})
    out = model(inputs)
    assert sorted(out) == ["fixed_segmentation", "moving_segmentation", "pred_label", "target_label"]
    assert tuple(out["moving_segmentation"].shape) == (3, 6, 7, 1)
    # moving then fixed along the batch; the one channel of a sigmoid head is the prediction
    np.testing.assert_array_equal(
        numpy(out["target_label"]), np.concatenate([inputs["moving_label"], inputs["fixed_label"]])
    )
    np.testing.assert_allclose(
        numpy(out["pred_label"]),
        np.concatenate([numpy(out["moving_segmentation"])[..., 0], numpy(out["fixed_segmentation"])[..., 0]]),
    )
    # the same network segments both: the images' own segmentation equals segment_images on each
    np.testing.assert_allclose(
        numpy(out["fixed_segmentation"]), numpy(model.segment_images(inputs["fixed_image"])), rtol=1e-5, atol=1e-6
    )
    probabilities = numpy(out["moving_segmentation"])
    assert probabilities.min() > 0 and probabilities.max() < 1


@pytest.mark.parametrize("activation, offset", [("sigmoid", 0), ("softmax", 1)])
def test_sampled_label_channel_is_scored_against_its_head_channel(activation, offset):
    # DeepReg's pipeline: one label channel per sample, its index the last entry of ``indices``
    model = model_of((5, 6), head={"activation": activation}, label_count=3, index_size=3)
    assert model.num_classes == 3 + offset
    rng = np.random.default_rng(1)
    inputs = {k: rng.random((4, 5, 6)).astype(np.float32) for k in ("moving_image", "fixed_image")}
    inputs.update({k: (rng.random((4, 5, 6)) > 0.5).astype(np.float32) for k in ("moving_label", "fixed_label")})
    channels = np.array([2, 0, 1, 2])
    inputs["indices"] = np.stack([np.arange(4), np.arange(4) + 4, channels], -1).astype(np.float32)
    out = model(inputs)
    moving, fixed = numpy(out["moving_segmentation"]), numpy(out["fixed_segmentation"])
    if activation == "softmax":
        np.testing.assert_allclose(moving.sum(-1), 1.0, rtol=1e-5)
    expected = np.concatenate(
        [np.stack([seg[b, ..., c + offset] for b, c in enumerate(channels)]) for seg in (moving, fixed)]
    )
    np.testing.assert_allclose(numpy(out["pred_label"]), expected, rtol=1e-6)


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_all_label_channels_at_once(activation):
    model = model_of((5, 6), head={"activation": activation}, label_count=2)
    rng = np.random.default_rng(2)
    inputs = {k: rng.random((2, 5, 6)).astype(np.float32) for k in ("moving_image", "fixed_image")}
    inputs.update({k: (rng.random((2, 5, 6, 2)) > 0.5).astype(np.float32) for k in ("moving_label", "fixed_label")})
    out = model(inputs)
    first = 1 if activation == "softmax" else 0
    expected = np.concatenate([numpy(out["moving_segmentation"]), numpy(out["fixed_segmentation"])])[..., first:]
    np.testing.assert_allclose(numpy(out["pred_label"]), expected, rtol=1e-6)
    inputs["moving_label"] = inputs["fixed_label"] = np.zeros((2, 5, 6, 3), np.float32)
    with pytest.raises(ValueError, match=r"have 3 channel\(s\), but the head predicts 2 label channel\(s\)"):
        model(inputs)


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_label_masks_decode_the_head(activation):
    """tfreg_predict's masks: sigmoid ``p >= 0.5`` per channel; softmax the argmax one-hot without the background."""
    model = model_of((5, 6), head={"activation": activation}, label_count=3)
    rng = np.random.default_rng(4)
    probabilities = rng.random((2, 5, 6, model.num_classes)).astype(np.float32)
    probabilities[0, 0, 0] = 0.5  # exactly the threshold counts as foreground
    if activation == "softmax":
        probabilities /= probabilities.sum(-1, keepdims=True)
    masks = numpy(model.label_masks("fixed_segmentation", probabilities))
    assert masks.dtype == bool and masks.shape == (2, 5, 6, 3)
    if activation == "sigmoid":
        np.testing.assert_array_equal(masks, probabilities >= 0.5)
        assert masks[0, 0, 0].all()
    else:
        winner = probabilities.argmax(-1)
        np.testing.assert_array_equal(masks, np.stack([winner == c for c in (1, 2, 3)], -1))
        np.testing.assert_array_equal(masks.sum(-1), winner > 0)  # exclusive; background in no channel
    assert SegmentationModel.prediction_label_maps == {
        "moving_segmentation": "moving_label",
        "fixed_segmentation": "fixed_label",
    }
    with pytest.raises(ValueError, match=r"label_masks: 'moving_attention' is not one of"):
        model.label_masks("moving_attention", probabilities)


def test_label_channels_of_an_integer_map():
    label_map = np.array([[0, 1, 2], [3, 2, 0]], np.float32)[None]
    got = numpy(label_channels(label_map, 3))
    expected = np.stack([label_map == c for c in (1, 2, 3)], -1).astype(np.float32)
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="num_labels must be an integer >= 1"):
        label_channels(label_map, 0)


def test_segment_one_role_allows_different_shapes():
    model = model_of((6, 8), fixed_image_size=(5, 4), config={"backbone": BACKBONE, "loss": DICE, "segment": "fixed"})
    inputs = {
        "moving_image": np.zeros((2, 6, 8), np.float32),
        "fixed_image": np.zeros((2, 5, 4), np.float32),
        "moving_label": np.zeros((2, 6, 8), np.float32),
        "fixed_label": np.ones((2, 5, 4), np.float32),
    }
    out = model(inputs)
    assert sorted(out) == ["fixed_segmentation", "pred_label", "target_label"]
    assert tuple(out["pred_label"].shape) == (2, 5, 4)
    with pytest.raises(ValueError, match=r"segment 'both' stacks .* must be equal; set train.segment"):
        model_of((6, 8), fixed_image_size=(5, 4))


def test_multi_channel_images_and_a_multi_unets_backbone():
    config = {"backbone": {"name": "multi_unets", "tiles": [2, 1, 2], "unet": {"channels": [2]}}, "loss": DICE}
    model = SegmentationModel((4, 6, 8), config=config, label_count=1)
    assert isinstance(model.backbone, MultiUNets) and model.backbone.image_size == (4, 6, 8)
    images = np.random.default_rng(3).random((1, 4, 6, 8, 2)).astype(np.float32)
    out = model(
        {"moving_image": images, "fixed_image": images, "moving_label": images[..., 0], "fixed_label": images[..., 1]}
    )
    assert tuple(out["pred_label"].shape) == (2, 4, 6, 8)


def test_a_built_backbone_layer_and_config_round_trip():
    model = model_of((8, 8), head={"activation": "softmax", "num_classes": 3})
    config = model.get_config()
    assert config["config"]["head"] == {"num_classes": 3, "activation": "softmax"}
    clone = SegmentationModel.from_config(config)
    assert clone.num_classes == 3 and clone.activation == "softmax"
    backbone = REGISTRY.build_backbone({"name": "unet_segmenter", "channels": [3]}, default_args={"image_size": (8, 8)})
    notebook = SegmentationModel((8, 8), backbone=backbone, loss=DICE)
    assert notebook.backbone is backbone


def test_resolve_head_defaults_and_data():
    assert resolve_head(None) == {"num_classes": 1, "activation": "sigmoid"}
    assert resolve_head({"activation": "softmax"}) == {"num_classes": 2, "activation": "softmax"}
    assert resolve_head(None, label_count=4) == {"num_classes": 4, "activation": "sigmoid"}
    assert resolve_head({"activation": "softmax"}, label_count=4) == {"num_classes": 5, "activation": "softmax"}
    assert resolve_head({"num_classes": 5, "activation": "softmax"}, label_count=4)["num_classes"] == 5


@pytest.mark.parametrize(
    "head, label_count, match",
    [
        ({"num_classes": 2}, 3, r"head.num_classes=2 does not fit the data: .* 3 label channel\(s\), .*fewer classes"),
        ({"num_classes": 4}, 3, r"sigmoid head needs num_classes=3 .*more classes than the labels"),
        ({"num_classes": 3, "activation": "softmax"}, 3, r"softmax head needs num_classes=4 \(the background plus"),
        ({"num_classes": 1, "activation": "softmax"}, None, r"a softmax head needs >= 2 classes"),
        ({"num_classes": 0}, None, r"head.num_classes must be an integer >= 1"),
        ({"activation": "relu"}, None, r"head.activation='relu' is not supported"),
        ({"classes": 2}, None, r"head has unknown key\(s\) \['classes'\]"),
        ([2], None, r"head must be a mapping"),
    ],
)
def test_head_errors(head, label_count, match):
    with pytest.raises(ValueError, match=match):
        resolve_head(head, label_count)
    with pytest.raises(ValueError, match=match):
        model_of(head=head, label_count=label_count)


def test_data_arguments_read_the_label_count():
    class Loader:
        labeled, num_labels = True, 3

    class Unlabeled:
        labeled, num_labels = False, None

    assert SegmentationModel.data_arguments(Loader()) == {"label_count": 3}
    assert SegmentationModel.data_arguments(Unlabeled()) == {}


def train_section(**overrides):
    train = {"method": "segmentation", "backbone": dict(BACKBONE), "loss": dict(DICE)}
    train.update(overrides)
    return train


@pytest.mark.parametrize(
    "train, labeled, messages",
    [
        (train_section(), True, []),
        (train_section(head={"num_classes": 2, "activation": "softmax"}, segment="moving"), True, []),
        (train_section(), False, ["train.method: 'segmentation' learns from label maps and needs labeled data"]),
        (train_section(head={"num_classes": 0}), True, ["train.head.num_classes: must be a positive integer"]),
        (train_section(head={"activation": "tanh"}), True, ["train.head.activation: 'tanh' is not allowed"]),
        (train_section(head={"clases": 2}), True, ["train.head.clases: unknown key 'clases' in train.head"]),
        (train_section(segment="all"), True, ["train.segment: 'all' is not allowed; allowed: both, moving, fixed"]),
        (train_section(backbone={"name": "local"}), True, ["train.backbone.name: 'local' is a registration backbone"]),
        (
            train_section(loss={"image": {"name": "lncc", "weight": 1.0}}),
            True,
            ["train.loss.image: unknown key 'image' in train.loss; allowed keys: segmentation"],
        ),
    ],
)
def test_validate_train_config(train, labeled, messages):
    checker = ConfigChecker(None, REGISTRY, check_dirs=False)
    SegmentationModel.validate_train_config(checker, train, labeled, "segmentation")
    assert len(checker.errors) == len(messages), checker.errors
    for error, message in zip(checker.errors, messages):
        assert error.startswith(message), (error, message)

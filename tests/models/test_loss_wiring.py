"""Loss wiring of the registration models: the category table, declared extra inputs, masks, ddf_backward."""

import logging

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from tfreg.loss_inputs import TensorSource
from tfreg.losses.rigidity import RigidityPenalty
from tfreg.models.loss_wiring import on_grid, select_channels
from tfreg.registry import REGISTRY

BACKBONE = {"name": "local", "num_channel_initial": 2, "extract_levels": [0, 1]}


def ddf_model(loss, labeled=True, moving=(10, 10, 10), fixed=(10, 10, 10), method="ddf"):
    config = {"backbone": dict(BACKBONE), "loss": loss}
    return REGISTRY.build_model(
        {
            "name": method,
            "moving_image_size": moving,
            "fixed_image_size": fixed,
            "index_size": 2,
            "labeled": labeled,
            "config": config,
        }
    )


def inputs(shape=(10, 10, 10), batch=1, seed=0):
    rng = np.random.default_rng(seed)
    x = {k: rng.random((batch, *shape)).astype("float32") for k in ("moving_image", "fixed_image", "fixed_label")}
    label = np.zeros((batch, *shape), "float32")
    label[:, 4:6, 3:7, 4:6] = 1.0
    x["moving_label"] = label
    x["indices"] = np.zeros((batch, 2), "float32")
    return x


def test_select_channels_matches_numpy():
    rng = np.random.default_rng(1)
    mask = rng.random((2, 4, 5, 6, 3)).astype("float32")
    kept = np.asarray(select_channels(mask, TensorSource("m", (2, 0)), ndim=3))
    np.testing.assert_array_equal(kept, mask[..., [2, 0]])
    union = np.asarray(select_channels(mask, TensorSource("m", (0, 1), "union"), ndim=3))
    np.testing.assert_array_equal(union, np.max(mask[..., :2], axis=-1, keepdims=True))
    plain = np.asarray(select_channels(mask[..., 0], TensorSource("m"), ndim=3))
    np.testing.assert_array_equal(plain, mask[..., :1])
    with pytest.raises(ValueError, match="channels \\[5\\] do not exist"):
        select_channels(mask, TensorSource("m", (5,)), ndim=3)


def test_on_grid_resizes_only_when_needed():
    mask = np.ones((1, 16, 16, 16, 2), "float32")
    assert on_grid(mask, (16, 16, 16)) is mask
    resized = np.asarray(on_grid(mask, (8, 8, 8)))
    assert resized.shape == (1, 8, 8, 8, 2)
    np.testing.assert_allclose(resized, 1.0, atol=1e-6)  # a constant stays constant under linear resizing


def _rigidity_gradient(model, x, ddf_value):
    ddf = tf.Variable(ddf_value)
    with tf.GradientTape() as tape:
        loss = model.loss_total(x, {"ddf": ddf, "pred_fixed_image": x["fixed_image"]})
    return float(loss), tape.gradient(loss, ddf).numpy()


def test_rigidity_with_the_moving_mask_has_no_gradient_outside_it():
    model = ddf_model({"regularization": {"name": "rigidity", "weight": 0.2, "mask": "moving_label"}})
    x = inputs()
    ddf = np.random.default_rng(2).normal(0, 0.5, (1, 10, 10, 10, 3)).astype("float32")
    value, grad = _rigidity_gradient(model, x, ddf)
    mask = x["moving_label"][0] > 0
    # the penalty's second differences reach 2 voxels from a masked voxel, along and across axes
    reach = ndimage.binary_dilation(mask, structure=np.ones((5, 5, 5), bool))
    magnitude = np.abs(grad[0]).sum(-1)
    assert np.all(magnitude[~reach] == 0.0)
    assert magnitude[mask].min() > 0
    # the value is the penalty inside the mask, weighted
    expected = 0.2 * float(RigidityPenalty()(ddf, x["moving_label"])[0])
    assert value == pytest.approx(expected, rel=1e-5)
    whole = 0.2 * float(RigidityPenalty()(ddf)[0])
    assert abs(value - whole) > 1e-3 * abs(whole)


def test_rigidity_mask_null_is_the_whole_grid():
    model = ddf_model({"regularization": {"name": "rigidity", "weight": 1.0, "mask": None}})
    x = inputs()
    ddf = np.random.default_rng(3).normal(0, 0.5, (1, 10, 10, 10, 3)).astype("float32")
    value, grad = _rigidity_gradient(model, x, ddf)
    assert value == pytest.approx(float(RigidityPenalty()(ddf)[0]), rel=1e-5)
    assert np.abs(grad).sum(-1).min() > 0  # every voxel counts


def test_rigidity_aliases_and_channel_union():
    model = ddf_model(
        {"regularization": {"name": "rigidity", "weight": 1.0, "mask": "fixed", "channels": [0], "combine": "union"}}
    )
    x = inputs()
    ddf = np.random.default_rng(4).normal(0, 0.5, (1, 10, 10, 10, 3)).astype("float32")
    value, _ = _rigidity_gradient(model, x, ddf)
    assert value == pytest.approx(float(RigidityPenalty()(ddf, x["fixed_label"])[0]), rel=1e-5)


def test_mask_on_a_different_grid_is_resized_onto_the_ddf():
    model = ddf_model(
        {"regularization": {"name": "rigidity", "weight": 1.0, "mask": "moving_label"}},
        moving=(16, 16, 16),
        fixed=(8, 8, 8),
    )
    x = inputs((8, 8, 8))
    x["moving_image"] = np.zeros((1, 16, 16, 16), "float32")
    x["moving_label"] = np.ones((1, 16, 16, 16), "float32")
    ddf = np.random.default_rng(5).normal(0, 0.5, (1, 8, 8, 8, 3)).astype("float32")
    value, _ = _rigidity_gradient(model, x, ddf)
    # an all-ones mask on any grid is the whole grid
    assert value == pytest.approx(float(RigidityPenalty()(ddf)[0]), rel=1e-4)


def test_inverse_consistency_of_translations():
    model = ddf_model({"regularization": {"name": "inverse-consistency", "weight": 1.0}})
    assert model.requested_outputs == ("ddf_backward",)
    x = inputs()
    t = np.array([0.5, -1.0, 0.25], "float32")
    forward = np.broadcast_to(t, (1, 10, 10, 10, 3)).astype("float32")
    exact = model.loss_total(x, {"ddf": forward, "ddf_backward": -forward, "pred_fixed_image": x["fixed_image"]})
    assert float(exact) == pytest.approx(0.0, abs=1e-10)
    # u_b = 0: u_f(x) + u_b(x + t) = t everywhere, both ways symmetric -> |t|^2
    zero = np.zeros_like(forward)
    value = model.loss_total(x, {"ddf": forward, "ddf_backward": zero, "pred_fixed_image": x["fixed_image"]})
    assert float(value) == pytest.approx(float(np.sum(t**2)), rel=1e-5)


def test_ddf_backward_is_the_swapped_pass():
    model = ddf_model({"regularization": {"name": "inverse-consistency", "weight": 1.0}})
    x = inputs()
    x["moving_image"] = x["fixed_image"]  # swapping identical images must give the same field
    out = model(x, training=False)
    np.testing.assert_allclose(np.asarray(out["ddf_backward"]), np.asarray(out["ddf"]), atol=1e-6)
    plain = ddf_model({"regularization": {"name": "bending", "weight": 1.0}})
    assert "ddf_backward" not in plain(x, training=False)  # computed only when a loss asks


def test_ddf_backward_needs_one_shape():
    with pytest.raises(ValueError, match="ddf_backward .* needs moving and fixed images of one shape"):
        ddf_model(
            {"regularization": {"name": "inverse-consistency", "weight": 1.0}}, moving=(16, 16, 16), fixed=(8, 8, 8)
        )


def test_wiring_to_a_tensor_the_model_lacks_is_refused():
    with pytest.raises(
        ValueError, match="input 'mask' comes from 'moving_label', which model DDFModel does not produce"
    ):
        ddf_model({"regularization": {"name": "rigidity", "weight": 1.0, "mask": "moving_label"}}, labeled=False)
    with pytest.raises(ValueError, match="needs its input 'mask'"):
        ddf_model({"regularization": {"name": "rigidity", "weight": 1.0}})


def test_unknown_category_names_the_model():
    with pytest.raises(ValueError, match="categories \\['segmentation'\\] that model DDFModel does not have"):
        ddf_model({"segmentation": {"name": "dice", "weight": 1.0}})


def test_conditional_skips_image_and_regularization_with_a_warning(caplog):
    loss = {
        "image": {"name": "lncc", "weight": 1.0},
        "label": {"name": "dice", "weight": 1.0},
        "regularization": {"name": "bending", "weight": 1.0},
    }
    with caplog.at_level(logging.WARNING):
        model = ddf_model(loss, method="conditional")
    assert [w.category for w in model.weighted_losses] == ["label"]
    assert "loss.image is not used by model ConditionalModel" in caplog.text
    assert "loss.regularization is not used" in caplog.text


def test_batch_without_the_wired_tensor_is_an_error():
    model = ddf_model({"regularization": {"name": "rigidity", "weight": 1.0, "mask": "moving_label"}})
    x = inputs()
    del x["moving_label"]
    with pytest.raises(ValueError, match="comes from 'moving_label', which this batch does not carry"):
        model.loss_total(x, {"ddf": np.zeros((1, 10, 10, 10, 3), "float32")})


def test_an_embedding_encoder_of_another_shape_is_refused_when_the_model_is_built(tmp_path):
    from tfreg.models.label_autoencoder import build_label_encoder

    path = tmp_path / "encoder.keras"
    build_label_encoder((8, 8, 8), label_channels=1, filters=(2,), code_size=4).save(path)
    loss = {"label": [{"name": "dice", "weight": 1.0}, {"name": "embedding", "encoder": str(path), "weight": 0.1}]}
    model = ddf_model(loss, moving=(8, 8, 8), fixed=(8, 8, 8))  # fits
    assert [wl.log_name for wl in model.weighted_losses] == ["loss/label_DiceScoreLoss", "loss/label_EmbeddingLoss"]
    with pytest.raises(ValueError, match=r"loss/label_EmbeddingLoss \(loss.label, called on 'fixed_label'\).*"
                       + rf"encoder '{path}' expects label maps of shape \(batch, 8, 8, 8, 1\).*"
                       + r"\(batch, 10, 10, 10\).*spatial shape"):  # fmt: skip
        ddf_model(loss)
    build_label_encoder((8, 8, 8), label_channels=2, filters=(2,), code_size=4).save(path)  # two structures
    with pytest.raises(ValueError, match=r"channel count \(label classes\)"):
        ddf_model(loss, moving=(8, 8, 8), fixed=(8, 8, 8))


def test_stacked_labels_union_of_chosen_channels():
    """Every label channel in one sample (``sample_label: stack``): the rigidity penalty covers the union of the
    chosen structures, and its gradient stays within reach of that union."""
    model = ddf_model(
        {
            "regularization": {
                "name": "rigidity",
                "weight": 0.4,
                "mask": "moving_label",
                "channels": [0, 2],
                "combine": "union",
            }
        }
    )
    x = inputs()
    labels = np.zeros((1, 10, 10, 10, 3), "float32")
    labels[0, 1:3, 1:3, 1:3, 0] = 1.0
    labels[0, 4:6, 4:6, 4:6, 1] = 1.0
    labels[0, 7:9, 6:9, 6:9, 2] = 1.0
    x["moving_label"] = labels
    x["fixed_label"] = labels
    ddf = np.random.default_rng(6).normal(0, 0.5, (1, 10, 10, 10, 3)).astype("float32")
    value, grad = _rigidity_gradient(model, x, ddf)
    union = np.maximum(labels[0, ..., 0], labels[0, ..., 2])
    assert value == pytest.approx(0.4 * float(RigidityPenalty()(ddf, union[None])[0]), rel=1e-5)
    reach = ndimage.binary_dilation(union > 0, structure=np.ones((5, 5, 5), bool))
    magnitude = np.abs(grad[0]).sum(-1)
    assert np.all(magnitude[~reach] == 0.0)  # channel 1 (not chosen) adds nothing where only it lies
    assert magnitude[labels[0, ..., 2] > 0].min() > 0


def test_tre_of_stacked_labels_is_the_mean_over_channels():
    from tfreg.models import target_registration_error

    fixed = np.zeros((2, 8, 8, 8, 2), "float32")
    moved = np.zeros_like(fixed)
    fixed[:, 1:3, 1:3, 1:3, 0] = 1.0  # centroid (1.5, 1.5, 1.5)
    moved[:, 2:4, 1:3, 1:3, 0] = 1.0  # shifted by 1 voxel along axis 0
    fixed[:, 4:6, 4:6, 4:6, 1] = 1.0
    moved[:, 4:6, 7:8, 4:6, 1] = 1.0  # centroid (4.5, 7, 4.5): 2.5 voxels along axis 1
    got = np.asarray(target_registration_error(fixed, moved, ndim=3))
    np.testing.assert_allclose(got, [1.75, 1.75], atol=1e-4)
    single = np.asarray(target_registration_error(fixed[..., 0], moved[..., 0]))
    np.testing.assert_allclose(single, [1.0, 1.0], atol=1e-4)

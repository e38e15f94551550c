"""Registration models: outputs, identity at init, fit with logged metric names, loss config rules."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfreg.models as M
from tfreg.models.backbones import Backbone
from tfreg.ops.integrate import integrate_dvf
from tfreg.ops.warp import warp
from tfreg.registry import REGISTRY

MOVING, FIXED = (10, 10, 10), (8, 8, 8)
BACKBONE = {"name": "local", "num_channel_initial": 2, "extract_levels": [0, 1]}
LOSS = {
    "image": {"name": "ssd", "weight": 1.0},
    "label": {"name": "dice", "weight": 1.0},
    "regularization": {"name": "bending", "weight": 0.5},
}


def make_data(n=2, moving=MOVING, fixed=FIXED, labeled=True, seed=0):
    rng = np.random.default_rng(seed)
    d = {
        "moving_image": rng.random((n, *moving)).astype("float32"),
        "fixed_image": rng.random((n, *fixed)).astype("float32"),
        "indices": np.zeros((n, 2), "float32"),
    }
    if labeled:
        d["moving_label"] = (rng.random((n, *moving)) > 0.5).astype("float32")
        d["fixed_label"] = (rng.random((n, *fixed)) > 0.5).astype("float32")
    return d


def make_model(cls=M.DDFModel, labeled=True, loss=LOSS, backbone=BACKBONE, moving=MOVING, fixed=FIXED, **kw):
    return cls(
        moving_image_size=moving,
        fixed_image_size=fixed,
        index_size=2,
        labeled=labeled,
        batch_size=2,
        config={"backbone": backbone, "loss": loss},
        **kw,
    )


def test_registered_models():
    assert REGISTRY.get("model_class", "ddf") is M.DDFModel
    assert REGISTRY.get("model_class", "dvf") is M.DVFModel
    assert REGISTRY.get("model_class", "conditional") is M.ConditionalModel
    assert REGISTRY.get("model_class", "affine") is M.AffineModel


def test_ddf_identity_at_init_samples_original_moving():
    model = make_model()
    data = make_data()
    out = model(data)
    np.testing.assert_array_equal(np.asarray(out["ddf"]), 0.0)
    # zero DDF: the fixed grid samples the unresized moving image, i.e. moving[0:8]^3
    np.testing.assert_allclose(np.asarray(out["pred_fixed_image"]), data["moving_image"][:, :8, :8, :8], atol=1e-6)
    np.testing.assert_allclose(np.asarray(out["pred_fixed_label"]), data["moving_label"][:, :8, :8, :8], atol=1e-6)


def test_2d_ddf_model():
    model = make_model(moving=(16, 16), fixed=(16, 16), loss={"image": {"name": "ssd", "weight": 1.0}})
    out = model(make_data(moving=(16, 16), fixed=(16, 16), labeled=False))
    assert tuple(out["ddf"].shape) == (2, 16, 16, 2)


@pytest.mark.slow  # a whole training: the main CI step stays under 15 minutes
def test_fit_logs_every_name_and_val_prefix():
    model = make_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    ds = tf.data.Dataset.from_tensor_slices(make_data(2)).batch(2)
    hist = model.fit(ds, epochs=1, validation_data=ds, verbose=0).history
    names = ["loss"]
    for cat, cls in [
        ("image", "SumSquaredDifference"),
        ("label", "DiceScoreLoss"),
        ("regularization", "BendingEnergy"),
    ]:
        names += [f"loss/{cat}_{cls}", f"loss/{cat}_{cls}_weighted"]
    for key in ["moving_image", "fixed_image", "moving_label", "fixed_label", "ddf"]:
        names += [f"metric/{key}_{s}" for s in ("mean", "min", "max")]
    names.append("metric/TRE")
    assert sorted(hist) == sorted(names + ["val_" + n for n in names])
    assert all(np.isfinite(v[0]) for v in hist.values())
    # the weighted values add up to the total
    total = sum(
        hist[f"loss/{c}_{n}_weighted"][0]
        for c, n in [("image", "SumSquaredDifference"), ("label", "DiceScoreLoss"), ("regularization", "BendingEnergy")]
    )
    np.testing.assert_allclose(hist["loss"][0], total, rtol=1e-4)
    np.testing.assert_allclose(
        hist["loss/regularization_BendingEnergy_weighted"][0],
        0.5 * hist["loss/regularization_BendingEnergy"][0],
        rtol=1e-5,
    )


def test_weight_zero_skips_only_itself_and_missing_weight_warns():
    loss = {"image": [{"name": "ssd", "weight": 0.0}, {"name": "gncc", "weight": 2.0}], "label": {"name": "dice"}}
    with pytest.warns(UserWarning, match="no weight"):
        model = make_model(loss=loss)
    assert [(w.log_name, w.weight) for w in model.weighted_losses] == [
        ("loss/image_GlobalNormalizedCrossCorrelationLoss", 2.0),
        ("loss/label_DiceScoreLoss", 1.0),
    ]


def test_unlabeled_skips_label_losses(caplog):
    with caplog.at_level("WARNING", logger="tfreg.models.loss_config"):
        model = make_model(labeled=False)
    assert [w.category for w in model.weighted_losses] == ["image", "regularization"]
    assert "loss.label is configured but model DDFModel does not compute it on this data" in caplog.text
    out = model(make_data(labeled=False))
    assert "pred_fixed_label" not in out
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    hist = model.fit(tf.data.Dataset.from_tensor_slices(make_data(2, labeled=False)).batch(2), verbose=0).history
    assert not any("label" in k or "TRE" in k for k in hist)


def test_dvf_ddf_is_integrated_dvf():
    model = make_model(M.DVFModel, backbone=dict(BACKBONE, out_kernel_initializer="glorot_uniform"))
    out = model(make_data())
    np.testing.assert_allclose(np.asarray(out["ddf"]), np.asarray(integrate_dvf(out["dvf"])), atol=1e-5)
    assert np.abs(np.asarray(out["dvf"])).max() > 0
    data = make_data()
    out = model(data)
    np.testing.assert_allclose(
        np.asarray(out["pred_fixed_image"]), np.asarray(warp(data["moving_image"], out["ddf"])), atol=1e-5
    )


def test_affine_and_global_theta():
    model = make_model(M.AffineModel, backbone={"num_channel_initial": 2, "depth": 2})
    out = model(make_data())
    np.testing.assert_allclose(np.asarray(out["theta"]), np.tile(np.eye(4, 3), (2, 1, 1)), atol=1e-6)
    np.testing.assert_allclose(np.asarray(out["ddf"]), 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="backbone name must be 'global'"):
        make_model(M.AffineModel, backbone=BACKBONE)


def test_conditional():
    loss = dict(LOSS)
    model = make_model(M.ConditionalModel, loss=loss)
    assert [w.category for w in model.weighted_losses] == ["label"]
    out = model(make_data())
    assert sorted(out) == ["pred_fixed_label"] and tuple(out["pred_fixed_label"].shape) == (2, *FIXED)
    with pytest.raises(ValueError, match="labeled"):
        make_model(M.ConditionalModel, labeled=False)


def test_custom_backbone_via_registry_copy():
    registry = REGISTRY.copy()

    @registry.register_backbone(name="tiny")
    class Tiny(Backbone):
        def __init__(
            self,
            image_size,
            num_channel_initial,
            out_kernel_initializer,
            out_activation,
            out_channels,
            name="Tiny",
            **kwargs,
        ):
            super().__init__(
                image_size=image_size,
                num_channel_initial=num_channel_initial,
                out_kernel_initializer=out_kernel_initializer,
                out_activation=out_activation,
                out_channels=out_channels,
                name=name,
                **kwargs,
            )
            self.conv = keras.layers.Conv3D(out_channels, 3, padding="same", kernel_initializer=out_kernel_initializer)

        def call(self, inputs, training=None, mask=None):
            return self.conv(inputs)

    model = make_model(backbone={"name": "tiny", "num_channel_initial": 4}, registry=registry)
    assert isinstance(model.backbone, Tiny)
    assert tuple(model(make_data())["ddf"].shape) == (2, *FIXED, 3)
    with pytest.raises(ValueError, match="tiny"):
        make_model(backbone={"name": "tiny", "num_channel_initial": 4})


def test_shape_depth_mismatch_message():
    with pytest.raises(ValueError, match=r"image_size \(8, 8, 8\) does not fit depth 4"):
        make_model(M.AffineModel, backbone={"name": "global", "num_channel_initial": 2, "depth": 4})


def test_save_load_weights_round_trip(tmp_path):
    data = make_data()
    a = make_model(backbone=dict(BACKBONE, out_kernel_initializer="glorot_uniform"))
    b = make_model(backbone=dict(BACKBONE, out_kernel_initializer="glorot_uniform"))
    ya = a(data)
    b(data)
    path = str(tmp_path / "m.weights.h5")
    a.save_weights(path)
    b.load_weights(path)
    np.testing.assert_allclose(np.asarray(b(data)["ddf"]), np.asarray(ya["ddf"]), atol=1e-6)


def test_model_config_round_trips_with_plain_containers():
    # Keras wraps dict attributes in tracking containers; get_config must give plain ones, or from_config's
    # deep copy of the train section would copy the whole model (it failed with "Could not locate class")
    from tfreg.models import DDFModel

    config = {
        "backbone": {"name": "local", "extract_levels": [0, 1]},
        "loss": {"image": {"name": "lncc", "weight": 1.0}},
    }
    model = DDFModel((8, 8, 8), (8, 8, 8), config=config)
    saved = model.get_config()
    assert type(saved["config"]) is dict and type(saved["config"]["backbone"]["extract_levels"]) is list
    assert DDFModel.from_config(saved).get_config() == saved


# ---------------------------------------------------------------------- backbone.control_points


def _control_point_reference(field, spacing):
    from tests.layers.test_control_points import head_reference

    return np.stack([head_reference(f, spacing) for f in np.asarray(field)])


@pytest.mark.parametrize("cls", [M.DDFModel, M.DVFModel], ids=["ddf", "dvf"])
def test_control_points_smooth_the_backbone_field(cls):
    # DeepReg's head between the backbone and the warp: the model's field is the head applied to the
    # backbone's raw output (checked against the NumPy re-derivation of DeepReg's head)
    backbone = dict(BACKBONE, out_kernel_initializer="glorot_uniform", control_points=[3, 4, 3])
    model = make_model(cls, backbone=backbone, moving=(12, 12, 12), fixed=(12, 12, 12))
    data = make_data(moving=(12, 12, 12), fixed=(12, 12, 12))
    out = model(data)
    raw = model.backbone.backbone(model.backbone_input(data))
    field = out["dvf"] if cls is M.DVFModel else out["ddf"]
    np.testing.assert_allclose(np.asarray(field), _control_point_reference(raw, (3, 4, 3)), atol=2e-5)
    if cls is M.DVFModel:
        np.testing.assert_allclose(np.asarray(out["ddf"]), np.asarray(integrate_dvf(out["dvf"])), atol=1e-5)
    # the weights are the backbone's: a control-point model trains the same parameters
    plain = make_model(cls, backbone=dict(backbone, control_points=None), moving=(12, 12, 12), fixed=(12, 12, 12))
    plain(data)
    assert sorted(tuple(w.shape) for w in plain.trainable_weights) == sorted(
        tuple(w.shape) for w in model.trainable_weights
    )


def test_control_points_2d_model_trains_one_step():
    backbone = dict(BACKBONE, control_points=2)
    model = make_model(backbone=backbone, moving=(12, 10), fixed=(12, 10))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(make_data(moving=(12, 10), fixed=(12, 10)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize(
    "cls", [M.AffineModel, M.ConditionalModel, M.LapIRNModel], ids=["affine", "conditional", "lapirn"]
)
def test_control_points_refused_where_no_dense_field_is_warped(cls):
    backbone = {"num_channel_initial": 2, "depth": 1} if cls is M.AffineModel else dict(BACKBONE)
    if cls is M.LapIRNModel:
        backbone = {"name": "lapirn", "num_channel_initial": 4}
    with pytest.raises(ValueError, match="control_points applies to models whose backbone predicts a dense"):
        make_model(cls, backbone=dict(backbone, control_points=4), moving=(16, 16, 16), fixed=(16, 16, 16))


def test_control_points_refuse_the_global_backbone_in_ddf():
    with pytest.raises(ValueError, match="affine field and its parameters"):
        make_model(backbone={"name": "global", "num_channel_initial": 2, "depth": 1, "control_points": 4})


def test_control_points_survive_the_config_round_trip():
    config = {"backbone": dict(BACKBONE, control_points=3), "loss": {"image": {"name": "ssd", "weight": 1.0}}}
    model = M.DDFModel((9, 9, 9), (9, 9, 9), config=config)
    data = make_data(moving=(9, 9, 9), fixed=(9, 9, 9), labeled=False)
    out = model(data)
    clone = M.DDFModel.from_config(model.get_config())
    clone(data)
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(clone(data)["ddf"]), np.asarray(out["ddf"]), atol=1e-6)

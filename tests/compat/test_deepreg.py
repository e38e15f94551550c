"""tfreg.compat.deepreg: DeepReg's import paths and names, and DeepReg-style scripts with only the imports changed.

The components below are ours, written in the shape of DeepReg's examples/ (a custom backbone subclassing
``tf.keras.Model`` with DeepReg's backbone keywords, a custom image/label loss subclassing
``tf.keras.losses.Loss`` with DeepReg's ``reduction`` default, a loss with a constructor parameter), and of
its classical demo (a DDF optimised with ``layer.Warping`` and ``REGISTRY.build_loss``).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

import tfreg.compat.deepreg.model.layer as layer
import tfreg.compat.deepreg.model.layer_util as layer_util
from tests.compat.deepreg_components import LpDistance, RootMeanSquare, TwoConvBackbone
from tests.conftest import REPO_ROOT
from tests.engine.deepreg_configs import paired_config, write_config
from tfreg.compat.deepreg import loss as deepreg_loss
from tfreg.compat.deepreg.model.backbone import Backbone
from tfreg.compat.deepreg.registry import (
    BACKBONE_CLASS,
    DATA_AUGMENTATION_CLASS,
    DATA_LOADER_CLASS,
    LOSS_CLASS,
    MODEL_CLASS,
    REGISTRY,
    Registry,
)
from tfreg.registry import REGISTRY as TFREG_REGISTRY


# ---------------------------------------------------------------------- names
def test_one_registry_under_deepreg_names():
    assert REGISTRY is TFREG_REGISTRY
    assert isinstance(REGISTRY, Registry)
    # DeepReg's category strings (its registry.py)
    assert (BACKBONE_CLASS, LOSS_CLASS, MODEL_CLASS, DATA_AUGMENTATION_CLASS, DATA_LOADER_CLASS) == (
        "backbone_class",
        "loss_class",
        "model_class",
        "da_class",
        "data_loader_class",
    )
    for method in ("register_backbone", "register_loss", "register_model", "register_data_loader"):
        assert callable(getattr(REGISTRY, method))


def test_deepreg_class_names_are_the_registered_classes():
    expected = {
        "lncc": deepreg_loss.image.LocalNormalizedCrossCorrelationLoss,
        "gncc": deepreg_loss.image.GlobalNormalizedCrossCorrelationLoss,
        "gmi": deepreg_loss.image.GlobalMutualInformationLoss,
        "ssd": deepreg_loss.label.SumSquaredDifferenceLoss,
        "dice": deepreg_loss.label.DiceLoss,
        "jaccard": deepreg_loss.label.JaccardLoss,
        "cross-entropy": deepreg_loss.label.CrossEntropyLoss,
        "bending": deepreg_loss.deform.BendingEnergy,
        "gradient": deepreg_loss.deform.GradientNorm,
    }
    for name, cls in expected.items():
        assert REGISTRY.get(LOSS_CLASS, name) is cls, name
    for name, cls in {"local": "LocalNet", "global": "GlobalNet", "unet": "UNet"}.items():
        assert REGISTRY.get(BACKBONE_CLASS, name).__name__ == cls
        assert issubclass(REGISTRY.get(BACKBONE_CLASS, name), Backbone)


# ---------------------------------------------------------------------- layer_util with DeepReg's argument names
def test_get_reference_grid_takes_grid_size():
    grid = np.asarray(layer_util.get_reference_grid(grid_size=[2, 3, 4]))
    expected = np.stack(np.meshgrid(np.arange(2), np.arange(3), np.arange(4), indexing="ij"), axis=-1)
    np.testing.assert_array_equal(grid, expected)


@pytest.mark.parametrize("zero_boundary, mode", [(True, "constant"), (False, "nearest")])
def test_resample_takes_vol_loc_and_zero_boundary(zero_boundary, mode):
    rng = np.random.default_rng(0)
    vol = rng.random((2, 5, 6, 7)).astype("float32")
    # interior points and points outside the volume on every side (but not exactly 0: see the module docstring)
    loc = rng.uniform(-1.5, 7.5, size=(2, 4, 4, 4, 3)).astype("float32")
    got = np.asarray(layer_util.resample(vol=vol, loc=loc, zero_boundary=zero_boundary))
    for b in range(2):
        coords = np.moveaxis(loc[b], -1, 0)
        if zero_boundary:
            # zero outside [0, d - 1] on any axis (no partial blending with the padding)
            inside = np.all([(coords[a] >= 0) & (coords[a] <= s - 1) for a, s in enumerate(vol.shape[1:])], axis=0)
            ref = np.where(inside, ndimage.map_coordinates(vol[b], coords, order=1, mode="nearest"), 0.0)
        else:
            ref = ndimage.map_coordinates(vol[b], coords, order=1, mode=mode)
        np.testing.assert_allclose(got[b], ref, atol=1e-5)


def test_warp_grid_applies_theta_to_homogeneous_points():
    rng = np.random.default_rng(1)
    grid = np.asarray(layer_util.get_reference_grid(grid_size=[3, 4, 5]))
    theta = rng.normal(size=(2, 4, 3)).astype("float32")
    got = np.asarray(layer_util.warp_grid(grid, theta))
    padded = np.concatenate([grid, np.ones(grid.shape[:-1] + (1,))], axis=-1)
    np.testing.assert_allclose(got, np.einsum("ijkq,bqp->bijkp", padded, theta), rtol=1e-5, atol=1e-5)


def test_resize3d_is_deepregs_two_fold_bilinear_resize():
    rng = np.random.default_rng(2)
    image = rng.random((2, 5, 7, 6, 3)).astype("float32")
    shape = (8, 4, 9)
    got = np.asarray(layer.Resize3d(shape=shape)(image))
    # DeepReg's recipe with tf.image.resize (half-pixel bilinear): dims 2-3 per slice of dim 1, then dims 1-2
    x = tf.reshape(image, (-1, 7, 6, 3))
    x = tf.image.resize(x, shape[1:], method="bilinear")
    x = tf.reshape(x, (2, 5, shape[1], shape[2] * 3))
    x = tf.image.resize(x, shape[:2], method="bilinear")
    ref = tf.reshape(x, (2, *shape, 3)).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)
    with pytest.raises(ValueError, match="method 'nearest' is not supported"):
        layer.Resize3d(shape=shape, method="nearest")


# ---------------------------------------------------------------------- warp and config.parser
def test_warp_takes_deepregs_arguments(shared_data, tmp_path):
    import nibabel as nib

    from tfreg.compat.deepreg.warp import warp

    unit = shared_data / "deepreg_test" / "nifti" / "unit_test"
    written = warp(
        image_path=str(unit / "moving_image.nii.gz"), ddf_path=str(unit / "ddf.nii.gz"), out_path=str(tmp_path)
    )
    assert written == str(tmp_path / "warped.nii.gz")  # a folder gets DeepReg's file name
    image = np.asarray(nib.load(unit / "moving_image.nii.gz").dataobj, dtype="float64")
    ddf = np.asarray(nib.load(unit / "ddf.nii.gz").dataobj, dtype="float64").reshape(image.shape + (3,))
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in image.shape], indexing="ij"), axis=0)
    coords = grid + np.moveaxis(ddf, -1, 0)
    inside = np.all([(coords[a] >= 0) & (coords[a] <= n - 1) for a, n in enumerate(image.shape)], axis=0)
    ref = np.where(inside, ndimage.map_coordinates(image, coords, order=1, mode="nearest"), 0.0)
    got = np.asarray(nib.load(written).dataobj, dtype="float64")
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(image).max())


def test_config_parser_loads_checks_and_saves(tmp_path):
    import yaml

    from tfreg.compat.deepreg.config.parser import config_sanity_check, load_configs, save

    config = paired_config(tmp_path, epochs=1)
    for split in ("train", "valid", "test"):
        config["dataset"][split]["dir"] = str(tmp_path)
    del config["train"]["loss"]["image"]["weight"]  # DeepReg's default weight is filled in
    path = write_config(config, tmp_path / "in.yaml")
    checked = config_sanity_check(load_configs(path))
    assert checked["train"]["loss"]["image"]["weight"] == 1.0
    written = save(config=checked, out_dir=str(tmp_path / "out"))
    assert written == str(tmp_path / "out" / "config.yaml")
    assert yaml.safe_load(open(written)) == checked


# ---------------------------------------------------------------------- DeepReg-shaped custom components, in process
@pytest.fixture
def registry():
    """A copy of the registry with the three components, registered through the compat names' decorators."""
    reg = REGISTRY.copy()
    reg.register_backbone(name="two_conv")(TwoConvBackbone)
    reg.register_loss(name="rms")(RootMeanSquare)
    reg.register_loss(name="lp")(LpDistance)
    return reg


def test_custom_components_are_wired_as_deepreg_did(registry):
    config = {
        "backbone": {"name": "two_conv", "num_channel_initial": 3},
        "loss": {
            "image": {"name": "rms", "weight": 0.5},
            "label": [{"name": "lp", "p": 1, "weight": 0.25}, {"name": "lp", "p": 2, "weight": 2.0}],
        },
    }
    model = registry.get(MODEL_CLASS, "ddf")(
        moving_image_size=(8, 8, 8),
        fixed_image_size=(6, 6, 6),
        index_size=2,
        labeled=True,
        batch_size=2,
        config=config,
        registry=registry,
    )
    assert isinstance(model.backbone, TwoConvBackbone) and model.backbone.image_size == (6, 6, 6)
    assert model.backbone.head.filters == 3  # out_channels injected by the ddf method: ndim
    rng = np.random.default_rng(3)
    inputs = {
        "moving_image": rng.random((2, 8, 8, 8)).astype("float32"),
        "fixed_image": rng.random((2, 6, 6, 6)).astype("float32"),
        "moving_label": (rng.random((2, 8, 8, 8)) > 0.5).astype("float32"),
        "fixed_label": (rng.random((2, 6, 6, 6)) > 0.5).astype("float32"),
        "indices": np.zeros((2, 2), "float32"),
    }
    outputs = model(inputs)
    total = float(model.loss_total(inputs, outputs))

    # DeepReg's wiring, computed here with NumPy: image losses on (fixed_image, pred_fixed_image), label losses
    # on (fixed_label, pred_fixed_label), one value per sample, the batch mean times the weight, summed
    def per_sample(t, p, f):
        return np.array([f((t[b] - p[b]).ravel()) for b in range(len(t))])

    image = (inputs["fixed_image"], np.asarray(outputs["pred_fixed_image"]))
    label = (inputs["fixed_label"], np.asarray(outputs["pred_fixed_label"]))
    rms = per_sample(*image, lambda d: np.sqrt(np.mean(d**2))).mean()
    l1 = per_sample(*label, lambda d: np.abs(d).sum()).mean()
    l2 = per_sample(*label, lambda d: np.sqrt((d**2).sum())).mean()
    np.testing.assert_allclose(total, 0.5 * rms + 0.25 * l1 + 2.0 * l2, rtol=1e-5)
    names = [wl.log_name for wl in model.weighted_losses]
    assert names == ["loss/image_RootMeanSquare", "loss/label_LpDistance", "loss/label_LpDistance_2"]


def test_a_parameterised_loss_refuses_a_bad_parameter_before_training(registry):
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        registry.build_loss({"name": "lp", "p": 3})
    with pytest.raises(ValueError, match="unexpected key"):
        registry.build_loss({"name": "lp", "p": 1, "q": 2})


# ---------------------------------------------------------------------- DeepReg's classical demo shape
def test_classical_demo_shape_optimises_a_ddf_with_warping_and_registry_losses():
    """A DDF variable optimised as DeepReg's classical demos do: a ``tf.function`` step with
    ``layer.Warping(fixed_image_size)(inputs=[ddf, image])``, ``REGISTRY.build_loss(config)(y_true=, y_pred=)``
    and a regulariser called as ``loss(inputs=ddf)``. The moving image is the fixed one shifted by one voxel
    along axis 0; the optimum samples the moving image one voxel further along that axis: a DDF of (1, 0, 0)
    inside the object."""
    size = (12, 12, 12)
    centre = (size[0] - 1) / 2
    i, j, k = np.meshgrid(*[np.arange(s, dtype="float32") for s in size], indexing="ij")
    blob = lambda c: np.exp(-((i - c) ** 2 + (j - centre) ** 2 + (k - centre) ** 2) / (2 * 2.0**2))  # noqa: E731
    fixed = tf.constant(blob(centre)[None])
    moving = tf.constant(blob(centre + 1)[None])  # moving(x + 1) = fixed(x)
    image_loss = REGISTRY.build_loss(config={"name": "ssd"})
    deform_loss = REGISTRY.build_loss(config={"name": "bending"})
    warping = layer.Warping(fixed_image_size=fixed.shape[1:4])
    ddf = tf.Variable(tf.zeros(fixed.shape + (3,)), trainable=True)
    optimizer = tf.keras.optimizers.Adam(0.1)

    @tf.function
    def train_step(warper, weights, opt, mov, fix):
        with tf.GradientTape() as tape:
            pred = warper(inputs=[weights, mov])
            loss = image_loss(y_true=fix, y_pred=pred) + 0.1 * deform_loss(inputs=weights)
        opt.apply_gradients(zip(tape.gradient(loss, [weights]), [weights]))
        return loss

    before = float(image_loss(y_true=fixed, y_pred=warping(inputs=[ddf, moving])))
    for _ in range(60):
        train_step(warping, ddf, optimizer, moving, fixed)
    after = float(image_loss(y_true=fixed, y_pred=warping(inputs=[ddf, moving])))
    assert after < 0.05 * before
    shift = ddf.numpy()[0][blob(centre) > 0.5]
    np.testing.assert_allclose(shift.mean(axis=0), [1.0, 0.0, 0.0], atol=0.1)


# ---------------------------------------------------------------------- a DeepReg example script, imports changed
SCRIPT = '''
"""Our custom components in the shape of DeepReg's examples/, with tfreg.compat.deepreg imports."""
import json
import sys

import tensorflow as tf

from tfreg.compat.deepreg.registry import REGISTRY
from tfreg.compat.deepreg.train import train


@REGISTRY.register_backbone(name="two_conv")
class TwoConvBackbone(tf.keras.Model):
    def __init__(self, image_size, out_channels, num_channel_initial, out_kernel_initializer, out_activation, **kwargs):
        super().__init__(**kwargs)
        self.hidden = tf.keras.layers.Conv3D(num_channel_initial, 3, padding="same", activation="relu")
        self.head = tf.keras.layers.Conv3D(
            out_channels, 1, padding="same", kernel_initializer=out_kernel_initializer, activation=out_activation
        )

    def call(self, inputs, training=None, mask=None):
        return self.head(self.hidden(inputs))


@REGISTRY.register_loss(name="root_mean_square")
class RootMeanSquare(tf.keras.losses.Loss):
    def __init__(self, reduction=tf.keras.losses.Reduction.SUM, name="RootMeanSquare"):
        super().__init__(reduction=reduction, name=name)

    def call(self, y_true, y_pred):
        diff = tf.reshape(y_true - y_pred, (tf.shape(y_true)[0], -1))
        return tf.sqrt(tf.reduce_mean(diff * diff, axis=1))


@REGISTRY.register_loss(name="lp_distance")
class LpDistance(tf.keras.losses.Loss):
    def __init__(self, p, reduction=tf.keras.losses.Reduction.SUM, name="LpDistance"):
        super().__init__(reduction=reduction, name=name)
        self.p = p

    def call(self, y_true, y_pred):
        diff = tf.reshape(y_true - y_pred, (tf.shape(y_true)[0], -1))
        return tf.norm(diff, ord=self.p, axis=1)


model, log_dir = train(gpu="", config_path=sys.argv[1], gpu_allow_growth=True, ckpt_path="")
report = {
    "log_dir": log_dir,
    "backbone": type(model.backbone).__name__,
    "losses": [[wl.log_name, wl.weight, getattr(wl.loss, "p", None)] for wl in model.weighted_losses],
    "trackers": {t.name: float(t.result()) for t in model.trackers},
}
with open("report.json", "w") as f:
    json.dump(report, f)
'''


@pytest.mark.slow
def test_a_deepreg_example_script_trains_with_only_its_imports_changed(shared_data, tmp_path):
    config = paired_config(shared_data, epochs=1)
    config["train"]["backbone"] = {"name": "two_conv", "num_channel_initial": 4}
    config["train"]["loss"] = {
        "image": {"name": "root_mean_square", "weight": 0.1},
        "label": [{"name": "lp_distance", "p": 1, "weight": 0.01}, {"name": "dice", "weight": 1.0}],
        "regularization": {"name": "bending", "weight": 0.5},
    }
    config_path = write_config(config, tmp_path / "config_custom.yaml")
    (tmp_path / "custom_example.py").write_text(textwrap.dedent(SCRIPT))
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    # as DeepReg's examples run: a script, the registry filled at import, train() with DeepReg's keywords,
    # default log_dir ("logs") and a timestamped exp_name under the working folder
    result = subprocess.run(
        [sys.executable, "custom_example.py", config_path], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["backbone"] == "TwoConvBackbone"
    assert report["losses"] == [
        ["loss/image_RootMeanSquare", 0.1, None],
        ["loss/label_LpDistance", 0.01, 1],
        ["loss/label_DiceScoreLoss", 1.0, None],
        ["loss/regularization_BendingEnergy", 0.5, None],
    ]
    trackers = report["trackers"]
    assert all(np.isfinite(v) for v in trackers.values())
    # the weighted metric is the weight times the loss, as DeepReg logged them
    np.testing.assert_allclose(
        trackers["loss/label_LpDistance_weighted"], 0.01 * trackers["loss/label_LpDistance"], rtol=1e-5
    )
    run = os.path.join(tmp_path, report["log_dir"])
    assert os.path.dirname(report["log_dir"].rstrip("/")).endswith("logs")
    assert os.path.isfile(os.path.join(run, "config.yaml"))
    assert os.path.isfile(os.path.join(run, "save", "ckpt-1.index"))


# ---------------------------------------------------------------------- docs/migrating-from-deepreg.md
def _resolve(dotted):
    """The module or attribute ``dotted`` names, or None."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name, None)
            if obj is None:
                return None
        return obj
    return None


def test_the_migration_page_names_what_exists():
    import re

    text = (REPO_ROOT / "docs" / "migrating-from-deepreg.md").read_text()
    provided, missing = [], []
    section = ""
    for line in text.splitlines():
        if line.startswith("#"):
            section = line
        for token in re.findall(r"`((?:deepreg|tfreg)(?:\.[A-Za-z_]\w*)+)", line):
            if token.startswith("deepreg."):
                compat = "tfreg.compat." + token
                (missing if "Not provided" in section else provided).append(compat)
            else:
                provided.append(token)
    assert len(provided) > 40
    assert [t for t in provided if _resolve(t) is None] == []
    # what the page says the compat path lacks, it lacks
    assert [t for t in missing if _resolve(t) is not None] == []

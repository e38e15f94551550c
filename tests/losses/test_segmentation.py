"""focal, multi-class Dice/CE, contour(-ce) and embedding losses against NumPy references."""

import keras
import numpy as np
import pytest
from scipy.ndimage import laplace

from tests.autodiff import value_and_grads
from tfreg.losses.segmentation import (
    ContourCrossEntropy,
    ContourLoss,
    EmbeddingLoss,
    FocalLoss,
    MultiClassCrossEntropy,
    MultiClassDiceLoss,
    to_one_hot,
)
from tfreg.registry import REGISTRY

RNG = np.random.default_rng(5)
SPATIAL = [(8, 9), (6, 7, 8)]


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_one_hot(labels, c):
    return np.eye(c)[labels]


def per_sample_mean(x):
    return x.reshape(x.shape[0], -1).mean(1)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("spatial", SPATIAL)
def test_focal_binary(spatial):
    t = (RNG.uniform(size=(2,) + spatial + (1,)) > 0.5).astype(np.float32)
    p = RNG.uniform(0.01, 0.99, size=t.shape).astype(np.float32)
    pt = np.where(t == 1, p, 1 - p).astype(np.float64)
    for gamma, alpha in [(2.0, None), (0.0, None), (2.0, 0.25)]:
        at = 1.0 if alpha is None else np.where(t == 1, alpha, 1 - alpha)
        ref = per_sample_mean(-at * (1 - pt) ** gamma * np.log(pt))
        loss = FocalLoss(gamma=gamma, alpha=alpha, reduction=None, spatial_dims=len(spatial))
        np.testing.assert_allclose(np.asarray(loss(t, p)), ref, rtol=1e-5)
    # gamma = 0, no alpha: binary cross-entropy; from logits: same values on logit(p)
    logits = np.log(p / (1 - p))
    np.testing.assert_allclose(
        np.asarray(FocalLoss(from_logits=True, reduction=None, spatial_dims=len(spatial))(t, logits)),
        np.asarray(FocalLoss(reduction=None, spatial_dims=len(spatial))(t, p)),
        rtol=1e-4,
    )


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("spatial", SPATIAL)
def test_focal_multiclass_one_hot_and_labels(spatial):
    c = 3
    labels = RNG.integers(0, c, size=(2,) + spatial)
    p = softmax(RNG.normal(size=(2,) + spatial + (c,))).astype(np.float32)
    onehot = np_one_hot(labels, c).astype(np.float32)
    alpha = [0.2, 0.3, 0.5]
    pt = np.take_along_axis(p.astype(np.float64), labels[..., None], -1)[..., 0]
    at = np.asarray(alpha)[labels]
    ref = per_sample_mean(-at * (1 - pt) ** 2 * np.log(pt))
    loss = FocalLoss(alpha=alpha, multi_class=True, reduction=None)
    np.testing.assert_allclose(np.asarray(loss(onehot, p)), ref, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(loss(labels.astype(np.float32), p)), ref, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(loss(labels[..., None].astype(np.float32), p)), ref, rtol=1e-5)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("spatial", SPATIAL)
def test_multiclass_dice_and_ce(spatial):
    c = 4
    labels = RNG.integers(0, c, size=(2,) + spatial)
    p = softmax(RNG.normal(size=(2,) + spatial + (c,))).astype(np.float32)
    t = np_one_hot(labels, c)
    axes = tuple(range(1, len(spatial) + 1))
    dice = (2 * (t * p).sum(axes) + 1e-5) / (t.sum(axes) + p.sum(axes) + 1e-5)
    np.testing.assert_allclose(
        np.asarray(MultiClassDiceLoss(reduction=None)(labels.astype(np.float32), p)), -dice.mean(-1), rtol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(MultiClassDiceLoss(include_background=False, reduction=None)(t.astype(np.float32), p)),
        -dice[:, 1:].mean(-1),
        rtol=1e-5,
    )
    # a perfect one-hot prediction scores -1
    np.testing.assert_allclose(
        np.asarray(MultiClassDiceLoss(reduction=None)(t, t.astype(np.float32))), [-1, -1], rtol=1e-6
    )
    ce = per_sample_mean(-(t * np.log(p + 1e-5)).sum(-1))
    np.testing.assert_allclose(np.asarray(MultiClassCrossEntropy(reduction=None)(t, p)), ce, rtol=1e-5)
    w = [1.0, 2.0, 0.5, 0.0]
    ce_w = per_sample_mean(-(t * np.log(p + 1e-5) * np.asarray(w)).sum(-1))
    np.testing.assert_allclose(
        np.asarray(MultiClassCrossEntropy(class_weights=w, reduction=None)(labels.astype(np.float32), p)),
        ce_w,
        rtol=1e-5,
    )
    logits = RNG.normal(size=p.shape).astype(np.float32)
    lsm = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(
        np.asarray(MultiClassCrossEntropy(from_logits=True, reduction=None)(t, logits)),
        per_sample_mean(-(t * lsm).sum(-1)),
        rtol=1e-5,
    )


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("spatial", SPATIAL)
def test_contour_against_scipy_laplace(spatial):
    t = np.zeros((2,) + spatial + (1,), np.float32)
    t[(slice(None),) + tuple(slice(2, 5) for _ in spatial)] = 1
    p = RNG.uniform(size=t.shape).astype(np.float32)
    # scipy's laplace with mode="nearest" is the cross stencil with replicate boundary.
    lap = lambda x: np.stack([laplace(x[b, ..., 0].astype(np.float64), mode="nearest") for b in range(2)])
    ref = np.sqrt(((lap(p) - lap(t)) ** 2).reshape(2, -1).sum(1))
    loss = ContourLoss(reduction=None, spatial_dims=len(spatial))
    np.testing.assert_allclose(np.asarray(loss(t, p)), ref, rtol=1e-5)
    np.testing.assert_allclose(
        np.asarray(ContourLoss(normalize=True, reduction=None, spatial_dims=len(spatial))(t, p)),
        ref / np.sqrt(t[0].size),
        rtol=1e-5,
    )
    # identical masks: 0 with finite gradients
    value, (g,) = value_and_grads(lambda x: ContourLoss(reduction=None, spatial_dims=len(spatial))(t, x), t)
    assert float(value) < 1e-5 and np.all(np.isfinite(g))
    # CE + 1.75 ct (binary)
    ce = per_sample_mean(-(t * np.log(p + 1e-5) + (1 - t) * np.log(1 - p + 1e-5)))
    np.testing.assert_allclose(
        np.asarray(ContourCrossEntropy(reduction=None, spatial_dims=len(spatial))(t, p)), ce + 1.75 * ref, rtol=1e-5
    )


@pytest.mark.backend_agnostic
def test_contour_ce_multiclass():
    c = 3
    labels = RNG.integers(0, c, size=(2, 8, 8))
    p = softmax(RNG.normal(size=(2, 8, 8, c))).astype(np.float32)
    t = np_one_hot(labels, c)
    lap = lambda x: np.stack([[laplace(x[b, ..., k], mode="nearest") for k in range(c)] for b in range(2)])
    ct = np.sqrt(((lap(p.astype(np.float64)) - lap(t)) ** 2).reshape(2, -1).sum(1))
    ce = per_sample_mean(-(t * np.log(p + 1e-5)).sum(-1))
    loss = ContourCrossEntropy(weight=2.0, multi_class=True, reduction=None)
    np.testing.assert_allclose(np.asarray(loss(labels.astype(np.float32), p)), ce + 2.0 * ct, rtol=1e-5)
    # from a config: an entry's weight is its weight in the total, lambda is contour_weight
    built = REGISTRY.build_loss({"name": "contour-ce", "multi_class": True, "contour_weight": 2.0, "reduction": None})
    assert built.weight == 2.0 and built.get_config()["weight"] == 2.0
    np.testing.assert_allclose(np.asarray(built(labels.astype(np.float32), p)), ce + 2.0 * ct, rtol=1e-5)
    with pytest.raises(ValueError, match="contour_weight"):
        ContourCrossEntropy(contour_weight=-1.0)


def _encoder(ndim, channels=1):
    conv = keras.layers.Conv2D if ndim == 2 else keras.layers.Conv3D
    pool = keras.layers.GlobalAveragePooling2D if ndim == 2 else keras.layers.GlobalAveragePooling3D
    inputs = keras.Input((8,) * ndim + (channels,))
    x = conv(4, 3, padding="same", activation="tanh")(inputs)
    return keras.Model(inputs, keras.layers.Dense(5)(pool()(x)))


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("ndim", [2, 3])
def test_embedding_with_model(ndim):
    enc = _encoder(ndim)
    a = RNG.uniform(size=(2,) + (8,) * ndim + (1,)).astype(np.float32)
    b = RNG.uniform(size=a.shape).astype(np.float32)
    fa, fb = np.asarray(enc(a)), np.asarray(enc(b))
    loss = EmbeddingLoss(enc, reduction=None, spatial_dims=ndim)
    assert not enc.trainable
    np.testing.assert_allclose(np.asarray(loss(a, b)), ((fb - fa) ** 2).sum(1), rtol=1e-5)
    np.testing.assert_allclose(
        np.asarray(EmbeddingLoss(enc, normalize=True, reduction=None, spatial_dims=ndim)(a, b)),
        ((fb - fa) ** 2).mean(1),
        rtol=1e-5,
    )
    # gradients reach the prediction, through the frozen encoder
    _, (g,) = value_and_grads(lambda x: loss(a, x), b)
    assert np.all(np.isfinite(g)) and np.abs(g).sum() > 0


def test_embedding_from_path(tmp_path):
    enc = _encoder(2)
    path = tmp_path / "enc.keras"
    enc.save(path)
    a = RNG.uniform(size=(1, 8, 8)).astype(np.float32)  # no channel axis: one is added
    b = RNG.uniform(size=(1, 8, 8)).astype(np.float32)
    ref = ((np.asarray(enc(b[..., None])) - np.asarray(enc(a[..., None]))) ** 2).sum(1)
    loss = REGISTRY.build_loss({"name": "embedding", "encoder": str(path), "reduction": None})
    np.testing.assert_allclose(np.asarray(loss(a, b)), ref, rtol=1e-5)
    assert loss.get_config()["encoder"] == str(path)
    with pytest.raises(ValueError, match="encoder"):
        EmbeddingLoss(str(tmp_path / "missing.keras"))


@pytest.mark.parametrize("ndim", [2, 3])
def test_embedding_check_input_shape(tmp_path, ndim):
    enc = _encoder(ndim, channels=2)
    path = tmp_path / "enc.keras"
    enc.save(path)
    loss = EmbeddingLoss(str(path))
    loss.check_input_shape((8,) * ndim + (2,), ndim=ndim)  # fits: nothing raised
    spatial = ", ".join(["8"] * ndim)
    with pytest.raises(
        ValueError, match=rf"{path}.*expects label maps of shape \(batch, {spatial}, 2\).*channel count"
    ):
        loss.check_input_shape((8,) * ndim, ndim=ndim)  # one label channel, the encoder wants 2
    with pytest.raises(ValueError, match=r"\(batch, " + ", ".join(["16"] * ndim) + r", 1\).*spatial shape"):
        loss.check_input_shape((16,) * ndim, ndim=ndim)
    # without ndim the rank is read as the loss reads its inputs (2-D without channels is rank 3)
    if ndim == 2:
        with pytest.raises(ValueError, match="spatial shape"):
            EmbeddingLoss(enc).check_input_shape((4, 8))
    # an encoder without a declared input (a bare layer) is not checked
    EmbeddingLoss(keras.layers.Dense(3)).check_input_shape((5, 5))


def test_registered_and_validation():
    for name, cls in [
        ("focal", FocalLoss),
        ("multiclass-dice", MultiClassDiceLoss),
        ("multiclass-cross-entropy", MultiClassCrossEntropy),
        ("contour", ContourLoss),
        ("contour-ce", ContourCrossEntropy),
        ("embedding", EmbeddingLoss),
    ]:
        assert REGISTRY.get("loss_class", name) is cls
    for cls, kwargs, word in [
        (FocalLoss, {"gamma": -1}, "gamma"),
        (FocalLoss, {"alpha": 2.0}, "alpha"),
        (FocalLoss, {"alpha": [0.5, 0.5]}, "alpha"),
        (FocalLoss, {"eps": 0.0}, "eps"),
        (ContourLoss, {"stencil": "star"}, "stencil"),
        (ContourLoss, {"boundary": "wrap"}, "boundary"),
        (ContourCrossEntropy, {"weight": -1}, "weight"),
        (MultiClassDiceLoss, {"include_background": 0}, "include_background"),
        (MultiClassCrossEntropy, {"class_weights": []}, "class_weights"),
        (EmbeddingLoss, {"encoder": 3}, "encoder"),
    ]:
        with pytest.raises(ValueError, match=word):
            cls(**kwargs)
    with pytest.raises(ValueError, match="y_true"):
        to_one_hot(np.zeros((1, 8, 7)), np.zeros((1, 8, 8, 3)))
    cfg = FocalLoss(gamma=1.0, alpha=0.25).get_config()
    assert FocalLoss.from_config(cfg).alpha == 0.25

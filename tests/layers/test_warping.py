"""tfreg.layers.warping: the layers inside functional models equal the ops, and their configs round-trip."""

import keras
import numpy as np
import pytest
from keras import ops

from tfreg.layers.warping import IntDVF, Resize, Warping
from tfreg.ops.integrate import integrate_dvf
from tfreg.ops.resize import resize
from tfreg.ops.warp import warp

pytestmark = pytest.mark.backend_agnostic

RNG = np.random.default_rng(17)


def np_(x):
    return ops.convert_to_numpy(x)


@pytest.mark.parametrize("interpolation, boundary", [("linear", "zero"), ("nearest", "replicate")])
def test_warping_in_functional_model(interpolation, boundary):
    ddf_in = keras.Input(shape=(8, 8, 8, 3))
    image_in = keras.Input(shape=(10, 9, 8, 2))  # the moving image keeps its own shape
    out = Warping(fixed_image_size=(8, 8, 8), interpolation=interpolation, boundary=boundary)([ddf_in, image_in])
    model = keras.Model([ddf_in, image_in], out)
    assert tuple(out.shape) == (None, 8, 8, 8, 2)
    ddf = (RNG.standard_normal((2, 8, 8, 8, 3)) * 1.5).astype(np.float32)
    image = RNG.random((2, 10, 9, 8, 2)).astype(np.float32)
    expected = np_(warp(image, ddf, interpolation=interpolation, boundary=boundary))
    np.testing.assert_allclose(np_(model([ddf, image])), expected, atol=1e-6)
    np.testing.assert_allclose(model.predict([ddf, image], verbose=0), expected, atol=1e-6)


def test_warping_without_channel_axis_2d():
    ddf_in = keras.Input(shape=(6, 7, 2))
    image_in = keras.Input(shape=(6, 7))
    model = keras.Model([ddf_in, image_in], Warping()([ddf_in, image_in]))
    ddf = RNG.standard_normal((1, 6, 7, 2)).astype(np.float32)
    image = RNG.random((1, 6, 7)).astype(np.float32)
    np.testing.assert_allclose(np_(model([ddf, image])), np_(warp(image, ddf)), atol=1e-6)


def test_int_dvf_in_functional_model():
    dvf_in = keras.Input(shape=(8, 9, 10, 3))
    model = keras.Model(dvf_in, IntDVF(fixed_image_size=(8, 9, 10), num_steps=5)(dvf_in))
    dvf = (RNG.standard_normal((2, 8, 9, 10, 3)) * 2).astype(np.float32)
    np.testing.assert_allclose(np_(model(dvf)), np_(integrate_dvf(dvf, num_steps=5)), atol=1e-6)


def test_resize_in_functional_model():
    x_in = keras.Input(shape=(8, 9, 10, 1))
    out = Resize((12, 6, 10))(x_in)
    assert tuple(out.shape) == (None, 12, 6, 10, 1)
    model = keras.Model(x_in, out)
    x = RNG.random((2, 8, 9, 10, 1)).astype(np.float32)
    np.testing.assert_allclose(np_(model(x)), np_(resize(x, (12, 6, 10))), atol=1e-6)


@pytest.mark.parametrize(
    "layer",
    [
        Warping(fixed_image_size=(8, 8, 8), interpolation="nearest", boundary="replicate", name="w"),
        Warping(),
        IntDVF(fixed_image_size=[4, 5], num_steps=3, boundary="replicate", name="i"),
        Resize((3, 4, 5), name="r"),
    ],
)
def test_config_round_trip(layer):
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config
    # serialisable as plain Python (YAML/JSON) values
    import json

    assert json.loads(json.dumps(config)) == config


def test_serialize_keras_object_round_trip():
    layer = Warping(fixed_image_size=(4, 4, 4), boundary="replicate")
    data = keras.saving.serialize_keras_object(layer)
    clone = keras.saving.deserialize_keras_object(data, custom_objects={"Warping": Warping})
    assert isinstance(clone, Warping) and clone.boundary == "replicate" and clone.fixed_image_size == (4, 4, 4)


def test_bad_arguments():
    with pytest.raises(ValueError, match="interpolation"):
        Warping(interpolation="cubic")
    with pytest.raises(ValueError, match="boundary"):
        Warping(boundary="wrap")
    with pytest.raises(ValueError, match="fixed_image_size"):
        Warping(fixed_image_size=(4, 0, 4))
    with pytest.raises(ValueError, match="num_steps"):
        IntDVF(num_steps=-1)
    with pytest.raises(ValueError, match="shape"):
        Resize((4, 4.5))
    layer = Warping(fixed_image_size=(8, 8, 8))
    with pytest.raises(ValueError, match="fixed_image_size"):
        layer([np.zeros((1, 6, 8, 8, 3), np.float32), np.zeros((1, 8, 8, 8, 1), np.float32)])
    with pytest.raises(ValueError, match=r"\[ddf, image\]"):
        Warping()(np.zeros((1, 8, 8, 8, 3), np.float32))

"""Tests of tfreg.data.augmentation (random affine / DDF augmentation of training batches)."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
scipy_ndimage = pytest.importorskip("scipy.ndimage")

import tfreg.data.augmentation as aug  # noqa: E402
from tests.data.helpers import write_unpaired  # noqa: E402
from tfreg.data.file_loaders import NiftiFileLoader  # noqa: E402
from tfreg.data.loaders import UnpairedDataLoader  # noqa: E402
from tfreg.registry import REGISTRY  # noqa: E402

SIZE3 = (8, 9, 10)
SIZE2 = (16, 12)


def batch(moving_size, fixed_size, b=2, labeled=True, seed=0):
    rng = np.random.default_rng(seed)
    out = {
        "moving_image": rng.random((b, *moving_size), dtype=np.float32),
        "fixed_image": rng.random((b, *fixed_size), dtype=np.float32),
        "indices": np.arange(3 * b, dtype=np.float32).reshape(b, 3),
    }
    if labeled:
        out["moving_label"] = (rng.random((b, *moving_size)) > 0.5).astype(np.float32)
        out["fixed_label"] = (rng.random((b, *fixed_size)) > 0.5).astype(np.float32)
    return {k: tf.constant(v) for k, v in out.items()}


def numpy_resample(image, coords):
    """Linear interpolation, 0 where any coordinate is outside [0, d - 1] (tfreg's zero boundary)."""
    ndim = coords.shape[-1]
    values = scipy_ndimage.map_coordinates(image, np.moveaxis(coords, -1, 0), order=1, mode="nearest")
    inside = np.all((coords >= 0) & (coords <= np.array(image.shape[:ndim]) - 1), axis=-1)
    return np.where(inside, values, 0.0)


def test_registered():
    assert REGISTRY.get("da_class", "affine") is aug.RandomAffineTransform
    assert REGISTRY.get("da_class", "ddf") is aug.RandomDDFTransform
    da = REGISTRY.build_data_augmentation(
        config={"name": "ddf", "field_strength": 2, "low_res_size": [2, 2, 2]},
        default_args={"moving_image_size": SIZE3, "fixed_image_size": SIZE3, "batch_size": 2},
    )
    assert isinstance(da, aug.RandomDDFTransform) and da.field_strength == 2 and da.low_res_size == (2, 2, 2)


def test_corners():
    np.testing.assert_array_equal(aug.corners(3), [[-1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, -1, -1]])
    np.testing.assert_array_equal(aug.corners(2), [[-1, -1], [-1, 1], [1, -1]])


@pytest.mark.parametrize("ndim", [2, 3])
def test_fit_affine_matches_numpy_lstsq(ndim):
    rng = np.random.default_rng(ndim)
    factors = rng.uniform(0.8, 1.0, (3, ndim + 1, ndim))
    old = np.concatenate([aug.corners(ndim), np.ones((ndim + 1, 1))], axis=1)
    expected = np.stack([np.linalg.lstsq(old, aug.corners(ndim) * f, rcond=None)[0] for f in factors])
    np.testing.assert_allclose(aug.fit_affine(factors).numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(
        aug.fit_affine(np.ones((1, ndim + 1, ndim))).numpy()[0], np.eye(ndim + 1, ndim), atol=1e-6
    )


@pytest.mark.parametrize("size", [SIZE2, SIZE3])
def test_transform_with_theta_matches_scipy(size):
    ndim = len(size)
    rng = np.random.default_rng(1)
    image = rng.random((2, *size)).astype(np.float32)
    theta = np.eye(ndim + 1, ndim) + rng.uniform(-0.15, 0.15, (2, ndim + 1, ndim))
    theta[:, ndim] = rng.uniform(-1.5, 1.5, (2, ndim))
    got = aug.transform_with_theta(tf.constant(image), tf.constant(theta, tf.float32)).numpy()
    grid = np.stack(np.meshgrid(*[np.arange(d) for d in size], indexing="ij"), -1).astype(np.float64)
    for b in range(2):
        coords = np.concatenate([grid, np.ones(size + (1,))], -1) @ theta[b].astype(np.float32)
        np.testing.assert_allclose(got[b], numpy_resample(image[b], coords), atol=1e-5)


def test_transform_with_ddf_matches_scipy():
    rng = np.random.default_rng(2)
    image = rng.random((1, *SIZE3)).astype(np.float32)
    ddf = rng.normal(0, 1.5, (1, *SIZE3, 3)).astype(np.float32)
    got = aug.transform_with_ddf(tf.constant(image), tf.constant(ddf)).numpy()
    grid = np.stack(np.meshgrid(*[np.arange(d) for d in SIZE3], indexing="ij"), -1)
    np.testing.assert_allclose(got[0], numpy_resample(image[0], grid + ddf[0]), atol=1e-5)


@pytest.mark.parametrize("name,kwargs", [("affine", {"scale": 0.0}), ("ddf", {"field_strength": 0.0})])
@pytest.mark.parametrize("moving,fixed", [(SIZE3, (8, 8, 8)), (SIZE2, (10, 16))])
def test_zero_strength_is_identity(name, kwargs, moving, fixed):
    da = REGISTRY.build_data_augmentation(
        config={"name": name, **kwargs, "seed": 0},
        default_args={"moving_image_size": moving, "fixed_image_size": fixed, "batch_size": 2},
    )
    inputs = batch(moving, fixed)
    out = da(inputs)
    assert set(out) == set(inputs)
    for key in inputs:
        np.testing.assert_allclose(out[key].numpy(), inputs[key].numpy(), atol=1e-6, err_msg=key)


@pytest.mark.parametrize(
    "cls,kwargs", [(aug.RandomAffineTransform, {"scale": 0.3}), (aug.RandomDDFTransform, {"low_res_size": (2, 2, 2)})]
)
def test_shapes_labels_and_independence(cls, kwargs):
    moving = SIZE3
    inputs = batch(moving, moving)  # same content in shape-compatible moving and fixed
    inputs["fixed_image"], inputs["fixed_label"] = inputs["moving_image"], inputs["moving_label"]
    da = cls(moving, moving, 2, seed=3, **kwargs)
    out = da(inputs)
    for key in inputs:
        assert out[key].shape == inputs[key].shape and out[key].dtype == tf.float32
    np.testing.assert_array_equal(out["indices"].numpy(), inputs["indices"].numpy())
    for key in ("moving_label", "fixed_label"):
        assert out[key].numpy().min() >= 0.0 and out[key].numpy().max() <= 1.0 + 1e-6
    # moving and fixed got different transforms, and so did the two samples of the batch
    assert not np.allclose(out["moving_image"].numpy(), out["fixed_image"].numpy())
    assert not np.allclose(out["moving_image"].numpy()[0], out["moving_image"].numpy()[1])
    # a label gets its own image's transform: an image equal to its label is transformed the same way
    same = dict(inputs, moving_image=inputs["moving_label"], fixed_image=inputs["fixed_label"])
    seed = tf.constant([5, 6], tf.int64)
    res = da.transform_with_seed(same, seed)
    np.testing.assert_allclose(res["moving_image"].numpy(), res["moving_label"].numpy(), atol=1e-6)
    np.testing.assert_allclose(res["fixed_image"].numpy(), res["fixed_label"].numpy(), atol=1e-6)


def test_affine_applies_the_fitted_theta():
    da = aug.RandomAffineTransform(SIZE2, SIZE2, 2, scale=0.2)
    inputs = batch(SIZE2, SIZE2, labeled=False)
    seed = tf.constant([1, 2], tf.int64)
    out = da.transform_with_seed(inputs, seed)
    moving_seed, fixed_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    for key, s in (("moving_image", moving_seed), ("fixed_image", fixed_seed)):
        theta = da.sample_params(s, 2, SIZE2)
        factors = tf.random.stateless_uniform((2, 3, 2), s, minval=0.8, maxval=1.0).numpy()
        assert np.all((factors >= 0.8) & (factors <= 1.0))
        np.testing.assert_allclose(theta.numpy(), aug.fit_affine(factors).numpy(), atol=1e-6)
        np.testing.assert_allclose(out[key].numpy(), aug.transform_with_theta(inputs[key], theta).numpy(), atol=1e-6)


def test_ddf_params():
    da = aug.RandomDDFTransform(SIZE3, SIZE3, 3, field_strength=2.0, seed=0)
    ddf = da.sample_params(tf.constant([3, 4], tf.int64), 3, SIZE3).numpy()
    assert ddf.shape == (3, *SIZE3, 3)
    # default low_res_size (1, 1, 1): one translation per sample and axis
    np.testing.assert_allclose(ddf, np.broadcast_to(ddf[:, :1, :1, :1], ddf.shape), atol=1e-6)
    assert np.abs(ddf).max() > 0
    assert aug.RandomDDFTransform(SIZE2, SIZE2, 1).low_res_size == (1, 1)
    field = aug.RandomDDFTransform(SIZE2, SIZE2, 1, low_res_size=(2, 3)).sample_params(tf.constant([0, 1]), 1, SIZE2)
    assert field.shape == (1, *SIZE2, 2)


@pytest.mark.parametrize("cls", [aug.RandomAffineTransform, aug.RandomDDFTransform])
def test_fresh_per_batch_and_seeded_in_tf_data(cls):
    inputs = batch(SIZE3, SIZE3, labeled=True)

    def run(seed, parallel=1):
        da = cls(SIZE3, SIZE3, 2, seed=seed)
        dataset = tf.data.Dataset.from_tensors(inputs).repeat(3).map(da, num_parallel_calls=parallel)
        return [b["moving_image"].numpy() for b in dataset]

    first = run(7)
    assert not np.allclose(first[0], first[1]) and not np.allclose(first[1], first[2])
    again = run(7)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    other = run(8)
    assert not np.allclose(first[0], other[0])
    # with parallel calls the same set of transforms is used (in some order)
    parallel = run(7, parallel=3)
    for a in parallel:
        assert any(np.array_equal(a, b) for b in first)


def test_eager_calls_differ_and_seed_reproduces():
    inputs = batch(SIZE2, SIZE2)
    da1, da2 = aug.RandomAffineTransform(SIZE2, SIZE2, 2, seed=1), aug.RandomAffineTransform(SIZE2, SIZE2, 2, seed=1)
    a, b = da1(inputs), da1(inputs)
    assert not np.allclose(a["fixed_image"].numpy(), b["fixed_image"].numpy())
    np.testing.assert_array_equal(a["fixed_label"].numpy(), da2(inputs)["fixed_label"].numpy())
    graph = tf.function(da2)  # graph mode continues the same sequence (graph optimisations may round differently)
    np.testing.assert_allclose(b["moving_label"].numpy(), graph(inputs)["moving_label"].numpy(), atol=1e-5)


def test_unlabeled_and_channel_axis():
    da = aug.RandomDDFTransform(SIZE2, SIZE2, 2, seed=0)
    inputs = batch(SIZE2, SIZE2, labeled=False)
    inputs = dict(inputs, moving_image=inputs["moving_image"][..., None])
    out = da(inputs)
    assert set(out) == {"moving_image", "fixed_image", "indices"} and out["moving_image"].shape == (2, *SIZE2, 1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="moving_image_size"):
        aug.RandomAffineTransform((8, 8, 8, 8), SIZE3, 2)
    with pytest.raises(ValueError, match="same number of dimensions"):
        aug.RandomAffineTransform(SIZE2, SIZE3, 2)
    with pytest.raises(ValueError, match="scale"):
        aug.RandomAffineTransform(SIZE3, SIZE3, 2, scale=1.5)
    with pytest.raises(ValueError, match="low_res_size"):
        aug.RandomDDFTransform(SIZE2, SIZE2, 2, low_res_size=(1, 1, 1))
    with pytest.raises(ValueError, match="batch_size"):
        aug.RandomDDFTransform(SIZE2, SIZE2, 0)
    with pytest.raises(ValueError, match="fixed_image has shape"):
        aug.RandomAffineTransform(SIZE3, SIZE3, 2)(batch(SIZE3, (8, 8, 8)))


def test_pipeline_with_affine(tmp_path):
    write_unpaired(str(tmp_path), [f"i{k}" for k in range(4)], shape=(6, 7, 8), num_labels=1)
    loader = UnpairedDataLoader(NiftiFileLoader, [str(tmp_path)], True, "all", 0, (8, 8, 8))
    dataset = loader.get_dataset_and_preprocess(
        training=True, batch_size=2, repeat=True, shuffle_buffer_num_batch=0, data_augmentation={"name": "affine"}
    )
    plain = loader.get_dataset_and_preprocess(training=True, batch_size=2, repeat=True, shuffle_buffer_num_batch=0)
    got, ref = list(dataset.take(4)), list(plain.take(4))
    for g, r in zip(got, ref):
        assert g["moving_image"].shape == (2, 8, 8, 8) and set(g) == set(r)
        np.testing.assert_array_equal(g["indices"].numpy(), r["indices"].numpy())
        assert not np.allclose(g["moving_image"].numpy(), r["moving_image"].numpy())
        assert 0.0 <= g["fixed_label"].numpy().min() and g["fixed_label"].numpy().max() <= 1.0 + 1e-6
    # the same data in two epochs (batches 0 and 2: 2 samples per epoch) gets different transforms
    np.testing.assert_array_equal(ref[0]["moving_image"].numpy(), ref[2]["moving_image"].numpy())
    assert not np.allclose(got[0]["moving_image"].numpy(), got[2]["moving_image"].numpy())


def test_benchmark_import_hook():
    import importlib

    assert importlib.import_module("tfreg.data.augmentation").RandomAffineTransform is aug.RandomAffineTransform
    assert REGISTRY.contains("da_class", "affine")


def _blob(shape, centre, sigma=1.5):
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"), axis=-1)
    return np.exp(-np.sum((grid - np.asarray(centre)) ** 2, axis=-1) / (2 * sigma**2)).astype(np.float32)


def _centroid(image):
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in image.shape], indexing="ij"), axis=-1)
    return np.tensordot(image, grid, axes=image.ndim) / image.sum()


@pytest.mark.parametrize("size", [(16, 16, 16), (24, 20)])
def test_affine_moves_landmarks_with_the_image(size):
    # each image is a Gaussian blob around its landmark: after augmentation the blob's centre of mass must
    # be where the augmentation put the landmark (an affine map moves a blob's centroid with it)
    ndim = len(size)
    moving_centres = [np.asarray(size) / 2 - 1.3, np.asarray(size) / 2 + 0.7]
    fixed_centres = [np.asarray(size) / 2 + 1.1, np.asarray(size) / 2 - 0.4]
    mask = np.array([[1, 0], [1, 0]], np.float32)  # second row: padding
    inputs = {
        "moving_image": np.stack([_blob(size, c) for c in moving_centres]),
        "fixed_image": np.stack([_blob(size, c) for c in fixed_centres]),
        "moving_landmarks": np.stack([[c, np.zeros(ndim)] for c in moving_centres]).astype(np.float32),
        "fixed_landmarks": np.stack([[c, np.zeros(ndim)] for c in fixed_centres]).astype(np.float32),
        "landmark_mask": mask,
        "moving_roi": np.stack([_blob(size, c) > 0.5 for c in moving_centres]).astype(np.float32),
        "fixed_roi": np.stack([_blob(size, c) > 0.5 for c in fixed_centres]).astype(np.float32),
        "indices": np.zeros((2, 2), np.float32),
    }
    da = aug.RandomAffineTransform(size, size, batch_size=2, scale=0.2, seed=3)
    out = {k: v.numpy() for k, v in da({k: tf.constant(v) for k, v in inputs.items()}).items()}
    for prefix in ("moving", "fixed"):
        for b in range(2):
            moved = out[f"{prefix}_landmarks"][b]
            assert not np.allclose(moved[0], inputs[f"{prefix}_landmarks"][b][0], atol=0.05)  # it did move
            np.testing.assert_allclose(moved[0], _centroid(out[f"{prefix}_image"][b]), atol=0.1)
            np.testing.assert_array_equal(moved[1], 0)  # padding stays 0
            # the ROI map is resampled like the image: its centre of mass follows the landmark too
            np.testing.assert_allclose(moved[0], _centroid(out[f"{prefix}_roi"][b]), atol=0.25)
    np.testing.assert_array_equal(out["landmark_mask"], mask)


def test_ddf_augmentation_refuses_landmarks(tmp_path):
    from tests.data.test_landmarks import loader, write_case

    write_case(tmp_path)
    with loader(tmp_path) as data:
        with pytest.raises(ValueError, match=r"data_augmentation 'ddf' cannot move landmarks.*dataset.landmarks: true"):
            data.get_dataset_and_preprocess(True, 1, False, 1, data_augmentation={"name": "ddf"})
        dataset = data.get_dataset_and_preprocess(True, 1, False, 1, data_augmentation={"name": "affine", "seed": 0})
        element = next(iter(dataset))
        assert element["moving_landmarks"].shape == (1, 2, 3) and element["landmark_mask"].shape == (1, 2)
    with pytest.raises(NotImplementedError, match="cannot move landmarks"):
        aug.RandomDDFTransform((4, 4), (4, 4), 1).transform_points(None, None)

"""tfreg.engine.warp: tfreg_warp's output-path rule and warp_file against SciPy's map_coordinates.

Inputs are written and outputs read back with SimpleITK directly; the reference warp is
``scipy.ndimage.map_coordinates(image, p + ddf[p], order=1, mode="constant", cval=0)``.
"""

import os

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from tfreg.engine.warp import DEFAULT_OUT, output_path, warp_file


def write_nifti(path, array, spacing=None, origin=None, direction=None):
    """Write ``(i, j, k[, c])`` as a 3-D or 4-D scalar NIfTI (channels as the 4th axis, as nibabel does)."""
    array = np.asarray(array, dtype=np.float32)
    image = sitk.GetImageFromArray(np.transpose(array), isVector=False)
    dim = image.GetDimension()
    if spacing is not None:
        image.SetSpacing(list(spacing) + [1.0] * (dim - len(spacing)))
    if origin is not None:
        image.SetOrigin(list(origin) + [0.0] * (dim - len(origin)))
    if direction is not None:
        full = np.eye(dim)
        full[:3, :3] = direction
        image.SetDirection(full.ravel().tolist())
    sitk.WriteImage(image, str(path))
    return str(path)


def read_nifti(path):
    image = sitk.ReadImage(str(path))
    return np.transpose(sitk.GetArrayFromImage(image)).astype(np.float64), image


def reference_warp(image, ddf, order=1):
    """SciPy reference: output voxel p samples image at p + ddf[p], zero outside."""
    shape = ddf.shape[:-1]
    grid = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    coords = np.stack([g + ddf[..., a] for a, g in enumerate(grid)])
    return ndimage.map_coordinates(image.astype(np.float64), coords, order=order, mode="constant", cval=0.0)


def smooth_ddf(shape, amplitude, seed):
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(tuple(shape) + (3,))
    smooth = np.stack([ndimage.gaussian_filter(noise[..., a], sigma=2.0) for a in range(3)], axis=-1)
    return (smooth / np.abs(smooth).max() * amplitude).astype(np.float32)


def interior_mask(ddf, image_shape, margin=0.0):
    """Output voxels whose sample point lies inside [margin, n - 1 - margin] on every axis."""
    shape = ddf.shape[:-1]
    grid = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    mask = np.ones(shape, dtype=bool)
    for a, g in enumerate(grid):
        x = g + ddf[..., a]
        mask &= (x >= margin) & (x <= image_shape[a] - 1 - margin)
    return mask


# ---------------------------------------------------------------------------------------------- output_path
def test_output_path_rules():
    assert DEFAULT_OUT == "warped.nii.gz"
    assert output_path("out.nii.gz") == "out.nii.gz"
    assert output_path("out.nii") == "out.nii"
    assert output_path("results/sub/img.nii.gz") == "results/sub/img.nii.gz"
    assert output_path("results") == os.path.join("results", "warped.nii.gz")
    assert output_path("results/") == os.path.join("results", "warped.nii.gz")
    assert output_path("results/img.png") == os.path.join("results/img.png", "warped.nii.gz")  # DeepReg's rule
    assert output_path(None) == "warped.nii.gz"
    assert output_path("") == "warped.nii.gz"
    assert output_path("~/w.nii.gz") == os.path.join(os.path.expanduser("~"), "w.nii.gz")


# ---------------------------------------------------------------------------------------------- values
@pytest.fixture
def random_case(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.random((12, 10, 8)).astype(np.float32)
    ddf = smooth_ddf((12, 10, 8), amplitude=2.5, seed=1)
    return image, ddf, write_nifti(tmp_path / "image.nii.gz", image), write_nifti(tmp_path / "ddf.nii.gz", ddf)


def test_linear_warp_matches_scipy_interior(tmp_path, random_case):
    image, ddf, image_path, ddf_path = random_case
    out = warp_file(image_path, ddf_path, str(tmp_path / "warped.nii.gz"))
    assert out == str(tmp_path / "warped.nii.gz")
    got, written = read_nifti(out)
    assert got.shape == ddf.shape[:-1]
    assert written.GetPixelID() == sitk.sitkFloat32
    expected = reference_warp(image, ddf.astype(np.float64))
    mask = interior_mask(ddf, image.shape)
    assert mask.sum() > 0.5 * mask.size  # the comparison covers most voxels
    np.testing.assert_allclose(got[mask], expected[mask], atol=1e-5)
    # sample points far outside the image are 0 (zero boundary)
    outside = ~interior_mask(ddf, image.shape, margin=-1.0)
    if outside.any():
        np.testing.assert_allclose(got[outside], 0.0, atol=1e-6)


def test_integer_shift_is_exact(tmp_path):
    rng = np.random.default_rng(2)
    image = rng.random((9, 8, 7)).astype(np.float32)
    ddf = np.zeros((9, 8, 7, 3), dtype=np.float32)
    ddf[..., 0], ddf[..., 1], ddf[..., 2] = 2.0, -1.0, 1.0  # output p samples image[p + (2, -1, 1)]
    out = warp_file(
        write_nifti(tmp_path / "i.nii.gz", image), write_nifti(tmp_path / "d.nii.gz", ddf), str(tmp_path / "o.nii.gz")
    )
    got, _ = read_nifti(out)
    expected = np.zeros_like(image)
    expected[:-2, 1:, :-1] = image[2:, :-1, 1:]
    np.testing.assert_array_equal(got.astype(np.float32), expected)


def test_zero_ddf_is_identity(tmp_path):
    rng = np.random.default_rng(3)
    image = rng.random((5, 6, 7)).astype(np.float32)
    ddf = np.zeros((5, 6, 7, 3), dtype=np.float32)
    out = warp_file(
        write_nifti(tmp_path / "i.nii.gz", image), write_nifti(tmp_path / "d.nii.gz", ddf), str(tmp_path / "o.nii.gz")
    )
    got, _ = read_nifti(out)
    np.testing.assert_allclose(got, image, atol=1e-6)  # coordinate 0 samples the image (contract §11)


def test_four_d_image_warped_per_channel_on_ddf_grid(tmp_path):
    rng = np.random.default_rng(4)
    image = rng.random((10, 9, 8, 2)).astype(np.float32)
    ddf = smooth_ddf((7, 6, 5), amplitude=2.0, seed=5)  # a different (fixed) grid than the image's
    out = warp_file(
        write_nifti(tmp_path / "i.nii.gz", image), write_nifti(tmp_path / "d.nii.gz", ddf), str(tmp_path / "o.nii.gz")
    )
    got, written = read_nifti(out)
    assert got.shape == (7, 6, 5, 2)
    assert written.GetDimension() == 4
    mask = interior_mask(ddf, image.shape[:3])
    assert mask.any()
    for c in range(2):
        expected = reference_warp(image[..., c], ddf.astype(np.float64))
        np.testing.assert_allclose(got[..., c][mask], expected[mask], atol=1e-5)


def test_output_has_the_ddf_files_geometry(tmp_path):
    rng = np.random.default_rng(6)
    image = rng.random((6, 6, 6)).astype(np.float32)
    ddf = smooth_ddf((5, 4, 3), amplitude=1.0, seed=7)
    c, s = np.cos(0.4), np.sin(0.4)
    direction = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    image_path = write_nifti(tmp_path / "i.nii.gz", image, spacing=(3.0, 3.0, 3.0), origin=(100.0, 0.0, 0.0))
    ddf_path = write_nifti(
        tmp_path / "d.nii.gz", ddf, spacing=(0.5, 1.5, 2.25), origin=(-3.0, 7.0, 11.5), direction=direction
    )
    out = warp_file(image_path, ddf_path, str(tmp_path / "o.nii.gz"))
    _, written = read_nifti(out)
    assert written.GetDimension() == 3
    np.testing.assert_allclose(written.GetSpacing(), (0.5, 1.5, 2.25), atol=1e-5)
    np.testing.assert_allclose(written.GetOrigin(), (-3.0, 7.0, 11.5), atol=1e-5)
    np.testing.assert_allclose(np.reshape(written.GetDirection(), (3, 3)), direction, atol=1e-5)


def test_nearest_keeps_label_values(tmp_path):
    rng = np.random.default_rng(8)
    labels = rng.integers(0, 5, size=(10, 9, 8)).astype(np.float32) * 3  # values 0, 3, 6, 9, 12
    ddf = smooth_ddf((10, 9, 8), amplitude=2.7, seed=9)
    out = warp_file(
        write_nifti(tmp_path / "l.nii.gz", labels),
        write_nifti(tmp_path / "d.nii.gz", ddf),
        str(tmp_path / "o.nii.gz"),
        interpolation="nearest",
    )
    got, _ = read_nifti(out)
    assert set(np.unique(got)) <= {0.0, 3.0, 6.0, 9.0, 12.0}
    # away from rounding ties, nearest equals SciPy's order-0 sampling
    grid = np.meshgrid(*[np.arange(n) for n in ddf.shape[:3]], indexing="ij")
    frac = np.stack([g + ddf[..., a] for a, g in enumerate(grid)]) % 1.0
    safe = np.all(np.abs(frac - 0.5) > 1e-3, axis=0) & interior_mask(ddf, labels.shape)
    expected = reference_warp(labels, np.rint(ddf.astype(np.float64) + np.stack(grid, -1)) - np.stack(grid, -1))
    np.testing.assert_array_equal(got[safe], expected[safe])
    # linear interpolation would have produced other values
    out_linear = warp_file(str(tmp_path / "l.nii.gz"), str(tmp_path / "d.nii.gz"), str(tmp_path / "lin.nii.gz"))
    assert not set(np.unique(read_nifti(out_linear)[0])) <= {0.0, 3.0, 6.0, 9.0, 12.0}


def test_bare_file_name_without_folder(tmp_path, monkeypatch, random_case):
    image, ddf, image_path, ddf_path = random_case
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    out = warp_file(image_path, ddf_path, "out.nii.gz")  # DeepReg crashed here (makedirs(""))
    assert out == "out.nii.gz"
    assert (work / "out.nii.gz").is_file()
    # a folder out path gets warped.nii.gz inside it, the folder is created
    out = warp_file(image_path, ddf_path, "results")
    assert out == os.path.join("results", "warped.nii.gz")
    assert (work / "results" / "warped.nii.gz").is_file()
    # the default
    assert warp_file(image_path, ddf_path) == "warped.nii.gz"
    assert (work / "warped.nii.gz").is_file()


# ---------------------------------------------------------------------------------------------- bad input
def test_missing_files_are_named(tmp_path, random_case):
    _, _, image_path, ddf_path = random_case
    missing = str(tmp_path / "nope.nii.gz")
    with pytest.raises(FileNotFoundError, match="nope.nii.gz") as exc:
        warp_file(missing, ddf_path, str(tmp_path / "o.nii.gz"))
    assert "--image" in str(exc.value)
    with pytest.raises(FileNotFoundError, match="nope.nii.gz") as exc:
        warp_file(image_path, missing, str(tmp_path / "o.nii.gz"))
    assert "--ddf" in str(exc.value)
    assert not (tmp_path / "o.nii.gz").exists()


def test_ddf_with_wrong_last_axis(tmp_path, random_case):
    _, _, image_path, _ = random_case
    bad = write_nifti(tmp_path / "bad.nii.gz", np.zeros((5, 5, 5, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(5, 5, 5, 2\)"):
        warp_file(image_path, bad, str(tmp_path / "o.nii.gz"))
    scalar = write_nifti(tmp_path / "scalar.nii.gz", np.zeros((5, 5, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="scalar.nii.gz"):
        warp_file(image_path, scalar, str(tmp_path / "o.nii.gz"))
    assert not (tmp_path / "o.nii.gz").exists()


def test_image_rank_not_fitting_the_ddf(tmp_path, random_case):
    _, _, _, ddf_path = random_case
    flat = write_nifti(tmp_path / "flat.nii.gz", np.zeros((6, 7), dtype=np.float32))
    with pytest.raises(ValueError, match="flat.nii.gz"):
        warp_file(flat, ddf_path, str(tmp_path / "o.nii.gz"))
    assert not (tmp_path / "o.nii.gz").exists()


def test_bad_interpolation(tmp_path, random_case):
    _, _, image_path, ddf_path = random_case
    with pytest.raises(ValueError, match="cubic"):
        warp_file(image_path, ddf_path, str(tmp_path / "o.nii.gz"), interpolation="cubic")


# ---------------------------------------------------------------------------------------------- real data
def test_real_unit_test_files_smoke(shared_data, tmp_path):
    folder = shared_data / "deepreg_test" / "nifti" / "unit_test"
    image_path, ddf_path = folder / "moving_image.nii.gz", folder / "ddf.nii.gz"
    if not (image_path.is_file() and ddf_path.is_file()):
        pytest.skip(f"{folder} lacks moving_image.nii.gz / ddf.nii.gz")
    nib = pytest.importorskip("nibabel")  # the moving image is NIfTI-2, which SimpleITK cannot open
    out = warp_file(str(image_path), str(ddf_path), str(tmp_path / "w"))
    assert out == str(tmp_path / "w" / "warped.nii.gz")
    got, written = read_nifti(out)
    ddf = np.asarray(nib.load(str(ddf_path)).dataobj, dtype=np.float64)
    image = np.asarray(nib.load(str(image_path)).dataobj, dtype=np.float64)
    assert got.shape == ddf.shape[:3] == (16, 16, 16)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(written.GetSpacing(), (1.0, 1.0, 1.0), atol=1e-5)  # the ddf's identity affine
    np.testing.assert_allclose(written.GetOrigin(), (0.0, 0.0, 0.0), atol=1e-5)
    expected = reference_warp(image, ddf)
    mask = interior_mask(ddf, image.shape)
    assert mask.any()
    np.testing.assert_allclose(got[mask], expected[mask], atol=1e-5 * max(1.0, np.abs(image).max()))


def test_a_predicted_ddf_warps_the_original_moving_file_through_physical_space(tmp_path):
    """tfreg_predict's DDF counts voxels of the resized (model) moving grid. Applied to the original moving
    file, it used to sample that file's first voxels; now it is mapped through mm with both geometries."""
    from tfreg.data.geometry import ImageGeometry

    rng = np.random.default_rng(11)
    original = ndimage.gaussian_filter(rng.random((16, 16, 16)), 1.5).astype(np.float32)
    c, s = np.cos(0.3), np.sin(0.3)
    direction = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    file_geometry = ImageGeometry(spacing=(1.0, 1.5, 0.8), origin=(5.0, -2.0, 30.0), direction=direction)
    model_geometry = file_geometry.resized((16, 16, 16), (8, 8, 8))  # the grid predict writes
    pair = tmp_path / "pair_0"
    pair.mkdir()
    original_path = write_nifti(
        tmp_path / "moving_original.nii.gz", original, file_geometry.spacing, file_geometry.origin, direction
    )
    write_nifti(
        pair / "moving_image.nii.gz", np.zeros((8, 8, 8)), model_geometry.spacing, model_geometry.origin, direction
    )
    ddf = np.zeros((8, 8, 8, 3), np.float32)
    ddf[..., 0], ddf[..., 2] = 1.0, -0.5  # model-grid voxels
    ddf_path = write_nifti(pair / "ddf.nii.gz", ddf, model_geometry.spacing, model_geometry.origin, direction)
    got, _ = read_nifti(warp_file(original_path, ddf_path, str(tmp_path / "o.nii.gz")))
    # reference: q (model voxels) -> mm by the model geometry -> original voxels, written out with NumPy
    grid = np.stack(np.meshgrid(*[np.arange(8.0)] * 3, indexing="ij"), -1)
    q = grid + ddf
    to_mm = lambda g, v: np.asarray(g.origin) + v @ (np.asarray(g.direction) @ np.diag(g.spacing)).T  # noqa: E731
    mm = to_mm(model_geometry, q.reshape(-1, 3))
    v = np.linalg.solve(np.asarray(direction) @ np.diag(file_geometry.spacing), (mm - file_geometry.origin).T)
    expected = ndimage.map_coordinates(original.astype(np.float64), v, order=1, mode="constant").reshape(8, 8, 8)
    inside = np.all((v >= 0) & (v <= 15), axis=0).reshape(8, 8, 8)
    assert inside.sum() > 100
    np.testing.assert_allclose(got[inside], expected[inside], atol=1e-4)
    # the same with the grid named explicitly, from a DDF moved elsewhere
    moved = write_nifti(tmp_path / "ddf_copy.nii.gz", ddf, model_geometry.spacing, model_geometry.origin, direction)
    got2, _ = read_nifti(
        warp_file(original_path, moved, str(tmp_path / "o2.nii.gz"), moving_grid=str(pair / "moving_image.nii.gz"))
    )
    np.testing.assert_allclose(got2, got, atol=1e-6)

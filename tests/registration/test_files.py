"""register_files (tfreg_register on files): outputs other tools read back identically, grids, starting
from a saved model, and the refusals that leave nothing behind."""

import json
import os

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import read_image, save_image
from tfreg.registration.files import register_files
from tfreg.registration.optimise import OptimisationSettings

SSD = {"image": {"name": "ssd", "weight": 1.0}, "regularization": {"name": "gradient", "weight": 0.1}}
QUICK = OptimisationSettings(loss=SSD, levels=(1,), iterations=25, learning_rate=0.2, verbose=0)


def rotation_geometry(spacing=(1.2, 0.9, 1.5), origin=(-10.0, 4.0, 2.5)):
    angle = np.deg2rad(20.0)
    direction = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, -1.0]])
    return ImageGeometry(spacing=spacing, origin=origin, direction=direction)


@pytest.fixture
def pair(tmp_path):
    shape = (14, 16, 12)
    image = ndimage.gaussian_filter(np.random.default_rng(0).random(shape), 2.0)
    image = ((image - image.min()) / (image.max() - image.min())).astype(np.float32)
    moving = np.roll(image, 1, axis=1)
    geometry = rotation_geometry()
    paths = {"fixed": str(tmp_path / "fixed.nii.gz"), "moving": str(tmp_path / "moving.nii.gz")}
    save_image(image, paths["fixed"], geometry)
    save_image(moving, paths["moving"], geometry)
    return paths, geometry, shape


def sitk_resample(moving_path, field_path, reference_path):
    """SimpleITK applying a displacement-field file to the moving file on the reference grid (linear)."""
    field = sitk.ReadImage(field_path, sitk.sitkVectorFloat64)
    transform = sitk.DisplacementFieldTransform(field)
    reference = sitk.ReadImage(reference_path)
    out = sitk.Resample(sitk.ReadImage(moving_path, sitk.sitkFloat32), reference, transform, sitk.sitkLinear, 0.0)
    return np.transpose(sitk.GetArrayFromImage(out))


def test_outputs_read_back_by_simpleitk_and_tfreg_warp(tmp_path, pair):
    paths, geometry, shape = pair
    out = str(tmp_path / "reg")
    written = register_files(
        paths["fixed"], paths["moving"], out, QUICK, export=("deepreg", "itk", "ants"), inverse=True
    )
    names = {os.path.basename(p) for p in written.values()}
    assert {"warped_moving.nii.gz", "ddf.nii.gz", "transform_itk.nii.gz", "transform_ants_Warp.nii.gz"} <= names
    assert {"inverse_ddf.nii.gz", "inverse_transform_itk.nii.gz", "registration.json"} <= names
    warped, warped_geometry = read_image(os.path.join(out, "warped_moving.nii.gz"))
    assert warped.shape == shape and warped_geometry.allclose(geometry)
    # ITK's resampler through the exported physical field reproduces tfreg's warped image
    by_itk = sitk_resample(paths["moving"], os.path.join(out, "transform_itk.nii.gz"), paths["fixed"])
    inner = (slice(2, -2),) * 3
    np.testing.assert_allclose(by_itk[inner], warped[inner], atol=1e-4)
    # the registration moved the image towards the fixed one
    fixed, _ = read_image(paths["fixed"])
    moving, _ = read_image(paths["moving"])
    assert np.abs(warped - fixed)[inner].mean() < 0.5 * np.abs(moving - fixed)[inner].mean()
    summary = json.load(open(os.path.join(out, "registration.json")))
    assert summary["stages"][0]["iterations"] == 25 and len(summary["stages"][0]["loss"]) == 25
    # reported, not guaranteed: the fixed point stalls where a field folds; on average it is tight here
    assert summary["inverse_residual_voxels"]["mean"] < 0.05
    # tfreg_warp with the voxel DDF (through moving_image.nii.gz beside it) gives the same image
    from tfreg.engine.warp import warp_file

    again = warp_file(paths["moving"], os.path.join(out, "ddf.nii.gz"), str(tmp_path / "again.nii.gz"))
    np.testing.assert_allclose(read_image(again)[0], warped, atol=1e-5)


@pytest.mark.slow
def test_moving_on_another_grid_is_resampled_through_physical_space(tmp_path, pair):
    paths, geometry, shape = pair
    moving, _ = read_image(paths["moving"])
    # the same image content on a grid with twice the voxels along axis 0, half the spacing
    fine = ndimage.zoom(moving, (2, 1, 1), order=1)
    fine_geometry = ImageGeometry(
        spacing=(geometry.spacing[0] / 2,) + geometry.spacing[1:],
        origin=tuple(np.asarray(geometry.origin) - geometry.direction[:, 0] * geometry.spacing[0] / 4),
        direction=geometry.direction,
    )
    save_image(fine, str(tmp_path / "fine.nii.gz"), fine_geometry)
    out = str(tmp_path / "reg")
    register_files(paths["fixed"], str(tmp_path / "fine.nii.gz"), out, QUICK)
    resampled, grid = read_image(os.path.join(out, "moving_image.nii.gz"))
    assert resampled.shape == shape and grid.allclose(geometry)
    inner = (slice(2, -2),) * 3
    np.testing.assert_allclose(resampled[inner], moving[inner], atol=0.05)


@pytest.mark.slow
def test_existing_output_is_refused_and_overwrite_replaces_only_our_folders(tmp_path, pair):
    paths, _, _ = pair
    out = tmp_path / "reg"
    register_files(paths["fixed"], paths["moving"], str(out), QUICK)
    with pytest.raises(FileExistsError, match="--overwrite"):
        register_files(paths["fixed"], paths["moving"], str(out), QUICK)
    register_files(paths["fixed"], paths["moving"], str(out), QUICK, overwrite=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not written by tfreg_register"):
        register_files(paths["fixed"], paths["moving"], str(other), QUICK, overwrite=True)
    assert (other / "keep.txt").read_text() == "user data"


def test_bad_input_is_refused_before_anything_is_written(tmp_path, pair):
    paths, geometry, _ = pair
    out = tmp_path / "reg"
    flat = str(tmp_path / "flat.nii.gz")
    save_image(np.zeros((14, 16), np.float32), flat, ImageGeometry.identity(2))
    with pytest.raises(ValueError, match="different dimensionality"):
        register_files(paths["fixed"], flat, str(out), QUICK)
    nan = np.ones((14, 16, 12), np.float32)
    nan[3, 3, 3] = np.nan
    save_image(nan, str(tmp_path / "nan.nii.gz"), geometry)
    with pytest.raises(ValueError, match="nan.nii.gz"):
        register_files(paths["fixed"], str(tmp_path / "nan.nii.gz"), str(out), QUICK)
    with pytest.raises(FileNotFoundError, match="--moving"):
        register_files(paths["fixed"], str(tmp_path / "missing.nii.gz"), str(out), QUICK)
    with pytest.raises(ValueError, match="--export"):
        register_files(paths["fixed"], paths["moving"], str(out), QUICK, export=("fsl",))
    labelled = OptimisationSettings(
        loss=dict(SSD, label={"name": "dice", "weight": 1.0}), levels=(1,), iterations=2, verbose=0
    )
    with pytest.raises(ValueError, match="needs labels"):
        register_files(paths["fixed"], paths["moving"], str(out), labelled)
    assert sorted(os.listdir(tmp_path)) == ["fixed.nii.gz", "flat.nii.gz", "moving.nii.gz", "nan.nii.gz"]


def test_starting_from_a_saved_model_uses_its_prediction(tmp_path, pair):
    """A .keras model whose DDF is a known constant (a 'field' backbone with an initial field) on a grid half
    the pair's size: the prediction is resized to the pair's grid with its voxel values doubled."""
    from tfreg.engine.pair_prediction import predict_pair_ddf
    from tfreg.registry import REGISTRY

    paths, _, shape = pair
    grid = tuple(d // 2 for d in shape)
    model = REGISTRY.build_model(
        config=dict(
            name="ddf",
            moving_image_size=grid,
            fixed_image_size=grid,
            config={"backbone": {"name": "field"}, "loss": SSD},
        )
    )
    constant = np.zeros(grid + (3,), np.float32)
    constant[..., 1] = 0.5
    model.backbone.set_initial(constant)
    model.save(str(tmp_path / "model.keras"))
    fixed, _ = read_image(paths["fixed"])
    moving, _ = read_image(paths["moving"])
    ddf = predict_pair_ddf(str(tmp_path / "model.keras"), fixed, moving)
    expected = np.zeros(shape + (3,), np.float32)
    expected[..., 1] = 1.0
    np.testing.assert_allclose(ddf, expected, atol=1e-5)
    # with zero iterations the written DDF is the model's prediction
    still = OptimisationSettings(loss=SSD, levels=(1,), iterations=0, verbose=0)
    register_files(paths["fixed"], paths["moving"], str(tmp_path / "reg"), still, model=str(tmp_path / "model.keras"))
    np.testing.assert_allclose(read_image(str(tmp_path / "reg" / "ddf.nii.gz"))[0], expected, atol=1e-5)

"""tfreg.cli.warp (tfreg_warp / deepreg_warp): flags, exit codes, messages, the written file."""

import numpy as np
import pytest
import SimpleITK as sitk

from tfreg.cli.warp import main
from tfreg.data.geometry import ImageGeometry
from tfreg.data.transform_io import write_transform


def write_nifti(path, array):
    sitk.WriteImage(
        sitk.GetImageFromArray(np.transpose(np.asarray(array, dtype=np.float32)), isVector=False), str(path)
    )
    return str(path)


def read_nifti(path):
    return np.transpose(sitk.GetArrayFromImage(sitk.ReadImage(str(path))))


@pytest.fixture
def case(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.random((6, 5, 4)).astype(np.float32)
    ddf = np.zeros((6, 5, 4, 3), dtype=np.float32)
    ddf[..., 1] = 1.0  # output (i, j, k) samples image (i, j + 1, k)
    return image, write_nifti(tmp_path / "image.nii.gz", image), write_nifti(tmp_path / "ddf.nii.gz", ddf)


def test_main_warps_and_writes(tmp_path, case, capsys):
    image, image_path, ddf_path = case
    out = tmp_path / "out" / "w.nii.gz"
    assert main(["-i", image_path, "-d", ddf_path, "-o", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    expected = np.zeros_like(image)
    expected[:, :-1, :] = image[:, 1:, :]
    np.testing.assert_array_equal(read_nifti(out), expected)


def test_main_long_flags_folder_out_and_nearest(tmp_path, case):
    _, image_path, ddf_path = case
    assert (
        main(
            ["--image", image_path, "--ddf", ddf_path, "--out", str(tmp_path / "folder"), "--interpolation", "nearest"]
        )
        == 0
    )
    assert (tmp_path / "folder" / "warped.nii.gz").is_file()


def test_main_default_out_in_cwd(tmp_path, case, monkeypatch):
    _, image_path, ddf_path = case
    monkeypatch.chdir(tmp_path)
    assert main(["-i", image_path, "-d", ddf_path]) == 0
    assert (tmp_path / "warped.nii.gz").is_file()


def test_main_missing_file_returns_1_naming_it(tmp_path, case, capsys):
    _, image_path, _ = case
    missing = str(tmp_path / "missing_ddf.nii.gz")
    assert main(["-i", image_path, "-d", missing, "-o", str(tmp_path / "o.nii.gz")]) == 1
    captured = capsys.readouterr()
    assert missing in captured.err
    assert "error" in captured.err
    assert not (tmp_path / "o.nii.gz").exists()


def test_main_bad_ddf_returns_1(tmp_path, case, capsys):
    _, image_path, _ = case
    bad = write_nifti(tmp_path / "bad.nii.gz", np.zeros((6, 5, 4, 2)))
    assert main(["-i", image_path, "-d", bad, "-o", str(tmp_path / "o.nii.gz")]) == 1
    assert "bad.nii.gz" in capsys.readouterr().err


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    flags = ("-i", "--image", "-d", "--ddf", "--transform", "--ddf_units", "-o", "--out", "warped.nii.gz")
    for flag in flags + ("--interpolation",):
        assert flag in text


def test_required_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["-i", "x.nii.gz"])
    assert exc.value.code == 2
    assert "--ddf" in capsys.readouterr().err


def sha256(path):
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.parametrize("which", ["image", "ddf", "image_link"])
def test_output_equal_to_an_input_is_refused(tmp_path, case, capsys, which):
    """Data loss: ``-o X -i X`` used to overwrite the input silently."""
    import os

    _, image_path, ddf_path = case
    before = {p: sha256(p) for p in (image_path, ddf_path)}
    out = {"image": image_path, "ddf": ddf_path, "image_link": str(tmp_path / "link.nii.gz")}[which]
    if which == "image_link":
        os.symlink(image_path, out)
    assert main(["-i", image_path, "-d", ddf_path, "-o", out]) == 1
    err = capsys.readouterr().err
    assert "would destroy the input" in err and "--overwrite_input" in err
    assert {p: sha256(p) for p in before} == before


def test_overwrite_input_replaces_it_with_the_warped_image(tmp_path, case):
    image, image_path, ddf_path = case
    assert main(["-i", image_path, "-d", ddf_path, "-o", image_path, "--overwrite_input"]) == 0
    expected = np.zeros_like(image)
    expected[:, :-1, :] = image[:, 1:, :]
    np.testing.assert_array_equal(read_nifti(image_path), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddf.nii.gz", "image.nii.gz"]  # no scratch left


def test_a_failed_write_keeps_the_existing_output(tmp_path, case, monkeypatch):
    """Atomic output: a write that fails half-way leaves the previous file and no scratch file."""
    from tfreg.engine import warp as warp_module

    _, image_path, ddf_path = case
    out = tmp_path / "o.nii.gz"
    out.write_bytes(b"previous result")

    def half_write(array, path, geometry=None, dtype=None):
        with open(path, "wb") as f:
            f.write(b"trunc")
        raise OSError("disk full")

    monkeypatch.setattr(warp_module, "save_image", half_write)
    assert main(["-i", image_path, "-d", ddf_path, "-o", str(out)]) == 1
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddf.nii.gz", "image.nii.gz", "o.nii.gz"]


def test_transform_flag_and_ddf_units(tmp_path, capsys):
    """--transform names an ITK displacement field (auto-detected); --ddf_units voxel reads it as voxels."""
    image = np.random.default_rng(0).random((6, 5, 4)).astype(np.float32)
    image_path = write_nifti(tmp_path / "image.nii.gz", image)
    ddf = np.zeros((6, 5, 4, 3), dtype=np.float32)
    ddf[..., 1] = 1.0  # in voxels of the image's (identity) grid: 1 mm along y
    field = write_transform(tmp_path / "field.nii.gz", ddf, ImageGeometry.identity(3), "itk")
    out = tmp_path / "w.nii.gz"
    assert main(["-i", image_path, "--transform", field, "-o", str(out)]) == 0
    expected = np.zeros_like(image)
    expected[:, :-1, :] = image[:, 1:, :]
    np.testing.assert_allclose(read_nifti(out), expected, atol=1e-6)
    assert main(["-i", image_path, "-d", field, "--ddf_units", "voxel", "-o", str(tmp_path / "v.nii.gz")]) == 0
    assert main(["-i", image_path, "-d", field, "--moving_grid", image_path, "-o", str(tmp_path / "x.nii.gz")]) == 1
    assert "voxel DDFs only" in capsys.readouterr().err

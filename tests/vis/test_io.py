"""tfreg.vis.io: images (NIfTI, h5, h5:key), DDFs, labels and metric CSVs, with errors naming the input."""

import h5py
import numpy as np
import pytest

from tests.vis._synthetic import SHAPE, SPACING, write_metric_csv
from tfreg.vis import io


def test_read_volume_nifti_shape_and_spacing(case):
    volume = io.read_volume(case["fixed"], "--fixed")
    assert volume.array.shape == SHAPE
    assert volume.array.dtype == np.float32
    assert volume.spacing == pytest.approx(SPACING)
    assert volume.stem == "fixed"


def test_read_h5_first_dataset_and_key(tmp_path):
    path = tmp_path / "images.h5"
    with h5py.File(path, "w") as handle:
        handle["b"] = np.ones((4, 5, 6))
        handle["a"] = np.zeros((4, 5, 6))
        handle["b"].attrs["spacing"] = [1.0, 2.0, 3.0]
    assert io.read_volume(str(path)).array.max() == 0  # the first key in sorted order: "a"
    keyed = io.read_volume(f"{path}:b")
    assert keyed.array.min() == 1 and keyed.spacing == (1.0, 2.0, 3.0)
    assert keyed.stem == "images_b"
    with pytest.raises(ValueError, match=r"no dataset 'c'"):
        io.read_volume(f"{path}:c", "--fixed")


def test_split_h5_key():
    assert io.split_h5_key("x/y.h5:case0.nii.gz") == ("x/y.h5", "case0.nii.gz")
    assert io.split_h5_key("x/y.nii.gz") == ("x/y.nii.gz", None)


def test_missing_file_named(tmp_path):
    missing = str(tmp_path / "nope.nii.gz")
    with pytest.raises(FileNotFoundError, match=r"--warped: file .*nope\.nii\.gz does not exist"):
        io.read_volume(missing, "--warped")


def test_ddf_wrong_last_axis(case):
    # a 3-D scalar image is not a (*spatial, ndim) field: its last axis (16) is not 2 or 3 components
    with pytest.raises(ValueError, match=r"--ddf: .*\(\*spatial, ndim\).*\(24, 20, 16\)"):
        io.read_ddf(case["fixed"], "--ddf")


def test_ddf_reads_vectors(case):
    ddf = io.read_ddf(case["ddf"])
    assert ddf.array.shape == SHAPE + (3,)
    assert ddf.spatial_shape == SHAPE


def test_image_must_be_scalar(case):
    with pytest.raises(ValueError, match=r"--image: .*scalar 2-D or 3-D image.*\(24, 20, 16, 3\)"):
        io.read_volume(case["ddf"], "--image")


def test_read_labels_integer_map_and_one_hot(tmp_path, case):
    labels, names = io.read_labels(case["fixed_label"])
    assert labels.array.shape == SHAPE + (1,) and labels.array.dtype == bool and names == ["1"]
    path = tmp_path / "multi.h5"
    stack = np.zeros((6, 6, 4, 2))
    stack[:3, ..., 0] = 1
    stack[3:, ..., 1] = 1
    with h5py.File(path, "w") as handle:
        handle["x"] = stack
    one_hot, names = io.read_labels(str(path))
    assert one_hot.array.shape == (6, 6, 4, 2) and names == ["0", "1"]
    assert one_hot.array[..., 1].sum() == 3 * 6 * 4


def test_check_same_spatial_shape_names_both(tmp_path):
    a = io.Volume(np.zeros((4, 4, 4)), (1.0,) * 3, "a.nii")
    b = io.Volume(np.zeros((4, 4, 5)), (1.0,) * 3, "b.nii")
    with pytest.raises(ValueError, match=r"--warped b\.nii has spatial shape \(4, 4, 5\) but --fixed a\.nii"):
        io.check_same_spatial_shape(a, b, "--fixed", "--warped")


def test_metric_csv_filter_and_skip_missing(tmp_path):
    path = write_metric_csv(tmp_path / "m.csv", [0.5, "nan", 0.7, ""], labels=[1, 1, 2, 2])
    assert io.read_metric_csv(path, "dice").tolist() == [0.5, 0.7]
    assert io.read_metric_csv(path, "dice", labels=["2.0"]).tolist() == [0.7]


def test_metric_csv_missing_column(tmp_path):
    path = write_metric_csv(tmp_path / "m.csv", [0.5])
    expected = r"--metric: .*m\.csv has no column 'hd95'; its columns are \['pair', 'label', 'dice'\]"
    with pytest.raises(ValueError, match=expected):
        io.read_metric_csv(path, "hd95")


def test_metric_csvs_names(tmp_path):
    a = write_metric_csv(tmp_path / "unet.csv", [0.5])
    b = write_metric_csv(tmp_path / "local.metrics.csv", [0.6])
    assert list(io.read_metric_csvs([a, b], "dice")) == ["unet", "local"]
    assert list(io.read_metric_csvs([a, b], "dice", names=["A", "B"])) == ["A", "B"]
    with pytest.raises(ValueError, match="--names: got 1 name"):
        io.read_metric_csvs([a, b], "dice", names=["A"])
    with pytest.raises(ValueError, match="no finite 'dice' value for labels"):
        io.read_metric_csvs([a], "dice", labels=["7"])


def test_metric_csv_skips_union_rows_unless_named(tmp_path):
    """Rows of tfreg_evaluate --union-label repeat their labels: left out of the pooled values."""
    path = tmp_path / "u.csv"
    path.write_text("pair,label,union_of,dice\np,1,,0.5\np,2,,0.7\np,L12,1;2,0.6\n")
    assert io.read_metric_csv(str(path), "dice").tolist() == [0.5, 0.7]
    assert io.read_metric_csv(str(path), "dice", labels=["L12"]).tolist() == [0.6]


def test_read_labels_binarises_a_soft_mask_at_the_threshold(tmp_path):
    """A label warped with linear interpolation has many fractional values in [0, 1]: it is one label whose
    foreground is ``>= threshold`` (0.5: tfreg_predict's and tfreg_evaluate's rule), not one label per value."""
    from tests.vis._synthetic import folding_ddf, sphere, warp
    from tfreg.data.image_io import save_image

    soft = warp(sphere(centre=(10.0, 11.0, 7.5)).astype(np.float32), folding_ddf(shift=(-1.7, 0.8, -0.35))).astype(
        np.float32
    )
    soft[0, 0, 0] = 0.5  # exactly at the threshold: foreground
    assert len(np.unique(soft)) > 64  # what read_labels refused as "too many labels"
    path = str(tmp_path / "soft.nii.gz")
    save_image(soft, path)
    labels, names = io.read_labels(path, "--warped-label")
    assert names == ["1"] and labels.array.shape == SHAPE + (1,) and labels.array.dtype == bool
    np.testing.assert_array_equal(labels.array[..., 0], soft >= 0.5)
    assert labels.array[0, 0, 0]
    high, _ = io.read_labels(path, "--warped-label", threshold=0.9)
    np.testing.assert_array_equal(high.array[..., 0], soft >= 0.9)
    assert 0 < high.array.sum() < labels.array.sum()
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="--label-threshold must be a number"):
            io.read_labels(path, "--warped-label", threshold=bad)
    save_image(soft * 3.0, str(tmp_path / "scaled.nii.gz"))
    with pytest.raises(ValueError, match=r"--warped-label: .*scaled\.nii\.gz has fractional values in \[0, 3\]"):
        io.read_labels(str(tmp_path / "scaled.nii.gz"), "--warped-label")

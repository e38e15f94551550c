"""tfreg.metrics.per_label on small label maps and, when available, the real brain segmentation."""

import numpy as np
import pytest

from tfreg.metrics import EmptyMaskWarning, dice, hausdorff_distance, jacobian_determinant_std, per_label


def _label_maps():
    a = np.zeros((10, 10), dtype=np.int64)
    b = np.zeros_like(a)
    a[0:4, 0:4] = 1  # 16
    a[6:10, 6:10] = 2  # 16
    b[0:4, 0:2] = 1  # 8, all inside a's label 1
    b[6:10, 6:10] = 2
    b[0, 9] = 5  # only in b
    return a, b


def test_per_label_dice_and_default_labels():
    a, b = _label_maps()
    out = per_label(dice, a, b)
    assert list(out) == [1, 2, 5]
    assert out[1] == pytest.approx(2 * 8 / 24)
    assert out[2] == 1.0
    assert out[5] == 0.0
    assert per_label(dice, a, b, labels=[2, 7]) == {2: 1.0, 7: 1.0}  # 7 absent from both: empty == empty


def test_per_label_passes_keyword_arguments_and_single_map():
    a, b = _label_maps()
    out = per_label(hausdorff_distance, a, b, labels=[2], spacing=(2.0, 0.5))
    assert out == {2: 0.0}
    with pytest.warns(EmptyMaskWarning):
        assert np.isnan(per_label(hausdorff_distance, a, b, labels=[5])[5])
    ddf = np.zeros((10, 10, 2))
    assert per_label(lambda m: jacobian_determinant_std(ddf, m), a) == {1: 0.0, 2: 0.0}


def test_per_label_rejects_bad_maps():
    a, b = _label_maps()
    with pytest.raises(ValueError, match=r"\(10, 10\).*\(10, 9\)"):
        per_label(dice, a, b[:, :9])
    with pytest.raises(ValueError, match="whole numbers"):
        per_label(dice, a + 0.5, b)
    with pytest.raises(ValueError, match="non-finite"):
        per_label(dice, np.full((3, 3), np.nan), np.zeros((3, 3)))


def test_real_aseg_shifted_by_one_voxel(shared_data):
    path = shared_data / "brain_scan" / "test_scan.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found (set TFREG_TEST_DATA to the shared/data folder)")
    seg = np.load(path)["seg"].astype(np.int64)
    labels = [int(v) for v in np.load(shared_data / "brain_scan" / "labels.npz")["labels"]]
    shifted = np.zeros_like(seg)
    shifted[:, 1:, :] = seg[:, :-1, :]  # one voxel along axis 1; the brain does not touch the edge
    out = per_label(dice, seg, shifted, labels=labels)
    for lab in labels:
        a, b = seg == lab, shifted == lab
        expected = 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))
        assert out[lab] == pytest.approx(expected, abs=1e-12), lab
    # an exact one-voxel translation moves every surface voxel by exactly one voxel: HD = spacing
    hd = per_label(hausdorff_distance, seg, shifted, labels=labels[:4], spacing=(1.0, 1.5, 1.0))
    assert all(v == pytest.approx(1.5) for v in hd.values()), hd

"""tfreg.label_threshold: the one binarisation rule (``>= 0.5``), and every component that binarises a label
agreeing on it, voxels at exactly 0.5 included."""

import numpy as np
import pytest

from tfreg.label_threshold import LABEL_THRESHOLD, binarise

# one row of soft label values: the two sides of 0.5 and 0.5 itself
VALUES = np.array([0.0, 0.25, 0.4999, 0.5, 0.5001, 0.75, 1.0], dtype=np.float32)
EXPECTED = np.array([False, False, False, True, True, True, True])


def test_binarise_numpy_and_tensors():
    import keras

    assert LABEL_THRESHOLD == 0.5
    np.testing.assert_array_equal(binarise(VALUES), EXPECTED)
    assert binarise(VALUES).dtype == np.bool_
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(binarise(keras.ops.convert_to_tensor(VALUES))), EXPECTED)
    np.testing.assert_array_equal(binarise(VALUES, 0.75), VALUES >= 0.75)
    mask = np.array([True, False])
    assert binarise(mask) is mask  # a boolean mask is already binary


def _soft_pair():
    """A fixed box and a soft label whose rim is exactly 0.5 (a half-voxel linear shift of the same box)."""
    fixed = np.zeros((8, 8, 8), np.float32)
    fixed[2:6, 2:6, 2:6] = 1
    soft = fixed.copy()
    soft[6, 2:6, 2:6] = 0.5  # 16 rim voxels exactly at 0.5 (foreground)
    soft[1, 2:6, 2:6] = 0.4999  # 16 just below (background)
    a, b = fixed >= 0.5, soft >= 0.5
    reference = 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))
    assert reference == pytest.approx(2 * 64 / (64 + 80))
    return fixed, soft, reference


def test_every_binariser_follows_the_rule(tmp_path):
    """tfreg.metrics, tfreg_evaluate, tfreg_vis, the binary Dice loss and the models' centroid give what the
    ``>= 0.5`` reference gives; with ``> 0.5`` the rim at 0.5 would drop out (Dice 1 instead of 0.889)."""
    import keras

    from tfreg.data.geometry import ImageGeometry
    from tfreg.data.image_io import save_image
    from tfreg.evaluation.evaluate import PairSpec, evaluate
    from tfreg.losses.label import DiceScore
    from tfreg.metrics import dice
    from tfreg.models.base import label_centroid
    from tfreg.vis.io import read_labels

    fixed, soft, reference = _soft_pair()
    assert dice(fixed, soft) == pytest.approx(reference, abs=1e-12)
    geometry = ImageGeometry(spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=np.eye(3))
    save_image(fixed, str(tmp_path / "f.nii.gz"), geometry)
    save_image(soft, str(tmp_path / "w.nii.gz"), geometry)
    rows = evaluate([PairSpec("p", fixed_label=str(tmp_path / "f.nii.gz"), warped_label=str(tmp_path / "w.nii.gz"))])
    assert rows.rows[0]["dice"] == pytest.approx(reference, abs=1e-12)
    labels, _ = read_labels(str(tmp_path / "w.nii.gz"))
    np.testing.assert_array_equal(labels.array[..., 0], soft >= 0.5)
    loss = DiceScore(binary=True, smooth_nr=0.0, smooth_dr=0.0)
    score = keras.ops.convert_to_numpy(loss.call(fixed[None], soft[None]))
    assert float(score[0]) == pytest.approx(reference, abs=1e-6)
    centroid = keras.ops.convert_to_numpy(label_centroid(soft[None]))[0]
    np.testing.assert_allclose(centroid, np.argwhere(soft >= 0.5).mean(axis=0), atol=1e-4)

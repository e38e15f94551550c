"""keep_labels renumbering (tfreg.data.label_renumbering)."""

import numpy as np
import pytest

from tfreg.data.label_renumbering import check_label_values, renumber_labels


def test_kept_values_become_one_to_k_in_order():
    label = np.array([[0, 3, 4, 5], [5, 7, 3, 300]], dtype=np.int64)
    out = renumber_labels(label, [5, 3, 300])
    np.testing.assert_array_equal(out, [[0, 2, 0, 1], [1, 0, 2, 3]])
    assert out.dtype == np.uint8
    # against a lookup table built independently
    table = np.zeros(301, dtype=np.int64)
    table[[5, 3, 300]] = [1, 2, 3]
    np.testing.assert_array_equal(out, table[label])


def test_bad_keep_labels():
    for bad in ([], [0, 1], [1, 1], [1.5], [True]):
        with pytest.raises(ValueError, match="keep_labels must be one or more distinct integer label values >= 1"):
            check_label_values(bad, "keep_labels")
    assert check_label_values(4, "keep_labels") == (4,)

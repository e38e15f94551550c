"""The memory estimate of the preprocessing (tfreg.data.preprocess_memory)."""

import os

from tfreg.data.preprocess_memory import estimate_memory, physical_memory_gb


def test_estimate_counts_every_grid():
    estimate = estimate_memory((10, 10, 10), (20, 10, 5), (20, 20, 20), (40, 20, 10), (8, 8, 8))
    assert estimate.voxels == {
        "moving_input": 1000, "fixed_input": 1000, "moving_resampled": 8000, "fixed_resampled": 8000, "crop": 512,
    }  # fmt: skip
    assert estimate.bytes == 8 * 2000 + 16 * 8000 + 24 * 8000 + 24 * 512
    assert estimate.gib == estimate.bytes / 2**30
    assert "the crop 8x8x8 (512 voxels)" in estimate.describe()
    # without a crop the output is the fixed grid
    assert estimate_memory((4, 4), (4, 4), (4, 4), (6, 5), None).voxels["crop"] == 30


def test_physical_memory_matches_sysconf():
    expected = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    assert physical_memory_gb() == expected > 0

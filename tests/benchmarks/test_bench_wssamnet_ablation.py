"""The building blocks of benchmarks/bench_wssamnet_ablation.py (WSSAMNet++'s Table I ablation), on hand
cases and a tiny grid; the benchmark's training runs are not repeated here (seconds, not minutes)."""

import math

import numpy as np
import pytest

from tests.benchmarks.script_loader import load_benchmark
from tests.conftest import REPO_ROOT
from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import read_image

bench = load_benchmark("bench_wssamnet_ablation")


def test_coarse_labels_map_aseg_numbers_to_the_four_oasis_labels():
    # cortex, cerebellar cortex, thalamus, ventral DC, cerebral WM, brainstem, lateral ventricle, CSF,
    # choroid plexus, and the left-overs that stay background: vessel (30) and non-WM hypointensities (80)
    aseg = np.array([0, 3, 47, 10, 60, 2, 16, 4, 24, 63, 30, 80, 255])
    expected = np.array([0, 1, 1, 2, 2, 3, 3, 4, 4, 4, 0, 0, 3])
    np.testing.assert_array_equal(bench.coarse_labels(aseg), expected)
    assert bench.coarse_labels(aseg.astype(np.float64)).dtype == np.uint8


def test_aseg_groups_do_not_overlap():
    numbers = [n for group in bench.ASEG_GROUPS.values() for n in group]
    assert len(numbers) == len(set(numbers))
    assert list(bench.ASEG_GROUPS) == list(bench.LABEL_NAMES)


def test_to_mni_axes_swaps_the_last_two_axes_and_flips_left_right_and_inferior_superior():
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    out = bench.to_mni_axes(a)
    assert out.shape == (2, 4, 3)
    for i in range(2):
        for j in range(4):
            for k in range(3):
                # out axis 0: flipped axis 0; out axis 1: axis 2; out axis 2: flipped axis 1
                assert out[i, j, k] == a[1 - i, 2 - k, j]


def test_to_label_map_takes_the_argmax_with_the_background_as_one_minus_the_sum():
    probabilities = np.array(
        [
            [0.2, 0.1, 0.6, 0.0],  # white matter wins
            [0.1, 0.1, 0.1, 0.1],  # background 0.6 wins
            [0.0, 0.45, 0.0, 0.3],  # subcortical GM 0.45 > background 0.25
            [0.0, 0.0, 0.0, 0.0],
        ]
    )
    np.testing.assert_array_equal(bench.to_label_map(probabilities), [3, 0, 2, 0])
    one_hot = bench.label_probabilities(np.array([0, 1, 4]))
    np.testing.assert_array_equal(one_hot, [[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]])


def test_dice_per_label_against_hand_counts():
    a = np.array([1, 1, 2, 0, 3])
    b = np.array([1, 0, 2, 2, 0])
    dice = bench.dice_per_label(a, b)
    # label 1: |A| 2, |B| 1, overlap 1; label 2: |A| 1, |B| 2, overlap 1; label 3: only in a; label 4 absent
    np.testing.assert_allclose(dice[:3], [2 / 3, 2 / 3, 0.0])
    assert math.isnan(dice[3])


def test_warp_label_map_samples_the_moving_map_at_grid_plus_ddf():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=(5, 4, 3)).astype(np.uint8)
    ddf = np.zeros((5, 4, 3, 3), np.float32)
    ddf[..., 0] = 1.0  # out[i] = labels[i + 1], the last plane replicated
    ddf[..., 2] = -0.4  # rounds back to the same voxel (nearest neighbour)
    expected = np.concatenate([labels[1:], labels[-1:]], axis=0)
    np.testing.assert_array_equal(bench.warp_label_map(labels, ddf), expected)


def test_segmentation_label_map_keeps_background_below_one_half():
    probabilities = np.array([[0.9, 0.2, 0.1, 0.0], [0.3, 0.4, 0.2, 0.1], [0.1, 0.6, 0.7, 0.0]])
    np.testing.assert_array_equal(bench.segmentation_label_map(probabilities), [1, 0, 3])


def test_mni_label_probabilities_split_grey_matter_by_box_and_depth():
    shape = (40, 40, 40)
    # 2 mm voxels, voxel (20, 20, 20) at MNI (0, 0, 0)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = -40.0
    mask = np.zeros(shape, np.float32)
    mask[2:-2, 2:-2, 2:-2] = 1.0
    grey = np.full(shape, 0.5, np.float32)
    white = np.full(shape, 0.3, np.float32)
    out = bench.mni_label_probabilities(grey, white, mask, affine)
    assert out.shape == shape + (4,)
    inside = mask > 0
    np.testing.assert_allclose(out[..., 0] + out[..., 1], 0.5 * inside)
    np.testing.assert_allclose(out[..., 2], 0.3 * inside)
    np.testing.assert_allclose(out[..., 3], 0.2 * inside, atol=1e-6)
    assert out[20, 20, 20, 1] == 0.5  # MNI (0, 0, 0): in the box, 36 mm deep
    assert out[4, 20, 20, 0] == 0.5  # MNI x = -32 mm: in the box, but 6 mm deep: cortex
    assert out[20, 35, 20, 0] == 0.5  # MNI y = 30 mm: outside the box (y <= 26)


def test_test_pairs_are_balanced_over_pair_types_and_never_self_pairs():
    sources = ["brain_scan", "mni152", "brain_scan", "mni152"]
    pairs = bench.test_pairs(sources, 6, seed=0)
    assert len(pairs) == len(set(pairs)) == 6
    assert all(m != f for m, f in pairs)
    kinds = [bench.pair_type(sources[m], sources[f]) for m, f in pairs]
    assert sorted(kinds) == sorted(["scan-scan", "scan-scan", "mni-mni", "mni-mni", "scan-mni", "scan-mni"])


def test_summary_and_epochs():
    s = bench.summary([1.0, 2.0, 3.0, 4.0])
    assert s["mean"] == 2.5 and s["median"] == 2.5
    assert s["std"] == pytest.approx(math.sqrt(1.25))
    assert s["iqr"] == pytest.approx(3.25 - 1.75)  # linear percentiles: 1.75 and 3.25
    # 24 images -> 12 pairs -> 6 steps of batch 2 per epoch; 40 steps need 7 epochs
    assert bench._epochs(24, 2, 40) == (7, 6)
    assert bench._epochs(3, 4, 5) == (5, 1)


def test_variants_use_the_repository_configs():
    for suffix, _ in bench.VARIANTS.values():
        assert (REPO_ROOT / "config" / f"wssamnet_pp_oasis_{suffix}.yaml").is_file()
    assert tuple(sorted(bench.PAPER, key=lambda v: -bench.PAPER[v][0])) == bench.PAPER_ORDER


def _coarser(anatomy, factor: int):
    """``anatomy`` sampled every ``factor`` voxels (a stand-in source, same physical extent)."""
    g = anatomy.geometry
    step = (slice(None, None, factor),) * 3
    geometry = ImageGeometry(np.asarray(g.spacing) * factor, g.origin, g.direction)
    return type(anatomy)(anatomy.name, anatomy.image[step], anatomy.labels[step], geometry)


def test_data_builder_on_a_tiny_grid(shared_data, tmp_path):
    scan = bench.brain_scan_anatomy(shared_data)
    assert scan.image.shape == (160, 224, 192)  # MNI axes
    # 4 label probabilities on the source grid, each label present, at most one per voxel
    assert scan.labels.shape == scan.image.shape + (4,)
    assert scan.labels.sum(axis=-1).max() == 1.0
    assert np.all(scan.labels.reshape(-1, 4).max(axis=0) == 1.0)
    # every third source voxel (the anti-aliasing of the full-resolution source would take most of the time),
    # and a mirrored copy as the second brain (nilearn's template loads too slowly for a unit test)
    scan = _coarser(scan, 3)
    other = type(scan)("mni152", scan.image[::-1].copy(), scan.labels[::-1].copy(), scan.geometry)
    settings = bench.Settings(shape=(10, 12, 10), spacing_mm=18.0)
    subjects = bench.make_subjects([scan, other], settings, per_brain=2, seed=7)
    assert subjects.images.shape == (4, 10, 12, 10) and subjects.images.dtype == np.float32
    assert subjects.labels.shape == (4, 10, 12, 10) and subjects.labels.dtype == np.uint8
    assert subjects.sources == ["brain_scan", "mni152", "brain_scan", "mni152"]
    for image in subjects.images:
        assert image.min() == pytest.approx(0.0) and image.max() == pytest.approx(1.0)
    assert set(np.unique(subjects.labels)) <= {0, 1, 2, 3, 4}
    # two subjects of one brain differ (each has its own random transform)
    assert np.mean(subjects.labels[0] != subjects.labels[2]) > 0.01
    again = bench.make_subjects([scan, other], settings, per_brain=2, seed=7)
    np.testing.assert_array_equal(again.images, subjects.images)  # seeded
    folder = bench.write_unpaired(tmp_path / "train", subjects)
    label, _ = read_image(f"{folder}/labels/subject_001.nii.gz")
    assert label.shape == (10, 12, 10, 4)
    # the one-hot file decodes back to the integer map (background: no channel set)
    decoded = np.where(label.max(axis=-1) > 0, np.argmax(label, axis=-1) + 1, 0)
    np.testing.assert_array_equal(decoded, subjects.labels[1])

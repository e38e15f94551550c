"""data_scripts/rigid_phantom.py: the CT/MR-like phantom with rigid "bones".

The ground truth is checked with NumPy/SciPy computed here: the Jacobian of the written field inside each
bone (numpy.gradient) against the recorded rotation, det J everywhere, warping the moving labels with
scipy.ndimage.map_coordinates against the fixed labels, the contrasts, and the written files' layout and
geometry. A label-map fixture built here needs no data; the brain_scan cases skip without TFREG_TEST_DATA.
"""

import hashlib
import json
import os

import numpy as np
import pytest
from scipy import ndimage

from data_scripts import rigid_phantom as rp
from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import read_image

#: the fixture's input grid: oblique, anisotropic, shifted, so geometry mistakes show
OBLIQUE = ImageGeometry(
    spacing=(1.0, 1.2, 0.9),
    origin=(-10.0, 4.0, 2.5),
    direction=np.array([[0.0, -1.0, 0.0], [np.cos(0.3), 0.0, np.sin(0.3)], [-np.sin(0.3), 0.0, np.cos(0.3)]]),
)


def fixture_anatomy(shape=(44, 40, 36)):
    """A head (label 2, an ellipsoid) holding two balls 12 and 51 (radius 4.5, 13 voxels apart) and a ventricle
    4; T1-like intensities (balls 0.6, head 0.8, ventricle 0.2) with a smooth texture, 4 voxels of background."""
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=float) for s in shape], indexing="ij"), axis=-1)
    centre = (np.asarray(shape) - 1) / 2.0
    labels = np.zeros(shape, np.int16)
    labels[np.sum(((grid - centre) / (np.asarray(shape) / 2.0 - 4)) ** 2, axis=-1) <= 1] = 2
    labels[np.linalg.norm(grid - centre - [0, -8, 0], axis=-1) <= 3] = 4
    labels[np.linalg.norm(grid - centre - [-11, 3, 0], axis=-1) <= 4.5] = 12
    labels[np.linalg.norm(grid - centre - [11, 3, 0], axis=-1) <= 4.5] = 51
    t1 = np.select([labels == 2, labels == 4, labels > 4], [0.8, 0.2, 0.6], 0.0)
    texture = ndimage.gaussian_filter(np.random.default_rng(3).standard_normal(shape), 2.0)
    return t1 + (labels > 0) * 0.3 * texture, labels


def jacobian(ddf):
    """``(*shape, 3, 3)``: ``J[..., r, c] = d(x_r + u_r) / d x_c``, central differences."""
    grads = np.stack([np.stack(np.gradient(ddf[..., r].astype(np.float64)), axis=-1) for r in range(3)], axis=-2)
    return grads + np.eye(3)


def warp(moving, ddf, order):
    """``moving`` sampled at ``x + ddf(x)`` (tfreg's convention)."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in moving.shape], indexing="ij"), axis=-1)
    return ndimage.map_coordinates(
        moving.astype(np.float64), np.moveaxis(grid + ddf, -1, 0), order=order, mode="nearest"
    )


def dice(a, b):
    return 2.0 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1)


def check_ground_truth(pair, num_labels, linear_dice):
    """The properties the ground truth promises, checked independently of the generator's code."""
    ddf = pair.ddf.astype(np.float64)
    jac = jacobian(ddf)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in ddf.shape[:3]], indexing="ij"), axis=-1)
    for m in pair.motions:
        inside = pair.fixed_label == m.label
        assert inside.sum() > 20
        rotation = np.asarray(m.matrix)
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)  # a rotation...
        assert np.linalg.det(rotation) == pytest.approx(1.0)  # ...proper
        angle = np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1)))
        assert angle <= np.sqrt(3) * rp.MotionParams().max_rotation + 1e-6
        # inside the bone the field's Jacobian IS the rotation (to float32 storage of the field)
        np.testing.assert_allclose(jac[inside], np.broadcast_to(rotation, jac[inside].shape), atol=2e-5)
        np.testing.assert_allclose(np.linalg.det(jac[inside]), 1.0, atol=1e-4)
        jjt = np.einsum("nij,nkj->nik", jac[inside], jac[inside])
        np.testing.assert_allclose(jjt, np.broadcast_to(np.eye(3), jjt.shape), atol=1e-4)
        # and the field is the rigid displacement (R - I)(x - c) + t there
        rel = grid[inside] - np.asarray(m.centre)
        expected = rel @ rotation.T - rel + np.asarray(m.translation)
        np.testing.assert_allclose(ddf[inside], expected, atol=1e-4)
        # a rigid copy: the fixed bone's centroid is c and it has the moving bone's volume
        np.testing.assert_allclose(grid[inside].mean(axis=0), m.centre, atol=0.5)
        moving_volume = (pair.moving_label == m.label).sum()
        assert abs(inside.sum() - moving_volume) <= 0.1 * moving_volume
    # smooth and invertible everywhere
    det = np.linalg.det(jac)
    assert det.min() > 0 and det.min() == pytest.approx(pair.min_det_jacobian, abs=1e-4)
    # warping the moving labels with the field gives the fixed labels; the opposite sign does not
    np.testing.assert_array_equal(warp(pair.moving_label, ddf, order=0), pair.fixed_label)
    for k in range(1, num_labels + 1):
        moving_k = (pair.moving_label == k).astype(float)
        fixed_k = pair.fixed_label == k
        assert dice(warp(moving_k, ddf, order=1) > 0.5, fixed_k) > linear_dice
        assert dice(warp(moving_k, ddf, order=1) > 0.5, fixed_k) > dice(warp(moving_k, -ddf, order=1) > 0.5, fixed_k)
    # contrasts: bones bright in the moving "CT", dark in the fixed "MR"
    for image, labels, brighter in (
        (pair.moving_image, pair.moving_label, True),
        (pair.fixed_image, pair.fixed_label, False),
    ):
        assert image.dtype == np.float32 and 0.0 <= image.min() and image.max() <= 1.0
        bone = labels > 0
        soft = ndimage.binary_dilation(bone, iterations=3) & ~ndimage.binary_dilation(bone, iterations=1)
        assert (
            (image[bone].mean() > image[soft].mean() + 0.3)
            if brighter
            else (image[bone].mean() < image[soft].mean() - 0.3)
        )


@pytest.fixture(scope="module")
def fixture_base():
    t1, labels = fixture_anatomy()
    return rp.prepare_base(t1, labels, (12, 51), (32, 32, 32), OBLIQUE, extra_labels=(4,), crop_margin=2)


def test_base_crops_resamples_and_keeps_the_geometry(fixture_base):
    t1, labels = fixture_anatomy()
    nonzero = np.argwhere(labels > 0)
    start, stop = nonzero.min(0) - 2, nonzero.max(0) + 3
    assert fixture_base.crop_start == tuple(start) and fixture_base.source_shape == labels.shape
    factors = (stop - start) / 32.0
    np.testing.assert_allclose(fixture_base.geometry.spacing, np.asarray(OBLIQUE.spacing) * factors)
    # output voxel k lies at source index start + (k + 0.5) f - 0.5: compare physical points
    for k in ([0, 0, 0], [31, 5, 17]):
        source_index = start + (np.asarray(k) + 0.5) * factors - 0.5
        expected = np.asarray(OBLIQUE.origin) + OBLIQUE.direction @ (np.asarray(OBLIQUE.spacing) * source_index)
        got = np.asarray(fixture_base.geometry.origin) + OBLIQUE.direction @ (
            np.asarray(fixture_base.geometry.spacing) * k
        )
        np.testing.assert_allclose(got, expected, atol=1e-9)
    # the balls keep their volume in mm^3 (half-covered voxels), the ventricle is the extra label 3
    voxel = np.prod(fixture_base.geometry.spacing)
    source_voxel = np.prod(OBLIQUE.spacing)
    for k, value in ((1, 12), (2, 51), (3, 4)):
        volume = (fixture_base.structures == k).sum() * voxel
        assert volume == pytest.approx((labels == value).sum() * source_voxel, rel=0.25)
    assert fixture_base.t1.max() <= 1.0 and fixture_base.t1.min() >= 0.0
    assert np.all(fixture_base.bone_fraction[fixture_base.structures == 1] >= 0.5)


def test_pairs_are_rigid_inside_the_bones_smooth_elsewhere_and_warp_moving_onto_fixed(fixture_base):
    for index in range(3):
        pair = rp.make_phantom_pair(fixture_base, seed=5, index=index)
        check_ground_truth(pair, 2, linear_dice=0.9)
        # the rigid region (bone + margin) holds the bone; outside the regions the weights fall to 0 (soft field)
        for m in pair.motions:
            assert np.all(pair.rigid_regions[pair.fixed_label == m.label] == m.label)
        assert pair.moving_extra_label.max() == 1 and pair.fixed_extra_label.max() == 1
        assert pair.record["min_det_jacobian"] == pair.min_det_jacobian
    again = rp.make_phantom_pair(fixture_base, seed=5, index=1)
    other = rp.make_phantom_pair(fixture_base, seed=6, index=1)
    first = rp.make_phantom_pair(fixture_base, seed=5, index=1)
    np.testing.assert_array_equal(again.ddf, first.ddf)
    np.testing.assert_array_equal(again.fixed_image, first.fixed_image)
    assert not np.allclose(again.ddf, other.ddf)


def test_rigid_weights_are_one_on_the_core_and_zero_beyond_the_ramp():
    cores = [np.zeros((30, 12, 12), bool) for _ in range(2)]
    cores[0][4:8, 4:8, 4:8] = True
    cores[1][16:20, 4:8, 4:8] = True  # 9 voxels from core 0
    w = rp.rigid_weights(cores, ramp=4.0)
    assert np.all(w[0][cores[0]] == 1.0) and np.all(w[1][cores[0]] == 0.0)
    assert np.all(w[1][cores[1]] == 1.0) and np.all(w[0][cores[1]] == 0.0)
    distance = ndimage.distance_transform_edt(~cores[0])
    assert np.all(w[0][distance >= 4.0] == 0.0)
    t = 1.0 - distance[6, 6, 10] / 4.0  # 2 voxels from core 0 along axis 2, nowhere near core 1
    assert w[0][6, 6, 10] == pytest.approx(3 * t**2 - 2 * t**3)
    assert np.all(w.sum(axis=0) <= 1.0 + 1e-12) and w.min() >= 0.0


def test_write_phantom_layout_geometry_record_and_cli(tmp_path, fixture_base):
    out = tmp_path / "phantom"
    record = rp.write_phantom(fixture_base, str(out), (2, 1, 1), seed=3, source="fixture")
    assert record["splits"] == {"train": ["pair_000", "pair_001"], "valid": ["pair_002"], "test": ["pair_003"]}
    folders = set(rp.PAIR_FOLDERS) | set(rp.EXTRA_FOLDERS)
    assert sorted(os.listdir(out)) == ["checksums.sha256", "conversion.json", "test", "train", "valid"]
    saved = json.load(open(out / "conversion.json"))
    assert saved["num_labels"] == 2 and saved["rigid_labels"] == {"1": 12, "2": 51}
    assert saved["motion"]["ramp"] == 5.0 and saved["contrast"]["ct_bone"] == 1.0
    for split, names in record["splits"].items():
        assert set(os.listdir(out / split)) == folders
        for name in names:
            pair = rp.make_phantom_pair(fixture_base, 3, saved["pairs"][name]["index"])
            files = {f: str(out / split / f / f"{name}.nii.gz") for f in folders}
            ddf, geometry = read_image(files["ddfs"])
            assert ddf.shape == (32, 32, 32, 3) and geometry.allclose(fixture_base.geometry)
            np.testing.assert_allclose(geometry.spacing, saved["spacing_mm"])
            np.testing.assert_array_equal(ddf, pair.ddf)
            for folder in ("moving_labels", "fixed_labels", "moving_extra_labels", "fixed_extra_labels"):
                labels, g = read_image(files[folder], dtype=None)
                assert labels.dtype == np.uint8 and labels.shape == (32, 32, 32) and g.allclose(geometry)
            moving_label, _ = read_image(files["moving_labels"], dtype=None)
            assert set(np.unique(moving_label)) == {0, 1, 2}
            fixed_image, _ = read_image(files["fixed_images"])
            np.testing.assert_array_equal(fixed_image, pair.fixed_image)
            motion = saved["pairs"][name]["motions"][1]
            assert motion["source_label"] == 51 and motion["name"] == "Right-Putamen"
            np.testing.assert_allclose(motion["rotation_matrix"], pair.motions[1].matrix)
            np.testing.assert_allclose(motion["translation_voxel"], pair.motions[1].translation)
    for line in open(out / "checksums.sha256"):
        digest, rel = line.rstrip("\n").split("  ", 1)
        assert hashlib.sha256(open(out / rel, "rb").read()).hexdigest() == digest
    with pytest.raises(FileExistsError, match="not empty"):
        rp.write_phantom(fixture_base, str(out), (1, 0, 0))
    rp.write_phantom(fixture_base, str(out), (1, 0, 0), overwrite=True)
    assert sorted(os.listdir(out)) == ["checksums.sha256", "conversion.json", "train"]

    t1, labels = fixture_anatomy()
    np.savez(tmp_path / "scan.npz", vol=t1, seg=labels)
    argv = [str(tmp_path / "scan.npz"), str(tmp_path / "cli"), "--shape", "24", "24", "24", "--pairs", "1", "0", "1"]
    assert rp.main(argv + ["--spacing", "1", "1.2", "0.9", "--margin", "1", "--ramp", "4", "--seed", "2"]) == 0
    saved = json.load(open(tmp_path / "cli" / "conversion.json"))
    assert (
        saved["motion"]["margin"] == 1.0 and saved["seed"] == 2 and sorted(saved["pairs"]) == ["pair_000", "pair_001"]
    )
    _, geometry = read_image(str(tmp_path / "cli" / "test" / "moving_images" / "pair_001.nii.gz"))
    np.testing.assert_allclose(geometry.spacing, saved["spacing_mm"])
    assert rp.main(argv) == 1  # the folder exists: --overwrite needed
    assert rp.main(["synthetic", str(tmp_path / "syn"), "--shape", "32", "32", "32", "--pairs", "1", "0", "0"]) == 0


def test_bad_input_is_refused_with_a_clear_message(tmp_path, capsys):
    t1, labels = fixture_anatomy()
    with pytest.raises(ValueError, match=r"rigid_labels: label value\(s\) \[10\] are absent"):
        rp.prepare_base(t1, labels, (12, 10))
    with pytest.raises(ValueError, match="shape must hold 2 or 3 positive integers"):
        rp.prepare_base(t1, labels, shape=(32, 0, 32))
    with pytest.raises(ValueError, match="shape must hold 2 or 3 positive integers"):
        rp.prepare_base(t1, labels, shape=(32, -4, 32))
    with pytest.raises(ValueError, match="label map shape"):
        rp.prepare_base(t1, labels[:-1])
    with pytest.raises(ValueError, match="integer label numbers"):
        rp.prepare_base(t1, labels + 0.5)
    with pytest.raises(ValueError, match="share \\[12\\]"):
        rp.prepare_base(t1, labels, (12, 51), extra_labels=(12,))
    with pytest.raises(ValueError, match="0 is the background"):
        rp.prepare_base(t1, labels, (0, 12))
    with pytest.raises(ValueError, match="no voxel left at shape"):
        rp.prepare_base(t1, labels, (12, 51), shape=(4, 4, 4))
    base = rp.prepare_base(t1, labels, (12, 51), (32, 32, 32))
    with pytest.raises(ValueError, match="rigid structures 12 and 51 are .* voxels apart"):
        rp.make_phantom_pair(base, motion=rp.MotionParams(margin=3, ramp=8))
    with pytest.raises(ValueError, match="ramp must be a finite positive number"):
        rp.MotionParams(ramp=0)
    with pytest.raises(ValueError, match="max_translation must be a finite non-negative"):
        rp.MotionParams(max_translation=-1)
    with pytest.raises(ValueError, match="ct_bone must lie in"):
        rp.ContrastParams(ct_bone=2)
    with pytest.raises(ValueError, match="split_counts"):
        rp.write_phantom(base, str(tmp_path / "x"), (0, 0, 0))
    with pytest.raises(rp.FoldingError, match="no valid ground truth in 2 draws"):
        rp.make_phantom_pair(base, motion=rp.MotionParams(max_rotation=60, max_translation=6, ramp=2), max_attempts=2)
    assert not os.path.exists(tmp_path / "x")
    assert rp.main([str(tmp_path / "missing.npz"), str(tmp_path / "y")]) == 1
    assert "missing.npz does not exist" in capsys.readouterr().err


@pytest.fixture(scope="module")
def brain_scan():
    from tests.conftest import data_root

    path = data_root() / "brain_scan" / "test_scan.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found (set TFREG_TEST_DATA to the shared/data folder)")
    with np.load(path) as archive:
        return archive["vol"], archive["seg"]


def test_brain_scan_phantom_at_32_cubed(brain_scan):
    """The default structures (left and right putamen) of the real brain, down-sampled to 32^3 (about 5 mm):
    they are 7 voxels apart there, so the margin and ramp are made small to fit. The nearest-neighbour warp
    reproduces the fixed labels exactly; a linear warp thresholded at 0.5 loses boundary voxels of these
    45-voxel structures (3 voxels thick), hence the lower Dice bound for it."""
    vol, seg = brain_scan
    base = rp.prepare_base(vol, seg, shape=(32, 32, 32))
    assert base.rigid_labels == (12, 51)
    motion = rp.MotionParams(
        max_rotation=3, max_translation=0.5, max_displacement=1, control_spacing=8, margin=1, ramp=3
    )
    for index in range(2):
        pair = rp.make_phantom_pair(base, seed=0, index=index, motion=motion)
        check_ground_truth(pair, 2, linear_dice=0.7)


def test_brain_scan_phantom_at_64_cubed_with_the_defaults(brain_scan):
    vol, seg = brain_scan
    base = rp.prepare_base(vol, seg)
    np.testing.assert_allclose(base.geometry.spacing, [155 / 64, 161 / 64, 191 / 64])
    pair = rp.make_phantom_pair(base, seed=0, index=0)
    check_ground_truth(pair, 2, linear_dice=0.8)


def test_two_dimensional_phantom():
    """A 2-D anatomy: one rotation angle per bone, the field's 2 x 2 Jacobian is that rotation inside the bone."""
    t1, labels = rp.synthetic_anatomy((64, 64), seed=1)
    base = rp.prepare_base(t1, labels, shape=(48, 48))
    pair = rp.make_phantom_pair(base, seed=2)
    assert pair.ddf.shape == (48, 48, 2) and pair.moving_image.shape == (48, 48)
    jac = np.stack([np.stack(np.gradient(pair.ddf[..., r].astype(np.float64)), axis=-1) for r in range(2)], axis=-2)
    jac += np.eye(2)
    assert np.linalg.det(jac).min() > 0
    for m in pair.motions:
        angle = np.radians(m.angles_deg[0])
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        inside = pair.fixed_label == m.label
        np.testing.assert_allclose(jac[inside], np.broadcast_to(rotation, jac[inside].shape), atol=2e-5)

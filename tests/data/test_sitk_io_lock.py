"""tfreg/data/sitk_io_lock.py: SimpleITK file calls from parallel loader threads never overlap.

CI once aborted ("Fatal Python error: Aborted") with two tf.data threads inside SimpleITK's
``ReadImageInformation`` at the same time. These tests wrap SimpleITK's file calls with a probe that
counts how many threads are inside at once, and fail if any two overlap.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import SimpleITK as sitk

from tfreg.data.image_io import read_image, read_image_info, save_image
from tfreg.data.transform_io import transform_units


class _OverlapProbe:
    """Counts the threads inside the wrapped calls; ``peak`` is the most seen at once."""

    def __init__(self):
        self._lock = threading.Lock()
        self.inside = 0
        self.peak = 0
        self.calls = 0

    def wrap(self, function):
        def probed(*args, **kwargs):
            with self._lock:
                self.inside += 1
                self.calls += 1
                self.peak = max(self.peak, self.inside)
            try:
                time.sleep(0.005)  # widen the window in which an unlocked second thread would enter
                return function(*args, **kwargs)
            finally:
                with self._lock:
                    self.inside -= 1

        return probed


@pytest.fixture
def probe(monkeypatch):
    """Wraps sitk.ReadImage, sitk.WriteImage and ImageFileReader.ReadImageInformation."""
    probe = _OverlapProbe()
    monkeypatch.setattr(sitk, "ReadImage", probe.wrap(sitk.ReadImage))
    monkeypatch.setattr(sitk, "WriteImage", probe.wrap(sitk.WriteImage))
    monkeypatch.setattr(
        sitk.ImageFileReader, "ReadImageInformation", probe.wrap(sitk.ImageFileReader.ReadImageInformation)
    )
    return probe


def _files(tmp_path, suffix, count=6):
    """``count`` small 3-D images with distinct known values; returns [(path, array)]."""
    rng = np.random.default_rng(0)
    out = []
    for index in range(count):
        array = rng.integers(0, 5, size=(4, 5, 6)).astype(np.int16)
        path = str(tmp_path / f"image{index}{suffix}")
        save_image(array, path)
        out.append((path, array))
    return out


@pytest.mark.parametrize("suffix", [".mha", ".nii.gz"])
def test_parallel_reads_never_overlap_and_return_each_file(tmp_path, probe, suffix):
    # .mha goes through sitk.ReadImage; NIfTI files only through ReadImageInformation (their voxels are read
    # by tfreg.data.nifti_raw, outside the lock)
    files = _files(tmp_path, suffix) * 4
    probe.calls = 0

    def read(item):
        path, expected = item
        shape, _ = read_image_info(path)
        array, _ = read_image(path)
        return shape, array, expected

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(read, files))
    assert probe.calls >= 2 * len(files)  # the probe really saw the calls
    assert probe.peak == 1, f"{probe.peak} threads were inside SimpleITK's file calls at once"
    for shape, array, expected in results:
        assert shape == expected.shape
        np.testing.assert_array_equal(array, expected.astype(np.float32))


def test_parallel_writes_and_transform_headers_never_overlap(tmp_path, probe):
    arrays = [np.full((3, 4, 5, 3), float(index), np.float32) for index in range(8)]

    def write_then_inspect(index):
        path = str(tmp_path / f"field{index}.mha")
        save_image(arrays[index], path)
        return transform_units(path)

    with ThreadPoolExecutor(max_workers=4) as pool:
        units = list(pool.map(write_then_inspect, range(len(arrays))))
    assert units == ["physical"] * len(arrays)  # a vector .mha is an ITK displacement field
    assert probe.peak == 1, f"{probe.peak} threads were inside SimpleITK's file calls at once"

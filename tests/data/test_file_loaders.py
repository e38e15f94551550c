"""tfreg/data/file_loaders: discovery, IDs, DeepReg's order, groups, geometry and errors."""

import os

import h5py
import numpy as np
import pytest

import tfreg.data  # noqa: F401  (registers the loaders)
from tests.data.helpers import OBLIQUE, image, label, write_h5, write_nifti_folder
from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.file_loaders import H5FileLoader, NiftiFileLoader
from tfreg.data.file_loaders.sitk import MetaImageFileLoader, SITKFileLoader
from tfreg.registry import REGISTRY


def test_registered_names():
    names = REGISTRY.names("file_loader_class")
    assert {"nifti", "h5", "sitk", "mha", "nrrd"} <= set(names)
    assert REGISTRY.get("file_loader_class", "nifti") is NiftiFileLoader


def test_nifti_order_ids_and_recursion(tmp_path):
    """sorted((dir, relpath, suffix)) over all dirs: dirs sort by path, not config order."""
    b, a = str(tmp_path / "b"), str(tmp_path / "a")
    write_nifti_folder(os.path.join(b, "images"), {"x2": image((3, 3, 3), 0), "sub/x0": image((3, 3, 3), 1)})
    write_nifti_folder(os.path.join(a, "images"), {"x9": image((3, 3, 3), 2)}, suffix=".nii")
    write_nifti_folder(os.path.join(a, "images"), {"x1": image((3, 3, 3), 3)})
    (tmp_path / "a" / "images" / "notes.txt").write_text("ignored")
    loader = NiftiFileLoader(dir_paths=[b, a], name="images", grouped=False)
    assert loader.get_data_ids() == [(a, "x1"), (a, "x9"), (b, os.path.join("sub", "x0")), (b, "x2")]
    assert loader.get_num_images() == 4
    np.testing.assert_array_equal(loader.get_data(2), image((3, 3, 3), 1))
    assert loader.get_data(0).dtype == np.float32
    assert loader.get_source(1) == os.path.join(a, "images", "x9.nii")
    assert loader.get_shape(3) == (3, 3, 3)


def test_nifti_geometry_and_squeeze(tmp_path):
    write_nifti_folder(str(tmp_path / "labels"), {"c": label((4, 5, 6), 1, 0)[..., None]}, geometry=OBLIQUE)
    loader = NiftiFileLoader([str(tmp_path)], "labels", False)
    assert loader.get_shape(0) in ((4, 5, 6), (4, 5, 6, 1))  # ITK may drop a trailing axis of size 1
    assert loader.get_data(0).shape == (4, 5, 6)
    assert loader.get_geometry(0).allclose(OBLIQUE)
    write_h5(str(tmp_path / "labels.h5"), {"c": label((4, 5, 6), 1, 0)[..., None]})
    h5_loader = H5FileLoader([str(tmp_path)], "labels", False)
    assert h5_loader.get_shape(0) == (4, 5, 6, 1)
    assert h5_loader.get_data(0).shape == (4, 5, 6)  # a single label channel is squeezed, as in DeepReg
    h5_loader.close()


def test_nifti_grouped_structure(tmp_path):
    folder = str(tmp_path / "images")
    write_nifti_folder(
        folder,
        {
            f"{g}/{i}": image((2, 2, 2), n)
            for n, (g, i) in enumerate([("group2", "b"), ("group2", "a"), ("group10", "z"), ("group1", "y")])
        },
    )
    loader = NiftiFileLoader([str(tmp_path)], "images", grouped=True)
    # groups sorted as strings: group1 < group10 < group2
    assert loader.get_num_groups() == 3
    assert loader.get_num_images_per_group() == [1, 1, 2]
    assert loader.get_source((2, 0)).endswith(os.path.join("group2", "a.nii.gz"))
    assert loader.get_data_ids()[0] == (str(tmp_path), "group1", "y")
    with pytest.raises(ValueError, match="grouped"):
        loader.get_data(0)
    with pytest.raises(IndexError):
        loader.get_data((2, 2))


def test_grouped_file_outside_group_is_an_error(tmp_path):
    write_nifti_folder(str(tmp_path / "images"), {"g/a": image((2, 2, 2), 0), "loose": image((2, 2, 2), 1)})
    with pytest.raises(DataError, match="loose.nii.gz"):
        NiftiFileLoader([str(tmp_path)], "images", grouped=True)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataNotFoundError, match=str(tmp_path / "images")):
        NiftiFileLoader([str(tmp_path)], "images", False)
    (tmp_path / "images").mkdir()
    with pytest.raises(DataNotFoundError, match="no NIfTI file"):
        NiftiFileLoader([str(tmp_path)], "images", False)
    with pytest.raises(ValueError, match="repeated"):
        NiftiFileLoader([str(tmp_path), str(tmp_path)], "images", False)
    with pytest.raises(ValueError, match="list"):
        NiftiFileLoader(str(tmp_path), "images", False)


def test_duplicate_id_is_an_error(tmp_path):
    write_nifti_folder(str(tmp_path / "images"), {"c": image((2, 2, 2), 0)})
    write_nifti_folder(str(tmp_path / "images"), {"c": image((2, 2, 2), 1)}, suffix=".nii")
    with pytest.raises(DataError, match="same data ID.*c.nii"):
        NiftiFileLoader([str(tmp_path)], "images", False)


def test_sitk_and_mha_loaders(tmp_path):
    write_nifti_folder(str(tmp_path / "images"), {"a": image((2, 3, 4), 0)}, suffix=".mha", geometry=OBLIQUE)
    write_nifti_folder(str(tmp_path / "images"), {"b": image((2, 3, 4), 1)}, suffix=".nrrd")
    write_nifti_folder(str(tmp_path / "images"), {"c": image((2, 3, 4), 2)})
    assert MetaImageFileLoader([str(tmp_path)], "images", False).get_num_images() == 1
    every = SITKFileLoader([str(tmp_path)], "images", False)
    assert [i[1] for i in every.get_data_ids()] == ["a", "b", "c"]
    assert every.get_geometry(0).allclose(OBLIQUE)
    np.testing.assert_array_equal(every.get_data(1), image((2, 3, 4), 1))


def test_h5_order_keys_and_geometry(tmp_path):
    b, a = str(tmp_path / "b"), str(tmp_path / "a")
    write_h5(os.path.join(b, "images.h5"), {"k2": image((2, 2, 2), 0), "k10": image((2, 2, 2), 1)})
    write_h5(os.path.join(a, "images.h5"), {"k1": image((2, 2, 2), 2)})
    with h5py.File(os.path.join(a, "images.h5"), "a") as f:
        for name, value in OBLIQUE.to_dict().items():
            f["k1"].attrs[name] = value
    loader = H5FileLoader([b, a], "images", False)
    # dirs in config order, keys sorted as strings
    assert loader.get_data_ids() == [(b, "k10"), (b, "k2"), (a, "k1")]
    np.testing.assert_array_equal(loader.get_data(0), image((2, 2, 2), 1))
    assert loader.get_source(2) == os.path.join(a, "images.h5") + ":k1"
    assert loader.get_geometry(2).allclose(OBLIQUE)
    assert loader.get_geometry(0) == loader.get_geometry(0).identity(3)
    loader.close()
    with pytest.raises(DataError, match="closed"):
        loader.get_data(0)


def test_h5_grouped(tmp_path):
    write_h5(
        str(tmp_path / "images.h5"),
        {k: image((2, 2, 2), n) for n, k in enumerate(["group-2-1", "group-1-2", "group-1-10", "group-10-1"])},
    )
    loader = H5FileLoader([str(tmp_path)], "images", grouped=True)
    # groups "1" < "10" < "2"; in a group keys sorted as strings: group-1-10 < group-1-2
    assert loader.get_num_images_per_group() == [2, 1, 1]
    assert loader.get_source((0, 0)).endswith(":group-1-10")
    assert loader.get_source((2, 0)).endswith(":group-2-1")
    loader.close()


def test_h5_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="images.h5"):
        H5FileLoader([str(tmp_path)], "images", False)
    write_h5(str(tmp_path / "images.h5"), {"group-1-1": image((2, 2, 2), 0), "case3": image((2, 2, 2), 1)})
    with pytest.raises(DataError, match=r"group-<G>-<I>.*case3"):
        H5FileLoader([str(tmp_path)], "images", grouped=True)
    (tmp_path / "labels.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(DataError, match="labels.h5"):
        H5FileLoader([str(tmp_path)], "labels", grouped=False)
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    with pytest.raises(DataNotFoundError, match="empty.h5"):
        H5FileLoader([str(tmp_path)], "empty", grouped=False)
    with h5py.File(tmp_path / "nested.h5", "w") as f:
        f.create_group("sub").create_dataset("x", data=np.zeros(3))
    with pytest.raises(DataError, match="sub"):
        H5FileLoader([str(tmp_path)], "nested", grouped=False)


def test_symlink_loops_and_folders_listed_twice_are_refused(tmp_path):
    """A ``loop -> .`` link made dozens of copies of every sample; ``dir`` and ``dir/`` doubled the data."""
    from tests.data.helpers import write_unpaired

    root = write_unpaired(str(tmp_path / "d"), ["a", "b"], num_labels=None)
    with pytest.raises(ValueError, match="the same folder twice"):
        NiftiFileLoader(dir_paths=[root, root + "/"], name="images", grouped=False)
    os.symlink(".", os.path.join(root, "images", "loop"))
    with pytest.raises(DataError, match=r"is found twice, as a\.nii\.gz and loop/a\.nii\.gz.*remove the link"):
        NiftiFileLoader(dir_paths=[root], name="images", grouped=False)

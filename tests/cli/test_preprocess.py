"""tfreg_preprocess (tfreg.cli.preprocess): the console script end to end, in-process, on a tiny folder."""

import io
import json
import os

import numpy as np
import pytest

from tests.data.rigid_phantom import rigid, write_phantom_folder
from tfreg.cli.preprocess import build_parser, main
from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import read_image


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("tiny"))
    # 2 mm voxels: the 48 mm phantom on 24-voxel grids
    write_phantom_folder(
        folder,
        {"case1": rigid(3, (0.0, 0.0, 0.1), (2.0, 0.0, -2.0))},
        fixed_shape=(24, 24, 24),
        fixed_geometry=ImageGeometry((2.0,) * 3, (0.0,) * 3, np.eye(3)),
        moving_shape=(24, 24, 24),
        moving_geometry=ImageGeometry((2.0,) * 3, (1.0, -1.0, 0.0), np.eye(3)),
    )
    return folder


def test_end_to_end(tiny, tmp_path, capsys):
    out = str(tmp_path / "prep")
    argv = ["-i", tiny, "-o", out, "--spacing", "2.5", "--align", "label", "--align_labels", "1", "2"]
    argv += [
        "--crop_size",
        "16",
        "16",
        "12",
        "--crop_labels",
        "1",
        "--percentiles",
        "2",
        "98",
        "--keep_labels",
        "2",
        "1",
    ]
    argv += ["--iterations", "50", "--seed", "3", "-q"]
    assert main(argv) == 0
    assert f"1 preprocessed pair(s) written to {out}" in capsys.readouterr().out
    for sub in ("moving_images", "fixed_images", "moving_labels", "fixed_labels"):
        array, geometry = read_image(os.path.join(out, sub, "case1.nii.gz"), dtype=None)
        assert array.shape == (16, 16, 12) and geometry.spacing == pytest.approx((2.5,) * 3)
    with open(os.path.join(out, "transforms", "case1.json"), encoding="utf-8") as stream:
        record = json.load(stream)
    options = record["options"]
    assert options["spacing"] == [2.5] and options["align_labels"] == [1, 2] and options["keep_labels"] == [2, 1]
    assert options["percentiles"] == [2.0, 98.0] and options["registration"]["iterations"] == 50
    assert options["registration"]["seed"] == 3 and record["rigid"]["method"] == "label"
    assert os.path.isfile(os.path.join(out, "transforms", "case1.tfm"))
    # a second run into the same folder is refused, then allowed with --overwrite
    assert main(argv) == 1
    assert "tfreg_preprocess: error: output folder" in capsys.readouterr().err
    assert main(argv + ["--overwrite", "--percentiles", "none"]) == 0
    with open(os.path.join(out, "transforms", "case1.json"), encoding="utf-8") as stream:
        assert json.load(stream)["options"]["percentiles"] is None


def test_progress_bar_is_drawn(tiny, tmp_path, monkeypatch):
    stream = io.StringIO()
    stream.isatty = lambda: True  # the bar draws only on a terminal
    monkeypatch.setattr("sys.stderr", stream)
    assert main(["-i", tiny, "-o", str(tmp_path / "p"), "--percentiles", "none"]) == 0
    assert "preprocess 1/1 [" in stream.getvalue()


def test_bad_input_messages(tiny, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["-i", tiny, "-o", str(out), "--align", "label", "--align_labels", "7"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tfreg_preprocess: error: label file ") and "moving_labels/case1.nii.gz" in err
    assert "has no voxel of label value(s) [7]" in err and not out.exists()
    assert main(["-i", tiny, "-o", str(out), "--spacing", "0.1", "--max_memory_gb", "0.01"]) == 1
    err = capsys.readouterr().err
    assert "would need about" in err and "480x480x480 (110592000 voxels)" in err and not out.exists()
    assert main(["-i", tiny, "-o", str(out), "--align", "label"]) == 1
    assert "align='label' needs align_labels" in capsys.readouterr().err
    assert main(["-i", str(tmp_path / "nothing"), "-o", str(out)]) == 1
    assert "input folder" in capsys.readouterr().err and not out.exists()


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in ("--spacing", "--align", "--align_labels", "--crop_size", "--crop_labels", "--percentiles"):
        assert flag in text
    for flag in ("--keep_labels", "--max_memory_gb", "--overwrite", "--shrink_factors", "--mi_bins", "--seed"):
        assert flag in text
    for flag in ("--align_transform", "--shape", "rigid_affine"):
        assert flag in text


def test_csv_input_with_image_alignment(tiny, tmp_path):
    rows = ["pair_id,moving_image,fixed_image,moving_label,fixed_label"]
    rows.append(
        ",".join(
            ["from_csv"]
            + [
                os.path.join(tiny, s, "case1.nii.gz")
                for s in ("moving_images", "fixed_images", "moving_labels", "fixed_labels")
            ]
        )
    )
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "prep"
    assert main(["-i", str(tmp_path / "pairs.csv"), "-o", str(out), "--align", "image", "--mi_bins", "16", "-q"]) == 0
    with open(out / "transforms" / "from_csv.json", encoding="utf-8") as stream:
        record = json.load(stream)
    assert (
        record["rigid"]["metric"] == "mattes_mutual_information" and record["options"]["registration"]["mi_bins"] == 16
    )
    assert sorted(os.listdir(out / "fixed_images")) == ["from_csv.nii.gz"]


def test_affine_alignment_and_shape(tiny, tmp_path, capsys):
    out = tmp_path / "affine"
    argv = ["-i", tiny, "-o", str(out), "--align", "image", "--align_transform", "affine", "--shape", "16", "16", "12"]
    assert main(argv + ["--iterations", "30", "-q"]) == 0
    with open(out / "transforms" / "case1.json", encoding="utf-8") as stream:
        record = json.load(stream)
    assert record["rigid"]["type"] == "AffineTransform" and record["options"]["align_transform"] == "affine"
    assert record["output_grid"]["size"] == [16, 16, 12] and record["options"]["shape"] == [16, 16, 12]
    image, geometry = read_image(str(out / "moving_images" / "case1.nii.gz"))
    assert image.shape == (16, 16, 12)
    # the extent of the fixed grid as read is kept: size * spacing over the 16 x 16 x 12 voxels
    grid = record["input_grids"]["fixed"]
    np.testing.assert_allclose(
        np.asarray(geometry.spacing) * (16, 16, 12), np.asarray(grid["spacing"]) * grid["size"], rtol=1e-5
    )
    # an affine stage needs the images: refused with align label, naming the option
    bad = ["-i", tiny, "-o", str(tmp_path / "bad"), "--align", "label", "--align_labels", "1"]
    assert main(bad + ["--align_transform", "affine"]) == 1
    assert "align_transform='affine' is aligned on the images" in capsys.readouterr().err

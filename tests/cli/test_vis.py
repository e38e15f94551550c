"""tfreg_vis / deepreg_vis command line: DeepReg's flags, the named modes, errors and start-up imports."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.vis._png import gif_info, png_size
from tests.vis._synthetic import write_case, write_metric_csv
from tfreg.cli.vis import MODES, main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return write_case(tmp_path_factory.mktemp("cli_vis_case"))


def test_help_lists_every_mode(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for mode, description in MODES.items():
        assert mode in text and description in text
    for flag in (
        "--mode",
        "--image-paths",
        "--ddf-path",
        "--save-path",
        "--interval",
        "--num-interval",
        "--slice-inds",
        "--fname",
        "--col-titles",
        "--size",
    ):
        assert flag in text
    assert main(["grid", "--help"]) == 0
    assert "--step" in capsys.readouterr().out


def test_import_does_not_load_tensorflow():
    code = "import tfreg.cli.vis, sys; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_deepreg_mode2_default_name_and_titles(case, tmp_path, capsys):
    paths = ",".join(case[n] for n in ("moving", "warped", "fixed"))
    assert (
        main(
            [
                "-m",
                "2",
                "-i",
                paths,
                "-s",
                str(tmp_path / "out"),
                "--slice-inds",
                "0,1,2",
                "--col-titles",
                "moving,warped,fixed",
                "--dpi",
                "30",
            ]
        )
        == 0
    )
    out = tmp_path / "out" / "visualisation.png"
    assert f"saved {out}" in capsys.readouterr().out
    png_size(out)


def test_deepreg_modes_0_1_3(case, tmp_path):
    assert main(["-m", "0", "-i", case["fixed"], "-s", str(tmp_path), "--dpi", "20"]) == 0
    assert gif_info(tmp_path / "fixed.gif")[2] == 16
    assert (
        main(
            [
                "-m",
                "1",
                "-i",
                case["moving"],
                "--ddf-path",
                case["ddf"],
                "-s",
                str(tmp_path),
                "--slice-inds",
                "4",
                "--num-interval",
                "3",
                "--interval",
                "100",
                "--dpi",
                "20",
            ]
        )
        == 0
    )
    assert gif_info(tmp_path / "moving_slice_4.gif")[2:] == (3, 100)
    assert (
        main(
            [
                "-m",
                "3",
                "-i",
                f"{case['fixed']},{case['moving']}",
                "--size",
                "1,2",
                "--fname",
                "t.gif",
                "-s",
                str(tmp_path),
                "--dpi",
                "20",
            ]
        )
        == 0
    )
    assert gif_info(tmp_path / "t.gif")[2] == 16


@pytest.mark.parametrize(
    "argv",
    [
        ["montage", "--moving", "{moving}", "--warped", "{warped}", "--fixed", "{fixed}", "--slices", "3,8"],
        ["overlay", "--fixed", "{fixed}", "--warped", "{warped}", "--moving", "{moving}", "--slice", "8"],
        ["checkerboard", "--fixed", "{fixed}", "--warped", "{warped}", "--tiles", "4,3", "--axis", "0"],
        [
            "contours",
            "--image",
            "{fixed}",
            "--fixed-label",
            "{fixed_label}",
            "--moving-label",
            "{moving_label}",
            "--warped-label",
            "{warped_label}",
        ],
        ["grid", "--ddf", "{ddf}", "--image", "{fixed}", "--step", "3"],
        ["jacobian", "--ddf", "{ddf}"],
    ],
    ids=lambda argv: argv[0],
)
def test_named_modes_write_png(case, tmp_path, argv, capsys):
    out = tmp_path / "sub" / f"{argv[0]}.png"
    argv = [a.format(**case) for a in argv] + ["--out", str(out), "--dpi", "40"]
    assert main(argv) == 0, capsys.readouterr().err
    assert png_size(out)[0] > 0


@pytest.mark.parametrize("kind", ["violin", "box"])
def test_distribution_modes(tmp_path, kind):
    a = write_metric_csv(tmp_path / "a.csv", [0.8, 0.9, 0.7], [2, 3, 4], [1, 2, 1])
    b = write_metric_csv(tmp_path / "b.csv", [0.6, 0.65, 0.7], [4, 5, 6], [1, 2, 1])
    out = tmp_path / f"{kind}.png"
    assert (
        main(
            [
                kind,
                "--csv",
                a,
                b,
                "--metric",
                "hd95",
                "--labels",
                "1",
                "--names",
                "A,B",
                "--out",
                str(out),
                "--dpi",
                "40",
            ]
        )
        == 0
    )
    assert png_size(out) == (round(40 * (1.4 + 1.3 * 2)), 160)


def test_missing_file_is_named(case, tmp_path, capsys):
    missing = str(tmp_path / "missing.nii.gz")
    assert main(["overlay", "--fixed", case["fixed"], "--warped", missing, "--out", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert "error: --warped: file" in err and "missing.nii.gz does not exist" in err
    assert main(["-m", "0", "-i", missing]) == 1
    assert "--image-paths: file" in capsys.readouterr().err


def test_ddf_with_wrong_last_axis(case, tmp_path, capsys):
    assert main(["jacobian", "--ddf", case["fixed"], "--out", str(tmp_path / "j.png")]) == 1
    assert "--ddf:" in capsys.readouterr().err


def test_shape_mismatch_between_fixed_and_warped(case, tmp_path, capsys):
    from tfreg.data.image_io import read_image, save_image

    array, geometry = read_image(case["fixed"])
    cropped = str(tmp_path / "cropped.nii.gz")
    save_image(array[:, :, :10], cropped, geometry)
    assert main(["checkerboard", "--fixed", case["fixed"], "--warped", cropped, "--out", str(tmp_path / "c.png")]) == 1
    err = capsys.readouterr().err
    assert "--warped" in err and "(24, 20, 10)" in err and "(24, 20, 16)" in err


def test_csv_missing_metric_column(tmp_path, capsys):
    path = write_metric_csv(tmp_path / "a.csv", [0.8])
    assert main(["violin", "--csv", path, "--metric", "hd95", "--out", str(tmp_path / "v.png")]) == 1
    err = capsys.readouterr().err
    assert "a.csv has no column 'hd95'" in err and "'dice'" in err


def test_usage_errors(case, capsys):
    assert main(["-m", "1", "-i", case["moving"]]) == 1
    assert "--ddf-path is required" in capsys.readouterr().err
    assert main(["-m", "7", "-i", case["moving"]]) == 2
    assert main(["montage"]) == 2
    assert "give at least one of --moving" in capsys.readouterr().err


def test_console_script_name(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [os.path.join("bin", "deepreg_vis")])
    assert main(["--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: deepreg_vis")


def test_contours_draws_tfreg_predicts_soft_pred_fixed_label(tmp_path, capsys):
    """tfreg_predict writes pred_fixed_label as the moving label warped linearly (soft values in [0, 1]);
    contours used to refuse it ("distinct positive values") and now draws its ``>= --label-threshold`` part."""
    from tests.vis._synthetic import SPACING, folding_ddf, image_from_mask, sphere, warp
    from tfreg.data.geometry import ImageGeometry
    from tfreg.engine.predict_outputs import PredictionWriter

    geometry = ImageGeometry(spacing=SPACING, origin=(0.0, 0.0, 0.0), direction=np.eye(3))
    fixed, moving = sphere(), sphere(centre=(10.0, 11.0, 7.5))
    arrays = {
        "fixed_image": image_from_mask(fixed),
        "fixed_label": fixed.astype(np.float32),
        "moving_label": moving.astype(np.float32),
        "pred_fixed_label": warp(moving.astype(np.float32), folding_ddf(shift=(-1.7, 0.8, -0.35))).astype(np.float32),
    }
    pair = PredictionWriter(str(tmp_path / "test")).write(arrays, [0, 0, 0], geometry, geometry)
    label = os.path.join(pair, "label_0")
    argv = [
        "contours",
        "--image",
        os.path.join(pair, "fixed_image.nii.gz"),
        "--fixed-label",
        os.path.join(label, "fixed_label.nii.gz"),
        "--warped-label",
        os.path.join(label, "pred_fixed_label.nii.gz"),
        "--dpi",
        "40",
    ]
    for threshold, name in ((None, "default.png"), ("0.8", "high.png")):
        extra = [] if threshold is None else ["--label-threshold", threshold]
        out = tmp_path / name
        assert main(argv + extra + ["--out", str(out)]) == 0, capsys.readouterr().err
        assert png_size(out)[0] > 0
    assert main(argv + ["--label-threshold", "0", "--out", str(tmp_path / "x.png")]) == 1
    assert "--label-threshold must be a number in (0.0, 1.0], got 0.0" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()

"""tfreg.cli.register (tfreg_register): flags and the config section become settings; exit codes and messages."""

import argparse
import json
import os

import numpy as np
import pytest
from scipy import ndimage

from tfreg.cli.register import build_parser, main, settings_from
from tfreg.data.image_io import save_image


def parse(*argv):
    return build_parser().parse_args(["-f", "f.nii.gz", "-m", "m.nii.gz", "-o", "out", *argv])


def test_defaults_and_flags_make_the_settings():
    settings = settings_from(parse(), None)
    assert settings.loss["image"]["name"] == "lncc" and settings.model == "ddf"
    settings = settings_from(
        parse(
            "--similarity",
            "mind-ssc",
            "--regularization",
            "bending",
            "--regularization_weight",
            "0.5",
            "--levels",
            "2",
            "1",
            "--iterations",
            "30",
            "--transform",
            "dvf",
            "--affine",
            "20",
            "-q",
        ),
        None,
    )
    assert settings.loss["image"] == {"name": "mind-ssc", "weight": 1.0}
    assert settings.loss["regularization"] == {"name": "bending", "weight": 0.5}
    assert settings.levels == (2, 1) and settings.iterations == (30, 30)
    assert settings.model == "dvf" and settings.affine_iterations == 20 and settings.verbose == 0


def test_config_section_then_flags_override():
    config = {
        "register": {
            "levels": [4, 2],
            "iterations": [50, 20],
            "learning_rate": 0.3,
            "loss": {"image": {"name": "mi", "num_bins": 16, "weight": 1.0}},
        }
    }
    settings = settings_from(parse("--learning_rate", "0.1"), config, "reg.yaml")
    assert settings.levels == (4, 2) and settings.iterations == (50, 20)
    assert settings.learning_rate == 0.1 and settings.loss["image"]["num_bins"] == 16


@pytest.mark.parametrize(
    "config,match",
    [
        ({"train": {}}, "one top-level key 'register:'"),
        ({"register": {"level": [2]}}, r"unknown key\(s\) register.\['level'\]"),
        ({"register": {"levels": [2, 0]}}, "levels"),
    ],
)
def test_bad_config_is_named(config, match):
    with pytest.raises(ValueError, match=match):
        settings_from(parse(), config, "reg.yaml")


@pytest.mark.slow
def test_main_registers_and_refuses_an_existing_output(tmp_path, capsys):
    image = ndimage.gaussian_filter(np.random.default_rng(0).random((12, 14, 10)), 2.0).astype(np.float32)
    save_image(image, str(tmp_path / "f.nii.gz"))
    save_image(np.roll(image, 1, axis=0), str(tmp_path / "m.nii.gz"))
    argv = [
        "-f",
        str(tmp_path / "f.nii.gz"),
        "-m",
        str(tmp_path / "m.nii.gz"),
        "-o",
        str(tmp_path / "out"),
        "--similarity",
        "ssd",
        "--levels",
        "1",
        "--iterations",
        "5",
        "-q",
        "--export",
        "itk",
    ]
    assert main(argv) == 0
    assert "registration written to" in capsys.readouterr().out
    assert os.path.isfile(tmp_path / "out" / "transform_itk.nii.gz")
    assert not os.path.exists(tmp_path / "out" / "ddf.nii.gz")
    assert json.load(open(tmp_path / "out" / "registration.json"))["settings"]["iterations"] == [5]
    assert main(argv) == 1
    assert "already exists" in capsys.readouterr().err


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in (
        "--fixed_mask",
        "--similarity",
        "--transform",
        "--levels",
        "--affine",
        "--model",
        "--export",
        "--inverse",
        "--overwrite",
    ):
        assert flag in text
    assert isinstance(parse(), argparse.Namespace)

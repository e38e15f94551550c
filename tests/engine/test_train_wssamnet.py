"""WSSAMNet and WSSAMNet++ from the YAMLs in config/: train, resume and predict on tiny data (CPU, seconds).

Each run merges the repository's config with a small override (data folders, 8^3 shapes, one epoch),
as a user would with ``tfreg_train -c config/<file>.yaml my_data.yaml``.
"""

import glob
import os

import numpy as np
import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.data.helpers import write_unpaired
from tests.data.test_landmarks import write_case
from tests.engine.deepreg_configs import write_config
from tfreg.config import load_configs_with_provenance, validate_config
from tfreg.data.image_io import read_image

CONFIGS = sorted(glob.glob(os.path.join(REPO_ROOT, "config", "*.yaml")))
TINY = {"optimizer": {"name": "Adam", "learning_rate": 1.0e-3}, "epochs": 1, "save_period": 1}


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_every_repository_config_validates(path):
    config, provenance = load_configs_with_provenance([path])
    validate_config(config, provenance, check_dirs=False)


@pytest.mark.slow
def test_wssamnet_brats_reg_trains_resumes_and_predicts(tmp_path):
    from tfreg.cli.predict import main as predict_main
    from tfreg.cli.train import main as train_main

    data = tmp_path / "data"
    write_case(data, "case1")
    write_case(data, "case2", moving={4: (3.0, 3.0, 3.0)}, fixed={4: (4.0, 5.0, 6.0)})
    split = {"dir": str(data), "format": "nifti", "labeled": False}
    override = {
        "dataset": {
            "train": split,
            "valid": split,
            "test": split,
            "moving_image_shape": [8, 8, 8],
            "fixed_image_shape": [8, 8, 8],
            "landmark_roi_size": 3,
        },
        "train": dict(
            TINY,
            loss={
                "image": [
                    {"name": "filtered", "filter": "log", "sigma": 1.0, "loss": {"name": "lncc", "kernel_size": 3}}
                ]
            },
            preprocess={"batch_size": 2},
        ),
    }
    config = [os.path.join(REPO_ROOT, "config", "wssamnet_brats_reg.yaml"), write_config(override, tmp_path / "o.yaml")]
    assert train_main(["-c", *config, "--log_dir", str(tmp_path / "logs"), "-l", "run", "-v", "0"]) == 0
    saved = yaml.safe_load(open(tmp_path / "logs" / "run" / "save" / "config.yaml"))
    assert saved["train"]["segmenter"]["target"] == "roi" and saved["train"]["loss"]["segmentation"]["name"] == "focal"
    ckpt = str(tmp_path / "logs" / "run" / "save" / "ckpt-1")
    assert (
        train_main(
            [
                "-c",
                *config,
                "-k",
                ckpt,
                "--log_dir",
                str(tmp_path / "logs"),
                "-l",
                "run",
                "--max_epochs",
                "2",
                "-v",
                "0",
            ]
        )
        == 0
    )
    assert os.path.isfile(tmp_path / "logs" / "run" / "save" / "ckpt-2.index")
    assert (
        predict_main(
            [
                "-k",
                str(tmp_path / "logs" / "run" / "save" / "ckpt-2"),
                "--split",
                "test",
                "--log_dir",
                str(tmp_path / "logs"),
                "-n",
                "pred",
            ]
        )
        == 0
    )
    pair = tmp_path / "logs" / "pred" / "test" / "pair_0"
    names = ("moving_segmentation", "fixed_segmentation", "moving_attention", "fixed_attention", "ddf")
    for name in names + ("moving_segmentation_mask", "fixed_segmentation_mask"):
        assert (pair / f"{name}.nii.gz").is_file(), name
    segmentation, _ = read_image(str(pair / "moving_segmentation.nii.gz"))
    attention, _ = read_image(str(pair / "moving_attention.nii.gz"))
    moving, _ = read_image(str(pair / "moving_image.nii.gz"))
    # WSSAMNet's attention, from the written files: O = S * I
    np.testing.assert_allclose(attention, segmentation * moving, atol=1e-5)
    mask, _ = read_image(str(pair / "moving_segmentation_mask.nii.gz"))
    np.testing.assert_array_equal(mask.reshape(segmentation.shape), segmentation >= 0.5)


@pytest.mark.slow
def test_wssamnet_pp_oasis_uses_the_pretrained_frozen_segmenter(tmp_path):
    from tfreg.engine.predict import predict
    from tfreg.engine.train import train

    data = write_unpaired(str(tmp_path / "data"), [f"s{k}" for k in range(4)], shape=(10, 10, 10), num_labels=4)
    split = {"dir": data, "format": "nifti", "labeled": True}
    dataset = {"train": split, "valid": split, "test": split, "image_shape": [8, 8, 8]}
    seg_override = {"dataset": dataset, "train": dict(TINY, preprocess={"batch_size": 2})}
    seg_config = [
        os.path.join(REPO_ROOT, "config", "wssamnet_pp_oasis_segmenter.yaml"),
        write_config(seg_override, tmp_path / "seg.yaml"),
    ]
    segmenter, seg_exp = train(config_path=seg_config, log_dir=str(tmp_path / "logs"), exp_name="seg", verbose=0)

    seg_ckpt = os.path.join(seg_exp, "save", "ckpt-1")
    override = {
        "dataset": dataset,
        "train": dict(TINY, init_from={"path": seg_ckpt}, preprocess={"batch_size": 2}),
    }
    config = [
        os.path.join(REPO_ROOT, "config", "wssamnet_pp_oasis_contour.yaml"),
        write_config(override, tmp_path / "reg.yaml"),
    ]
    model, exp = train(config_path=config, log_dir=str(tmp_path / "logs"), exp_name="reg", verbose=0)
    # the frozen segmenter is the pre-trained one, unchanged by the registration training
    for a, b in zip(
        segmenter.backbone.weights + segmenter.head.weights,
        model.segmenter.backbone.weights + model.segmenter.head.weights,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    out = predict(
        ckpt_path=os.path.join(exp, "save", "ckpt-1"), split="test", log_dir=str(tmp_path / "logs"), exp_name="pred"
    )
    pairs = sorted(p for p in os.listdir(out) if p.startswith("pair_"))
    assert pairs and os.path.isfile(os.path.join(out, pairs[0], "fixed_attention.nii.gz"))
    segmentation, _ = read_image(os.path.join(out, pairs[0], "fixed_segmentation.nii.gz"))
    assert segmentation.shape == (8, 8, 8, 4) and 0 <= segmentation.min() and segmentation.max() <= 1

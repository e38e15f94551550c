"""tfreg_train with config/dfsa_label_autoencoder.yaml on tiny 2-D lung-like masks: the run writes
save/encoder.keras, which the embedding loss loads (also with plain Keras), and whose code is the model's."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tests.data.helpers import write_nifti_folder
from tests.engine.deepreg_configs import write_config
from tests.engine.test_train_segmentation import checkpoints
from tests.models.test_label_autoencoder import ellipses
from tfreg.config import load_configs_with_provenance, validate_config

CONFIG = os.path.join(REPO_ROOT, "config", "dfsa_label_autoencoder.yaml")
SIZE = (16, 16)


def write_masks(root, count=4):
    """Unpaired 2-D data: smooth images and one ellipse mask per image, NIfTI."""
    masks = ellipses(count, SIZE, seed=5)
    write_nifti_folder(os.path.join(root, "images"), {f"case{i}": m * 0.8 + 0.1 for i, m in enumerate(masks)})
    write_nifti_folder(os.path.join(root, "labels"), {f"case{i}": m for i, m in enumerate(masks)})
    return str(root), masks


def test_the_repository_config_validates():
    config, provenance = load_configs_with_provenance([CONFIG])
    train = validate_config(config, provenance, check_dirs=False)["train"]
    assert train["method"] == "label_autoencoder" and train["code_size"] == 32
    assert train["loss"]["reconstruction"]["contour_weight"] == 2.0
    assert train["optimizer"]["learning_rate"] == 1.0e-3


@pytest.mark.slow  # a whole training: the main CI step stays under 15 minutes
def test_train_writes_the_encoder_that_the_embedding_loss_loads(tmp_path):
    from tfreg.engine.train import train
    from tfreg.losses.segmentation import EmbeddingLoss

    data, masks = write_masks(tmp_path / "data")
    split = {"dir": data, "format": "nifti", "labeled": True}
    override = {
        "dataset": {"train": split, "valid": split, "image_shape": list(SIZE)},
        "train": {"epochs": 2, "save_period": 1, "preprocess": {"batch_size": 2}},
    }
    model, exp = train(
        config_path=[CONFIG, write_config(override, tmp_path / "o.yaml")],
        log_dir=str(tmp_path / "logs"),
        exp_name="ae",
        verbose=0,
    )
    assert checkpoints(exp) == ["ckpt-1.index", "ckpt-2.index"]
    path = os.path.join(exp, "save", "encoder.keras")
    assert os.path.isfile(path)

    # the saved encoder is the trained model's (the state of the last checkpoint): same codes
    loss = EmbeddingLoss(path, reduction=None)
    labels = masks[:2]
    code = np.asarray(model.encode(labels))
    assert code.shape == (2, 32)
    np.testing.assert_allclose(np.asarray(loss.encode(labels[..., None])), code, rtol=1e-5, atol=1e-5)
    # and the loss is the squared distance of the codes
    other = np.asarray(model.encode(masks[2:]))
    np.testing.assert_allclose(np.asarray(loss(labels, masks[2:])), ((other - code) ** 2).sum(1), rtol=1e-4)
    loss.check_input_shape(SIZE, ndim=2)
    with pytest.raises(ValueError, match="spatial shape"):
        loss.check_input_shape((64, 64), ndim=2)

    # plain Keras loads it: no custom objects (the background channel is keras.ops in the functional graph)
    np.save(tmp_path / "labels.npy", labels[..., None])
    script = (
        "import sys, numpy as np, keras; m = keras.saving.load_model(sys.argv[1], compile=False); "
        "np.save(sys.argv[3], np.asarray(m(np.load(sys.argv[2]))))"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    subprocess.run(
        [sys.executable, "-c", script, path, str(tmp_path / "labels.npy"), str(tmp_path / "code.npy")],
        check=True,
        env=env,
        cwd=str(tmp_path),  # not the repository: tfreg is not importable there unless installed
    )
    np.testing.assert_allclose(np.load(tmp_path / "code.npy"), code, rtol=1e-5, atol=1e-5)

"""tfreg.engine.pair_prediction: a checkpoint written by tfreg_train predicts a pair's DDF in the pair's voxels."""

import numpy as np
import pytest
from keras import ops

from tfreg.engine.pair_prediction import load_model, predict_pair_ddf


def test_checkpoint_prediction_in_pair_voxels(trained):
    """The engine fixture trains a ddf model with moving 16^3 and fixed 8^3 grids. A pair of 16^3 (moving on
    the fixed grid) is resized to those grids; the DDF in 16-grid moving voxels maps fixed voxel p (pair
    scale 2) to moving voxel q = p + ddf (pair scale 1): the pair displacement is (q + 0.5) - (p + 0.5) * 2."""
    ckpt = str(trained["exp"]) + "/save/ckpt-2"
    model, moving_grid, fixed_grid = load_model(ckpt)
    assert (moving_grid, fixed_grid) == ((16, 16, 16), (8, 8, 8))
    rng = np.random.default_rng(0)
    fixed, moving = rng.random((16, 16, 16)).astype(np.float32), rng.random((16, 16, 16)).astype(np.float32)
    got = predict_pair_ddf(ckpt, fixed, moving)
    # the in-memory trained model on the same resized inputs, converted by hand
    from tfreg.ops.resize import resize

    out = trained["model"](
        {
            "fixed_image": resize(ops.convert_to_tensor(fixed[None]), (8, 8, 8)),
            "moving_image": ops.convert_to_tensor(moving[None]),
            "indices": np.zeros((1, 2), np.float32),
        },
        training=False,
    )
    ddf = np.asarray(ops.convert_to_numpy(out["ddf"]))[0]
    p = np.stack(np.meshgrid(*[np.arange(8.0)] * 3, indexing="ij"), -1)
    on_fixed_grid = (p + ddf + 0.5) - (p + 0.5) * 2.0
    # resized onto the pair's grid by SciPy with half-pixel centres: pair voxel x reads model voxel (x + 0.5) / 2 - 0.5
    from scipy import ndimage

    x = np.clip((np.arange(16.0) + 0.5) / 2.0 - 0.5, 0.0, 7.0)
    coords = np.stack(np.meshgrid(x, x, x, indexing="ij"), 0)
    expected = np.stack([ndimage.map_coordinates(on_fixed_grid[..., c], coords, order=1) for c in range(3)], -1)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_missing_training_config_is_named(trained, tmp_path):
    import shutil

    save = tmp_path / "save"
    shutil.copytree(str(trained["exp"]) + "/save", save)
    for name in ("config.yaml",):
        (save / name).unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError, match="--model_config"):
        load_model(str(save / "ckpt-2"))

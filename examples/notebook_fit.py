"""Notebook path: build a DDF registration model in Python and train it with plain ``compile`` + ``fit``.

Runs on CPU in seconds on a synthetic dataset: each fixed image is the moving image (a smooth blob with
its mask as the label) shifted by one voxel along the first axis, so the model should learn a DDF of
about +1 voxel there. Run from the repository root::

    python examples/notebook_fit.py

Under ``KERAS_BACKEND=jax`` the same code works with a NumPy dict instead of the tf.data dataset.
"""

import keras
import numpy as np

from tfreg.models import DDFModel

SIZE = (16, 16, 16)


def synthetic_pairs(n: int, seed: int = 0):
    """``n`` pairs of 16^3 images and labels as DeepReg's input dict (images in [0, 1], no channel axis)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype="float32") for s in SIZE], indexing="ij"), -1)
    moving, moving_label = [], []
    for _ in range(n + 1):
        centre = rng.uniform(5, 11, size=3)
        dist2 = ((grid - centre) ** 2).sum(-1)
        moving.append(np.exp(-dist2 / 18.0))
        moving_label.append((dist2 < 12.0).astype("float32"))
    moving, moving_label = np.stack(moving[:n]), np.stack(moving_label[:n])
    # fixed[i] = moving[i + 1]: the fixed voxel i samples the moving image at i + 1 (DDF = +1 along axis 0)
    fixed = np.roll(moving, -1, axis=1)
    fixed_label = np.roll(moving_label, -1, axis=1)
    return {
        "moving_image": moving.astype("float32"),
        "fixed_image": fixed.astype("float32"),
        "moving_label": moving_label,
        "fixed_label": fixed_label,
        "indices": np.arange(n, dtype="float32")[:, None],
    }


def main(epochs: int = 3):
    model = DDFModel(
        moving_image_size=SIZE,
        fixed_image_size=SIZE,
        index_size=1,
        labeled=True,
        backbone={"name": "local", "num_channel_initial": 4, "extract_levels": [0, 1, 2]},
        loss={
            "image": {"name": "lncc", "kernel_size": 5, "weight": 1.0},
            "label": {"name": "dice", "weight": 1.0},
            "regularization": {"name": "bending", "weight": 0.5},
        },
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    data = synthetic_pairs(8)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        train = tf.data.Dataset.from_tensor_slices(data).batch(2)
        history = model.fit(train, epochs=epochs, validation_data=train, verbose=2)
    else:
        history = model.fit(data, batch_size=2, epochs=epochs, verbose=2)
    logs = history.history
    print("logged:", sorted(logs))
    # Training-mode values: after a handful of steps BatchNorm's moving statistics (used by predict and
    # validation) are not settled yet, so inference outputs are only meaningful after longer training.
    print("training TRE (voxels) per epoch:", [round(v, 3) for v in logs["metric/TRE"]])
    print("training mean DDF per epoch:", [round(v, 3) for v in logs["metric/ddf_mean"]])
    return history


if __name__ == "__main__":
    main()

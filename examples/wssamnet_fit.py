"""Notebook path for WSSAMNet: build the composite model in Python and train it with ``compile`` + ``fit``.

Synthetic 2-D pairs: a bright disc (the structure the segmenters learn) on a noisy background, moved
between the moving and the fixed image. Two segmenters (one per image) are trained end to end with the
registration network (WSSAMNet's set-up): focal loss on the segmenters, Dice on the warped label, a
bending penalty, and ``masking`` attention (the network registers ``S * I``). Runs on CPU in seconds;
from the repository root::

    python examples/wssamnet_fit.py

For the frozen, pre-trained segmenters of WSSAMNet++ set ``segmenter.trainable: false``, drop the
segmentation loss, and load the segmenter weights (``tfreg.engine.checkpoint.restore_parts``, or
``train.init_from`` with ``tfreg_train``).
"""

import keras
import numpy as np

from tfreg.models import WSSAMNetModel

SIZE = (24, 24)


def synthetic_pairs(n: int, seed: int = 0):
    """``n`` pairs: images ``(n, *SIZE)`` in [0, 1] and disc masks ``(n, *SIZE)``, the disc moved by up to
    3 pixels between moving and fixed."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype="float32") for s in SIZE], indexing="ij"), -1)
    out = {k: [] for k in ("moving_image", "fixed_image", "moving_label", "fixed_label")}
    for _ in range(n):
        centre = rng.uniform(9, 15, size=2)
        for role, c in (("moving", centre), ("fixed", centre + rng.uniform(-3, 3, size=2))):
            disc = (((grid - c) ** 2).sum(-1) < 20.0).astype("float32")
            out[f"{role}_image"].append(np.clip(0.8 * disc + 0.1 * rng.random(SIZE), 0, 1))
            out[f"{role}_label"].append(disc)
    data = {k: np.stack(v).astype("float32") for k, v in out.items()}
    data["indices"] = np.zeros((n, 3), "float32")
    return data


def main(epochs: int = 10):
    data = synthetic_pairs(8)
    model = WSSAMNetModel(
        moving_image_size=SIZE,
        fixed_image_size=SIZE,
        index_size=3,
        labeled=True,
        config={
            "backbone": {"name": "unet", "num_channel_initial": 8, "depth": 2},
            "segmenter": {
                "backbone": {"name": "unet_segmenter", "channels": [8, 16, 32]},
                "head": {"num_classes": 1, "activation": "sigmoid"},
                "trainable": True,  # end to end, as WSSAMNet
            },
            "attention": {"name": "masking"},
            "loss": {
                "label": {"name": "dice", "weight": 1.0},
                "regularization": {"name": "bending", "weight": 0.5},
                "segmentation": {"name": "focal", "gamma": 2.0, "weight": 1.0},
            },
        },
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(data, batch_size=4, epochs=epochs, verbose=0)
    for name in ("loss/label_DiceScoreLoss", "loss/segmentation_FocalLoss"):
        print(f"{name}: {history.history[name][0]:.4f} -> {history.history[name][-1]:.4f}")
    return history


if __name__ == "__main__":
    main()

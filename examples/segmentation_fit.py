"""Notebook path for segmentation: build a segmenter in Python and train it with plain ``compile`` + ``fit``.

Synthetic 2-D data with an integer label map of two structures (1 = bright blob core, 2 = its rim), as
many datasets store them. The map is converted to one binary channel per structure with
``label_channels`` (DeepReg's layout, what the model scores), and a softmax head predicts background +
2 classes. Runs on CPU in seconds; from the repository root::

    python examples/segmentation_fit.py

Under ``KERAS_BACKEND=jax`` the same code works with a NumPy dict instead of the tf.data dataset.
"""

import keras
import numpy as np

from tfreg.models import SegmentationModel, label_channels

SIZE = (24, 24)


def synthetic_images(n: int, seed: int = 0):
    """``n`` images ``(n, *SIZE)`` in [0, 1] and integer label maps (0 background, 1 core, 2 rim)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype="float32") for s in SIZE], indexing="ij"), -1)
    images, maps = [], []
    for _ in range(n):
        dist2 = ((grid - rng.uniform(8, 16, size=2)) ** 2).sum(-1)
        images.append(np.exp(-dist2 / 30.0) + 0.05 * rng.normal(size=SIZE))
        maps.append(np.where(dist2 < 10.0, 1, np.where(dist2 < 30.0, 2, 0)))
    images = np.stack(images).astype("float32")
    images = (images - images.min()) / (images.max() - images.min())
    return images, np.stack(maps)


def main(epochs: int = 15):
    images, maps = synthetic_images(16)
    labels = keras.ops.convert_to_numpy(label_channels(maps, 2))  # (16, *SIZE, 2): core, rim
    # DeepReg's input dict: each sample is a pair of images; both are segmented by the same network
    data = {
        "moving_image": images[:8],
        "fixed_image": images[8:],
        "moving_label": labels[:8],
        "fixed_label": labels[8:],
    }
    model = SegmentationModel(
        moving_image_size=SIZE,
        backbone={"name": "unet_segmenter", "channels": [8, 16, 32], "norm": "instance"},
        head={"num_classes": 3, "activation": "softmax"},  # background + 2 structures
        loss={"segmentation": {"name": "multiclass-dice", "weight": 1.0}},
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        train = tf.data.Dataset.from_tensor_slices(data).batch(4)
        history = model.fit(train, epochs=epochs, validation_data=train, verbose=2)
    else:
        history = model.fit(data, batch_size=4, epochs=epochs, verbose=2)
    print("multi-class Dice loss per epoch:", [round(v, 3) for v in history.history["loss"]])
    # the predicted label map: the most probable class per pixel
    probabilities = keras.ops.convert_to_numpy(model.segment_images(images[:2]))
    print("predicted classes in the first image:", np.unique(probabilities[0].argmax(-1)))
    return history


if __name__ == "__main__":
    main()

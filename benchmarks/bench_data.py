"""Throughput of tfreg's training input pipeline against the training step it has to feed.

Run from the repository root (inside the project's environment):

    python benchmarks/bench_data.py                 # prints a Markdown table
    python benchmarks/bench_data.py --batches 20    # fewer timed batches

Data: DeepReg's unpaired test folder (``$TFREG_TEST_DATA/deepreg_test/nifti/unpaired/train``, 14 images
64x64x60 with 3-label masks, NIfTI), loaded as DeepReg's training split would be: ``sample_label:
sample``, shuffle buffer 1 batch, repeat, batch 2 (drop remainder), at the native 64x64x60 shape, with
``affine`` augmentation when ``da_class`` ``affine`` is registered (the table says which).

Measured in the same process, one after the other:

1. pipeline alone: samples/s of iterating the dataset (after a warm-up that fills the prefetch buffer);
2. training step alone: a small Keras model (3 Conv3D layers, 16 channels, on the concatenated
   moving/fixed images, MSE loss, Adam) trained on one fixed in-memory batch: the step time without
   any input cost;
3. pipeline feeding the step: the same step on batches drawn from the pipeline. When prefetching hides
   loading, (3) is as fast as (2).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHAPE = (64, 64, 60)
BATCH = 2


def data_dir() -> Path:
    root = Path(os.environ.get("TFREG_TEST_DATA", REPO.parent / "shared" / "data"))
    return root / "deepreg_test" / "nifti" / "unpaired" / "train"


def build_pipeline(use_augmentation: bool):
    import tfreg.data  # noqa: F401  (registers the loaders)
    from tfreg.data import get_data_loader
    from tfreg.registry import REGISTRY

    try:  # written separately (issue 3, item 4); absent until then
        import tfreg.data.augmentation  # noqa: F401
    except ImportError:
        pass
    augmentation = {"name": "affine"} if use_augmentation and REGISTRY.contains("da_class", "affine") else None
    config = {
        "train": {"dir": str(data_dir()), "format": "nifti", "labeled": True},
        "type": "unpaired",
        "image_shape": list(SHAPE),
    }
    loader = get_data_loader(config, "train")
    dataset = loader.get_dataset_and_preprocess(
        training=True, batch_size=BATCH, repeat=True, shuffle_buffer_num_batch=1, data_augmentation=augmentation
    )
    return loader, dataset, augmentation


def build_model():
    import keras

    inputs = keras.Input(shape=SHAPE + (2,), batch_size=BATCH)
    x = keras.layers.Conv3D(16, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv3D(16, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv3D(3, 3, padding="same")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse")
    return model


def model_inputs(batch):
    import tensorflow as tf

    x = tf.stack([batch["moving_image"], batch["fixed_image"]], axis=-1)
    return x, tf.zeros(tuple(x.shape[:-1]) + (3,))


def time_pipeline(dataset, batches: int) -> float:
    iterator = iter(dataset)
    for _ in range(3):  # warm-up: tracing, thread pools, prefetch buffer
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * BATCH / (time.perf_counter() - start)


def time_step(model, batch, steps: int) -> float:
    x, y = model_inputs(batch)
    model.train_on_batch(x, y)  # warm-up (tracing)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return BATCH / statistics.median(times)


def time_fed(model, dataset, steps: int) -> float:
    iterator = iter(dataset)
    model.train_on_batch(*model_inputs(next(iterator)))
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(*model_inputs(next(iterator)))
    return steps * BATCH / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=30, help="timed pipeline batches (default 30)")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps (default 10)")
    parser.add_argument("--no-augmentation", action="store_true", help="do not use affine augmentation")
    args = parser.parse_args(argv)
    if not data_dir().is_dir():
        print(f"data not found at {data_dir()} (set TFREG_TEST_DATA)", file=sys.stderr)
        return 1

    import tensorflow as tf

    loader, dataset, augmentation = build_pipeline(not args.no_augmentation)
    pipeline = time_pipeline(dataset, args.batches)
    model = build_model()
    step = time_step(model, next(iter(dataset)), args.steps)
    fed = time_fed(model, dataset, args.steps)
    loader.close()

    devices = ", ".join(d.device_type for d in tf.config.list_logical_devices()) or "CPU"
    augmentation_text = "affine (scale 0.1)" if augmentation else "none (`da_class` `affine` not registered yet)"
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores visible, "
        f"devices: {devices}; "
        f"TensorFlow {tf.__version__}, Python {platform.python_version()}\n"
    )
    print(
        f"Unpaired NIfTI, 14 images {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} + 3 labels, "
        f"batch {BATCH}, augmentation: {augmentation_text}\n"
    )
    print("| measurement | samples/s | ms per batch |")
    print("|---|---:|---:|")
    for name, rate in (
        ("input pipeline alone (load, check, normalise, shuffle, batch, augment)", pipeline),
        ("training step alone (3-layer Conv3D, fixed in-memory batch)", step),
        ("training step fed by the pipeline", fed),
    ):
        print(f"| {name} | {rate:.1f} | {1000 * BATCH / rate:.0f} |")
    verdict = "keeps ahead of" if pipeline >= step else "is SLOWER than"
    print(
        f"\nThe pipeline {verdict} the training step ({pipeline / step:.1f}x its rate); fed training runs at "
        f"{100 * fed / step:.0f}% of the step-only rate."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

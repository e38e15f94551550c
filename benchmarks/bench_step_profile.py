"""Where a training step's time goes, in tfreg and in DeepReg: each part timed alone, side by side in one run.

::

    python benchmarks/bench_step_profile.py            # both configs of bench_deepreg.py, Markdown table
    python benchmarks/bench_step_profile.py --write    # also replaces its block in benchmarks/README.md

The parts of the ``ddf`` training step of ``bench_deepreg.py``'s configs, built in each toolkit through its
own registry (``REGISTRY.build_backbone`` / ``build_loss`` and its ``Warping`` layer, the calls its ``ddf``
model makes) with the same shapes, and timed alone under ``tf.function`` (median of ``--repeat`` calls after
a warm-up). "fwd" is the value only, "fwd+bwd" the value and its gradient (with respect to the backbone's
weights for the backbone, the DDF for the warp and the regulariser, the warped image or label for the image
and label losses). "assembled step" chains them as the model does (backbone, warp of image and label,
the weighted losses, their gradient and Adam's update) without Keras' ``fit``; the difference to the
side-by-side s/step of ``bench_deepreg.py`` is ``fit``'s own overhead and waiting for input.

Each toolkit runs in its own child process (DeepReg: ``--deepreg-python``, see ``bench_deepreg.py``), DeepReg
first, with the kernel setting each uses by default plus DeepReg with oneDNN on (``TF_ENABLE_ONEDNN_OPTS=1``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_deepreg import CONFIGS, DEFAULT_DEEPREG_PYTHON, SIDE_NAMES  # noqa: E402
from readme_block import write_block  # noqa: E402

#: config -> (image shape, batch size, losses {category: config}, loss weights), as in bench_deepreg.py
SETUPS = {
    "unpaired": (
        (64, 64, 60),
        2,
        {
            "image": {"name": "lncc"},
            "label": {"name": "dice", "scales": [0, 1, 2, 4, 8]},
            "regularization": {"name": "bending"},
        },
        {"image": 0.1, "label": 1.0, "regularization": 0.5},
    ),
    "paired_brain": (
        (80, 96, 112),
        1,
        {"image": {"name": "lncc", "kernel_size": 9}, "regularization": {"name": "bending"}},
        {"image": 1.0, "regularization": 5.0},
    ),
}
PARTS = (
    "backbone fwd",
    "backbone fwd+bwd",
    "warp fwd",
    "warp fwd+bwd",
    "image loss fwd",
    "image loss fwd+bwd",
    "label loss fwd",
    "label loss fwd+bwd",
    "regularization fwd",
    "regularization fwd+bwd",
    "assembled step",
)


def _median_time(fn, repeat: int) -> float:
    fn()  # tracing and warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def profile(toolkit: str, config: str, repeat: int) -> dict:
    """Seconds per call of each part of ``config``'s step in ``toolkit`` (``tfreg`` or ``deepreg``)."""
    if toolkit == "deepreg":
        import collections
        import collections.abc

        collections.Mapping = collections.abc.Mapping  # see bench_deepreg.py
        from deepreg.model.layer import Warping
        from deepreg.registry import REGISTRY
    else:
        from tfreg.layers.warping import Warping
        from tfreg.registry import REGISTRY
    import numpy as np
    import tensorflow as tf

    shape, batch, losses, weights = SETUPS[config]
    rng = np.random.default_rng(0)
    smooth = lambda a: tf.constant(a.astype(np.float32))  # noqa: E731
    moving = smooth(rng.random((batch, *shape)))
    fixed = smooth(rng.random((batch, *shape)))
    moving_label = smooth(rng.random((batch, *shape)) > 0.7)
    fixed_label = smooth(rng.random((batch, *shape)) > 0.7)
    ddf = tf.Variable(rng.uniform(-3, 3, (batch, *shape, 3)).astype(np.float32))
    backbone = REGISTRY.build_backbone(
        config={"name": "local", "num_channel_initial": 16, "extract_levels": [0, 1, 2, 3]},
        default_args=dict(
            image_size=shape, out_channels=3, out_kernel_initializer="glorot_uniform", out_activation=None
        ),
    )
    warping = Warping(fixed_image_size=shape)
    inputs = tf.concat([moving[..., None], fixed[..., None]], axis=-1)
    built = {category: REGISTRY.build_loss(config=dict(cfg)) for category, cfg in losses.items()}

    def call_loss(category, prediction):
        if category == "regularization":
            return built[category](prediction)  # both toolkits: the regulariser takes the DDF alone
        target = fixed if category == "image" else fixed_label
        return built[category](target, prediction)  # (y_true, y_pred), as both models call it

    backbone(inputs, training=True)
    weights_list = backbone.trainable_variables
    results = {}
    results["backbone fwd"] = tf.function(lambda: backbone(inputs, training=True))

    @tf.function
    def backbone_fwd_bwd():
        with tf.GradientTape() as tape:
            out = backbone(inputs, training=True)
            value = tf.reduce_sum(out * out)
        return tape.gradient(value, weights_list)

    results["backbone fwd+bwd"] = backbone_fwd_bwd
    results["warp fwd"] = tf.function(lambda: warping(inputs=[ddf, moving]))

    @tf.function
    def warp_fwd_bwd():
        with tf.GradientTape() as tape:
            warped = warping(inputs=[ddf, moving])
            value = tf.reduce_sum(warped * fixed)
        return tape.gradient(value, ddf)

    results["warp fwd+bwd"] = warp_fwd_bwd
    for category in ("image", "label", "regularization"):
        if category not in built:
            continue
        source = ddf if category == "regularization" else tf.Variable(moving if category == "image" else moving_label)
        results[f"{category} loss fwd" if category != "regularization" else "regularization fwd"] = tf.function(
            lambda category=category, source=source: call_loss(category, source)
        )

        @tf.function
        def loss_fwd_bwd(category=category, source=source):
            with tf.GradientTape() as tape:
                value = tf.reduce_sum(call_loss(category, source))
            return tape.gradient(value, source)

        key = f"{category} loss fwd+bwd" if category != "regularization" else "regularization fwd+bwd"
        results[key] = loss_fwd_bwd

    optimizer = tf.keras.optimizers.Adam(1e-4)

    @tf.function
    def assembled_step():
        with tf.GradientTape() as tape:
            field = backbone(inputs, training=True)
            total = weights["regularization"] * tf.reduce_mean(call_loss("regularization", field))
            total += weights["image"] * tf.reduce_mean(call_loss("image", warping(inputs=[field, moving])))
            if "label" in built:
                total += weights["label"] * tf.reduce_mean(call_loss("label", warping(inputs=[field, moving_label])))
        grads = tape.gradient(total, weights_list)
        optimizer.apply_gradients(zip(grads, weights_list))
        return total

    results["assembled step"] = assembled_step
    return {part: _median_time(fn, repeat) for part, fn in results.items()}


def _run(side: str, python: str, config: str, repeat: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if side == "deepreg_onednn":
        env["TF_ENABLE_ONEDNN_OPTS"] = "1"
    env.pop("TFREG_FFT_CONV", None)
    if side == "tfreg_fft_off":
        env["TFREG_FFT_CONV"] = "off"  # Keras' own convolutions (tfreg/layers/conv.py)
    toolkit = "deepreg" if side.startswith("deepreg") else "tfreg"
    command = [python, __file__, "--child", toolkit, "--config", config, "--repeat", str(repeat)]
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=str(HERE.parent))
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{side} / {config} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(lines[-1]), load=os.getloadavg()[0])


def table(results: dict, sides) -> str:
    lines = []
    reference = [s for s in sides if s.startswith("deepreg")][-1]
    for config, by_side in results.items():
        loads = ", ".join(f"{SIDE_NAMES[s]} {by_side[s]['load']:.1f}" for s in sides)
        lines += [
            f"**{config}** (load after each: {loads}); ms per call, median:",
            "",
            "| part | "
            + " | ".join(SIDE_NAMES[s] for s in sides)
            + " | tfreg speed-up vs "
            + SIDE_NAMES[reference]
            + " |",
            "|---|" + "---:|" * (len(sides) + 1),
        ]
        for part in PARTS:
            if part not in by_side["tfreg"]:
                continue
            values = [by_side[s][part] for s in sides]
            ratio = by_side[reference][part] / by_side["tfreg"][part]
            lines.append(f"| {part} | " + " | ".join(f"{1000 * v:.0f}" for v in values) + f" | {ratio:.2f}x |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per part (default 5)")
    parser.add_argument("--deepreg-python", default=os.environ.get("DEEPREG_PYTHON", str(DEFAULT_DEEPREG_PYTHON)))
    parser.add_argument(
        "--sides",
        nargs="+",
        default=["deepreg", "deepreg_onednn", "tfreg_fft_off", "tfreg"],
        choices=["deepreg", "deepreg_onednn", "tfreg_fft_off", "tfreg"],
        help="tfreg must be last; tfreg_fft_off: tfreg with TFREG_FFT_CONV=off (Keras' own convolutions)",
    )
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--child", choices=("tfreg", "deepreg"), help=argparse.SUPPRESS)
    parser.add_argument("--config", choices=CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(profile(args.child, args.config, args.repeat)))
        return 0
    if args.sides[-1] != "tfreg" or not any(side.startswith("deepreg") for side in args.sides):
        parser.error("--sides: at least one DeepReg side, then tfreg last")
    results = {}
    for config in args.configs:
        results[config] = {}
        for side in args.sides:
            python = args.deepreg_python if side.startswith("deepreg") else sys.executable
            print(f"{config} / {side} ...", file=sys.stderr, flush=True)
            results[config][side] = _run(side, python, config, args.repeat)
            print(json.dumps(results[config][side]), file=sys.stderr, flush=True)
    text = table(results, args.sides)
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "bench_step_profile.json").write_text(json.dumps(results, indent=1))
    if args.write:
        write_block("bench_step_profile", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

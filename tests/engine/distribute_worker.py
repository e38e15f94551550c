"""Subprocess side of ``tests/engine/test_distribute.py`` (not a test module: pytest collects ``test_*`` only).

Two modes, each in a fresh Python process because TensorFlow's device and cluster setup must happen
before its runtime starts and cannot be undone in the pytest process::

    python distribute_worker.py mirrored CONFIG CONFIG_BATCH3 OUT_DIR
    python distribute_worker.py multiworker CONFIG LOG_DIR WEIGHTS_NPZ     (TF_CONFIG set by the caller)

``mirrored`` splits the one CPU into two logical devices, then in this order

1. trains CONFIG_BATCH3 (batch 3) under ``--strategy mirrored``, expecting the batch-size ValueError;
2. trains CONFIG under ``--strategy default``, snapshotting the weights right after they are created;
3. trains CONFIG under ``--strategy mirrored`` (2 replicas), starting from that snapshot,

and writes ``OUT_DIR/result.json`` plus ``OUT_DIR/{initial,default,mirrored}.npz`` (the model's
weights in ``model.weights`` order, keys ``w0000``, ``w0001``, ...).

``multiworker`` trains CONFIG with ``--strategy multiworker`` (the custom loop) and dumps the final
weights to WEIGHTS_NPZ.
"""

import json
import os
import sys

import numpy as np


def _weights_to_npz(path, weights):
    np.savez(path, **{f"w{i:04d}": np.asarray(w) for i, w in enumerate(weights)})


def _run_mirrored(config, config_batch3, out_dir):
    import tensorflow as tf

    # Must precede anything that initialises TensorFlow's devices.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import tfreg.engine.train as train_module
    from tfreg.layers.normalization import batch_norm_layers

    result = {}
    log_dir = os.path.join(out_dir, "logs")

    # 1. batch 3 over 2 replicas: refused before anything is written.
    try:
        train_module.train(
            gpu="", config_path=config_batch3, log_dir=log_dir, exp_name="batch3", strategy="mirrored", verbose=0
        )
        result["batch3_error"] = None
    except ValueError as err:
        result["batch3_error"] = str(err)
    result["batch3_log_dir_exists"] = os.path.exists(log_dir)

    # 2./3. Same config, same data order, same initial weights: the snapshot taken when the default run
    # creates its variables is assigned to the mirrored run's variables at the same point, so only the
    # distribution differs between the two runs.
    original_create = train_module.create_variables
    state = {"initial": None}

    def create_variables(model, loader, optimizer=None):
        original_create(model, loader, optimizer)
        strategy = tf.distribute.get_strategy()  # train() calls this inside dist.scope()
        if state["initial"] is None:
            state["initial"] = [w.numpy() for w in model.weights]
        else:
            for variable, value in zip(model.weights, state["initial"]):
                variable.assign(value)
        state["replicas"] = strategy.num_replicas_in_sync
        state["synchronized_bn"] = sum(1 for layer in batch_norm_layers(model) if layer.synchronized)
        state["strategy"] = type(strategy).__name__

    train_module.create_variables = create_variables
    try:
        for name in ("default", "mirrored"):
            model, exp_path = train_module.train(
                gpu="", config_path=config, log_dir=log_dir, exp_name=name, strategy=name, verbose=0
            )
            if name == "default":
                _weights_to_npz(os.path.join(out_dir, "initial.npz"), state["initial"])
            _weights_to_npz(os.path.join(out_dir, f"{name}.npz"), [w.numpy() for w in model.weights])
            # Largest difference between the replicas' copies of each variable (0 for plain variables).
            spread = 0.0
            for w in model.weights:
                values = getattr(w, "values", None)
                if values is not None and len(values) > 1:
                    first = values[0].numpy()
                    spread = max([spread] + [float(np.max(np.abs(v.numpy() - first))) for v in values[1:]])
            result[name] = {
                "exp_path": exp_path,
                "replicas": state["replicas"],
                "synchronized_bn": state["synchronized_bn"],
                "strategy": state["strategy"],
                "weight_names": [w.path for w in model.weights],
                "replica_spread": spread,
            }
    finally:
        train_module.create_variables = original_create

    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump(result, f)


def _run_multiworker(config, log_dir, weights_path):
    from tfreg.engine.train import train

    model, _ = train(gpu="", config_path=config, log_dir=log_dir, exp_name="mw", strategy="multiworker", verbose=2)
    _weights_to_npz(weights_path, [w.numpy() for w in model.weights])


def main(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if mode == "mirrored" and len(argv) == 5:
        _run_mirrored(*argv[2:])
    elif mode == "multiworker" and len(argv) == 5:
        _run_multiworker(*argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

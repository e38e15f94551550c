"""``tfreg_predict`` / ``deepreg_predict``: run a trained model on a data split and write its outputs.

Output: ``<log_dir>/<exp_name>/<split>/`` holding the pair tree of
:mod:`tfreg.engine.predict_outputs` and the three metrics tables of :mod:`tfreg.engine.predict_metrics`,
plus ``<log_dir>/<exp_name>/config.yaml``. Differences to DeepReg (contract §11): the folder is named
after the requested split (DeepReg always wrote ``test/``), an existing folder is never deleted unless
``overwrite=True``, and NIfTI files keep the inputs' geometry. Everything is written into a scratch
folder next to the target and moved into place at the end, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Optional, Sequence, Union

import tensorflow as tf

from tfreg.config import load_configs_with_provenance, save_config, validate_config
from tfreg.data.load import SPLITS
from tfreg.engine.build import build_loader, build_model, create_variables, split_dataset
from tfreg.engine.checkpoint import make_checkpoint, parse_ckpt_path, restore_checkpoint
from tfreg.engine.predict_metrics import sample_metrics, write_metrics_csvs
from tfreg.engine.predict_outputs import PredictionWriter, label_index
from tfreg.engine.runtime import configure_devices
from tfreg.engine.train import default_exp_name

logger = logging.getLogger(__name__)

IMAGE_KEYS = ("moving_image", "fixed_image", "moving_label", "fixed_label")
OUTPUT_KEYS = ("pred_fixed_image", "pred_fixed_label", "ddf", "dvf")


def default_config_path(ckpt_path: str) -> str:
    """``<exp>/config.yaml`` for a checkpoint ``<exp>/save/ckpt-N`` (where ``tfreg_train`` saved it)."""
    return os.path.normpath(os.path.join(os.path.dirname(ckpt_path), os.pardir, "config.yaml"))


def predict(
    gpu: Optional[str] = None,
    gpu_allow_growth: bool = False,
    ckpt_path: str = "",
    split: str = "test",
    batch_size: int = 1,
    exp_name: str = "",
    config_path: Union[None, str, Sequence[str]] = None,
    num_workers: int = 0,
    save_nifti: bool = True,
    save_png: bool = False,
    log_dir: str = "logs",
    overwrite: bool = False,
    registry=None,
) -> str:
    """Predict a split with a checkpoint (DeepReg's ``deepreg.predict.predict`` signature plus ``overwrite``).

    Args:
        gpu, gpu_allow_growth, num_workers: device flags, see :func:`tfreg.engine.runtime.configure_devices`.
        ckpt_path: ``.../save/ckpt-N`` written by ``tfreg_train`` (required).
        split: ``train``, ``valid`` or ``test``: the dataset split to predict.
        batch_size: prediction batch size (overrides the config's).
        exp_name: output folder name under ``log_dir``; default a timestamp.
        config_path: config file(s); default the ``config.yaml`` saved next to the checkpoint's ``save/``.
        save_nifti: write NIfTI files; save_png: write PNG slices.
        log_dir: root of the output folders.
        overwrite: replace an existing ``<log_dir>/<exp_name>/<split>`` folder (otherwise an error).
        registry: where components are looked up.

    Returns:
        The folder written, ``<log_dir>/<exp_name>/<split>``.

    Raises:
        CheckpointError, ConfigError, FileExistsError, FileNotFoundError, ValueError: before anything is
        written, naming the argument, key or path at fault.
    """
    if registry is None:
        from tfreg.registry import REGISTRY as registry
    configure_devices(gpu, gpu_allow_growth, num_workers)
    if not ckpt_path:
        raise ValueError("--ckpt_path (-k) is required: a checkpoint .../save/ckpt-N written by tfreg_train")
    if split not in SPLITS:
        raise ValueError(f"--split must be one of {list(SPLITS)}, got {split!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"--batch_size must be a positive int, got {batch_size!r}")
    ckpt_prefix, _ = parse_ckpt_path(ckpt_path)
    if not config_path:
        config_path = default_config_path(ckpt_prefix)
        if not os.path.isfile(config_path):
            raise FileNotFoundError(
                f"no config given (-c) and the training config {config_path} next to the checkpoint does not exist"
            )
    paths = [config_path] if isinstance(config_path, (str, os.PathLike)) else list(config_path)
    config, provenance = load_configs_with_provenance(paths)
    config.setdefault("train", {}).setdefault("preprocess", {})["batch_size"] = batch_size
    # only the predicted split's folder must exist (the training data may live on another machine)
    config = validate_config(config, provenance, registry=registry, check_dirs=False)

    exp_path = os.path.join(os.path.expanduser(log_dir), exp_name or default_exp_name())
    out_path = os.path.join(exp_path, split)
    if os.path.lexists(out_path) and not overwrite:
        raise FileExistsError(
            f"output folder {out_path} already exists: choose another --exp_name, or pass --overwrite"
        )

    loader = build_loader(config, split, registry, required=True)
    model = build_model(config, loader, registry)
    create_variables(model, loader)
    restore_checkpoint(make_checkpoint(model), ckpt_prefix, with_optimizer=False)
    dataset = split_dataset(config, loader, training=False, batch_size=batch_size, repeat=False, registry=registry)

    @tf.function(reduce_retracing=True)
    def forward(inputs):
        return model(inputs, training=False)

    os.makedirs(exp_path, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=f".{split}.partial-", dir=exp_path)
    try:
        writer = PredictionWriter(
            scratch,
            save_nifti=save_nifti,
            save_png=save_png,
            normalise_pred_label=config["train"]["method"] == "conditional",
        )
        rows = []
        for batch in dataset:
            outputs = {k: v.numpy() for k, v in forward(batch).items()}
            inputs = {k: v.numpy() for k, v in batch.items()}
            for i, indices in enumerate(inputs["indices"]):
                arrays = {k: inputs[k][i] for k in IMAGE_KEYS if k in inputs}
                arrays.update({k: outputs[k][i] for k in OUTPUT_KEYS if k in outputs})
                if label_index(indices) < 0:
                    for key in ("moving_label", "fixed_label", "pred_fixed_label"):
                        arrays.pop(key, None)
                moving_geometry, fixed_geometry = loader.get_geometry(indices)
                theta = outputs["theta"][i] if "theta" in outputs else None
                writer.write(arrays, indices, moving_geometry, fixed_geometry, theta=theta)
                row = sample_metrics(
                    arrays["fixed_image"] if "pred_fixed_image" in arrays else None,
                    arrays.get("pred_fixed_image"),
                    arrays.get("fixed_label"),
                    arrays.get("pred_fixed_label"),
                )
                row.update(pair_index=[int(round(float(v))) for v in indices[:-1]], label_index=label_index(indices))
                rows.append(row)
        write_metrics_csvs(rows, scratch)
        if os.path.lexists(out_path):  # overwrite: only now that the new results are complete
            shutil.rmtree(out_path) if os.path.isdir(out_path) and not os.path.islink(out_path) else os.remove(out_path)
        os.replace(scratch, out_path)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        if not os.listdir(exp_path):
            os.rmdir(exp_path)
        raise
    finally:
        loader.close()
    save_config(config, os.path.join(exp_path, "config.yaml"))
    logger.info("predictions of %d samples written to %s", len(rows), out_path)
    return out_path


__all__ = ["predict", "default_config_path"]

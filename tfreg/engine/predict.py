"""``tfreg_predict`` / ``deepreg_predict``: run a trained model on a data split and write its outputs.

Output: ``<log_dir>/<exp_name>/<split>/`` holding the pair tree of
:mod:`tfreg.engine.predict_outputs`, the three metrics tables of :mod:`tfreg.engine.predict_metrics`, the
config used (``config.yaml``) and tfreg's output marker; ``<log_dir>/<exp_name>/config.yaml`` too when that
folder has none yet (DeepReg's place for it). Differences to DeepReg (contract §11, docs/safety.md):

* the folder is named after the requested split (DeepReg always wrote ``test/``);
* an existing output folder is replaced only with ``overwrite=True`` and only when ``tfreg_predict``
  wrote it (its marker file); an output folder that is, or holds, an input (the data, the checkpoint,
  a config) is always refused; a training run's files (its ``config.yaml``) are never written over;
* the config a checkpoint was trained with (``save/config.yaml``, written by ``tfreg_train``) is the
  default, and a config given with ``-c`` must agree with it on the image shapes, the method and the
  backbone;
* everything is written into a scratch folder next to the target and renamed into place at the end, so a
  failed run leaves nothing half-written, and the scratch of a killed run is removed by the next one;
* NIfTI files keep the inputs' geometry;
* with landmarks (``dataset.landmarks: true``) the metrics tables also hold each pair's landmark errors
  in mm and robustness (:func:`tfreg.engine.predict_metrics.landmark_metrics`), and each pair folder the
  landmark files they come from (mm);
* a model that declares ``prediction_label_maps`` (the segmentation model) also gets its predicted masks
  (``<output>_mask.nii.gz``) and, with labels, the per-label Dice / HD95 / recall / precision / RVD / VOE tables
  ``segmentation_metrics.csv`` / ``segmentation_metrics_per_label.csv``
  (:mod:`tfreg.engine.predict_segmentation`). Its ``metrics.csv`` keeps the columns below, empty where the
  model has no registration output.
* every ``metrics.csv`` also has ``label_hd_mm``, ``label_assd_mm`` (full Hausdorff distance and ASSD of the
  thresholded labels, mm) and ``ddf_folding_count`` (voxels with ``det J <= 0``)
  (:func:`tfreg.engine.predict_metrics.surface_and_folding_metrics`), and last ``inference_time_s``: the
  model's forward seconds per sample (the batch's time over its samples, after an untimed warm-up call per
  input signature so that tracing is excluded; :mod:`tfreg.engine.predict_timing`);
* ``full_resolution=True`` (``--full_resolution``): the model still sees the resized images, but its DDF is
  brought to each fixed file's own grid and warps the moving file's image (linear) and labels (nearest
  neighbour); every NIfTI file and metric is then at the files' resolution, with their geometry and spacing
  (:mod:`tfreg.engine.predict_native`).
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any, Dict, List, Optional, Sequence, Union

import keras
import numpy as np
import tensorflow as tf

from tfreg.config import load_configs_with_provenance, save_config, validate_config
from tfreg.data.load import SPLITS
from tfreg.engine.build import build_loader, build_model, create_variables, split_dataset
from tfreg.engine.deepreg_checkpoint import adapt_config, resolve_checkpoint, restore_model
from tfreg.engine.predict_metrics import (
    landmark_point_metrics,
    landmark_points,
    sample_metrics,
    surface_and_folding_metrics,
    write_metrics_csvs,
)
from tfreg.engine.predict_native import NativeResolution, check_full_resolution_model, native_extra_outputs
from tfreg.engine.predict_outputs import PredictionWriter, label_index
from tfreg.engine.predict_segmentation import mask_name, segmentation_rows, write_segmentation_csvs
from tfreg.engine.predict_timing import TimedForward
from tfreg.engine.runtime import configure_devices
from tfreg.engine.train import TRAINED_CONFIG, check_voxels, default_exp_name, experiment_path
from tfreg.file_safety import (
    check_folder_holds_no_input,
    check_replaceable,
    clean_stale_scratch,
    replace_folder,
    scratch_path,
    write_marker,
)

logger = logging.getLogger(__name__)

IMAGE_KEYS = ("moving_image", "fixed_image", "moving_label", "fixed_label")
OUTPUT_KEYS = ("pred_fixed_image", "pred_fixed_label", "ddf", "dvf")


TOOL = "tfreg_predict"
#: (section, key) pairs a prediction config must share with the checkpoint's training config: the weights
#: of a fully convolutional backbone fit any image shape, so a mismatch here would go unnoticed otherwise.
MUST_MATCH_TRAINING = (
    ("dataset", "moving_image_shape"),
    ("dataset", "fixed_image_shape"),
    ("dataset", "image_shape"),
    ("train", "method"),
    ("train", "backbone"),
)


def training_config_path(ckpt_path: str) -> Optional[str]:
    """The config ``<exp>/save/ckpt-N`` was trained with: ``save/config.yaml`` (tfreg_train writes it beside
    its checkpoints), else ``<exp>/config.yaml`` (DeepReg's place, and runs of tfreg 0.1); None if neither."""
    save_dir = os.path.dirname(os.path.abspath(os.path.expanduser(ckpt_path)))
    for path in (os.path.join(save_dir, TRAINED_CONFIG), os.path.join(os.path.dirname(save_dir), "config.yaml")):
        if os.path.isfile(path):
            return path
    return None


def default_config_path(ckpt_path: str) -> str:
    """The config used when none is given: :func:`training_config_path`, or ``<exp>/config.yaml`` (named in
    the error when it does not exist)."""
    found = training_config_path(ckpt_path)
    return found or os.path.normpath(os.path.join(os.path.dirname(ckpt_path), os.pardir, "config.yaml"))


def check_against_training(config: Dict[str, Any], paths: Sequence[str], trained_path: str, registry=None) -> None:
    """Refuse a prediction config that disagrees with the training config on :data:`MUST_MATCH_TRAINING`.

    Args:
        config: the validated prediction config (defaults filled in, as in the saved training config).
        paths: the files it came from (for the message).
        trained_path: the training config (:func:`training_config_path`); validated the same way.

    Raises:
        ValueError: naming the key, both values and both files.
    """
    trained, provenance = load_configs_with_provenance([trained_path])
    trained = validate_config(trained, provenance, registry=registry, check_dirs=False)
    for section, key in MUST_MATCH_TRAINING:
        given, expected = (config.get(section) or {}).get(key), (trained.get(section) or {}).get(key)
        if given != expected:
            raise ValueError(
                f"{section}.{key} is {given!r} in the prediction config {', '.join(map(str, paths))} but the "
                f"checkpoint was trained with {expected!r} ({trained_path}); predict with the training config "
                "(leave -c out) or a checkpoint trained for this setting"
            )


def _inputs(config: Dict[str, Any], split: str, ckpt_prefix: str, config_paths: Sequence[str]) -> Dict[str, str]:
    """Everything predict reads, by role: the split's data folders, the checkpoint files, the configs."""
    found: Dict[str, str] = {}
    dirs = (config["dataset"].get(split) or {}).get("dir") or []
    for i, folder in enumerate([dirs] if isinstance(dirs, str) else dirs):
        found[f"dataset.{split}.dir[{i}]"] = os.path.expanduser(folder)
    folder, prefix = os.path.split(os.path.abspath(ckpt_prefix))
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if name.startswith(prefix + "."):
            found[f"checkpoint file {name}"] = os.path.join(folder, name)
    for i, path in enumerate(config_paths):
        found[f"config file {i + 1}"] = os.fspath(path)
    return found


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
    full_resolution: bool = False,
) -> str:
    """Predict a split with a checkpoint (DeepReg's ``deepreg.predict.predict`` signature plus ``overwrite``).

    Args:
        gpu, gpu_allow_growth, num_workers: device flags, see :func:`tfreg.engine.runtime.configure_devices`.
        ckpt_path: ``.../save/ckpt-N`` written by ``tfreg_train``, or by DeepReg 1.0 (its model zoo's
            checkpoints: recognised by content, the backbone options of its architecture are set, see
            :mod:`tfreg.engine.deepreg_checkpoint`) (required).
        split: ``train``, ``valid`` or ``test``: the dataset split to predict.
        batch_size: prediction batch size (overrides the config's).
        exp_name: output folder name under ``log_dir``; default a timestamp.
        config_path: config file(s); default the config the checkpoint was trained with
            (:func:`training_config_path`); given ones must agree with it (:func:`check_against_training`).
        save_nifti: write NIfTI files; save_png: write PNG slices.
        log_dir: root of the output folders.
        overwrite: replace an existing ``<log_dir>/<exp_name>/<split>`` folder written by tfreg_predict
            (otherwise an error; a folder without tfreg_predict's marker is never replaced).
        registry: where components are looked up.
        full_resolution: write the outputs and compute the metrics at the files' own resolution: the DDF
            predicted on the model grid is resized to each fixed file's grid, its values mapped to the moving
            file's voxels (half-pixel centres), and the moving file's image (linear) and labels (nearest
            neighbour) are warped with it (:mod:`tfreg.engine.predict_native`). The NIfTI files carry the
            files' geometry; HD/ASSD use the fixed file's spacing. ``dvf.nii.gz`` is not written (the velocity
            field stays on the model grid), ``affine.txt`` still holds the model-grid parameters and landmark
            errors (mm) come from the model-grid DDF as without the option. Refused for a model without a
            DDF output or with further model-grid images (segmentations, attention maps).

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
    if not isinstance(full_resolution, bool):
        raise ValueError(f"full_resolution (--full_resolution) must be true or false, got {full_resolution!r}")
    # a DeepReg 1.0 checkpoint (same file names) is recognised by its content
    ckpt_prefix, deepreg = resolve_checkpoint(ckpt_path)
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
    trained_path = training_config_path(ckpt_prefix)
    if trained_path is None:
        logger.warning(
            "no training config beside checkpoint %s (save/%s or ../config.yaml): the config cannot be checked "
            "against the one it was trained with",
            ckpt_prefix,
            TRAINED_CONFIG,
        )
    elif not any(os.path.realpath(p) == os.path.realpath(trained_path) for p in paths):
        check_against_training(config, paths, trained_path, registry)
    if deepreg is not None:  # after the comparison: DeepReg's own config has no tfreg options
        adapt_config(config["train"], deepreg, "--ckpt_path")

    exp_path = experiment_path(log_dir, exp_name or default_exp_name())
    out_path = os.path.join(exp_path, split)
    check_folder_holds_no_input(out_path, _inputs(config, split, ckpt_prefix, paths))
    if os.path.lexists(out_path):
        if not overwrite:
            raise FileExistsError(
                f"output folder {out_path} already exists: choose another --exp_name, or pass --overwrite"
            )
        check_replaceable(out_path, TOOL)

    loader = build_loader(config, split, registry, required=True)
    if loader.labeled and loader.sample_label == "stack":
        # predictions are written and scored per label (pair_<id>/label_<k>/): one sample per label
        logger.info("dataset sample_label: stack is predicted as 'all' (one output folder per label channel)")
        loader.sample_label = "all"
    check_voxels(loader)
    model = build_model(config, loader, registry)
    create_variables(model, loader)
    restore_model(model, ckpt_prefix, deepreg)
    dataset = split_dataset(config, loader, training=False, batch_size=batch_size, repeat=False, registry=registry)

    # a composite model's own outputs written as images (segmentations, attention maps), see its class
    extra_grids = dict(getattr(model, "prediction_images", {}) or {})
    # probability outputs the model decodes into masks, written beside them and scored per label
    label_maps = dict(getattr(model, "prediction_label_maps", {}) or {})
    extra_grids.update({mask_name(name): extra_grids[name] for name in label_maps})

    @tf.function(reduce_retracing=True)
    def forward(inputs):
        return model(inputs, training=False)

    # times every batch's forward pass; the first batch of each input signature is run once untimed (tracing)
    timed_forward = TimedForward(forward)

    native = None
    if full_resolution:
        # one batch through the model tells whether it predicts a DDF, before any folder is made
        for first in dataset.take(1):
            check_full_resolution_model(model, forward(first), config["train"]["method"])
        native = NativeResolution(loader)

    created_exp = not os.path.isdir(exp_path)
    os.makedirs(exp_path, exist_ok=True)
    for stale in clean_stale_scratch(exp_path):
        logger.info("removed %s, left by a killed run", stale)
    scratch = scratch_path(out_path)
    os.mkdir(scratch)
    rows: List[Dict[str, Any]] = []
    segmentation: List[Dict[str, Any]] = []
    try:
        writer = PredictionWriter(
            scratch,
            save_nifti=save_nifti,
            save_png=save_png,
            normalise_pred_label=config["train"]["method"] == "conditional",
        )
        for batch in dataset:
            outputs, seconds = timed_forward(batch)
            for name in label_maps:
                if name in outputs:
                    outputs[mask_name(name)] = np.asarray(
                        keras.ops.convert_to_numpy(model.label_masks(name, outputs[name]))
                    )
            inputs = {k: v.numpy() for k, v in batch.items()}
            seconds_per_sample = seconds / len(inputs["indices"])
            for i, indices in enumerate(inputs["indices"]):
                moving_geometry, fixed_geometry = loader.get_geometry(indices)
                if native is not None:
                    arrays, written_moving, written_fixed = native.arrays(indices, outputs["ddf"][i])
                    arrays.update(
                        native_extra_outputs(
                            outputs,
                            i,
                            extra_grids,
                            label_maps,
                            arrays,
                            lambda name, p: keras.ops.convert_to_numpy(model.label_masks(name, p)),
                        )
                    )
                else:
                    arrays = {k: inputs[k][i] for k in IMAGE_KEYS if k in inputs}
                    arrays.update({k: outputs[k][i] for k in OUTPUT_KEYS if k in outputs})
                    arrays.update({k: outputs[k][i] for k in extra_grids if k in outputs})
                    written_moving, written_fixed = moving_geometry, fixed_geometry
                if label_index(indices) < 0:
                    for key in ("moving_label", "fixed_label", "pred_fixed_label"):
                        arrays.pop(key, None)
                theta = outputs["theta"][i] if "theta" in outputs else None
                writer.write(arrays, indices, written_moving, written_fixed, theta=theta, extra_grids=extra_grids)
                row = sample_metrics(
                    arrays["fixed_image"] if "pred_fixed_image" in arrays else None,
                    arrays.get("pred_fixed_image"),
                    arrays.get("fixed_label"),
                    arrays.get("pred_fixed_label"),
                )
                row.update(pair_index=[int(round(float(v))) for v in indices[:-1]], label_index=label_index(indices))
                row.update(
                    surface_and_folding_metrics(
                        arrays.get("fixed_label"),
                        arrays.get("pred_fixed_label"),
                        arrays.get("ddf"),
                        written_fixed.spacing,
                    )
                )
                row["inference_time_s"] = seconds_per_sample
                if "landmark_mask" in inputs and "ddf" in outputs:  # data read with landmarks: true
                    points = landmark_points(
                        inputs["moving_landmarks"][i],
                        inputs["fixed_landmarks"][i],
                        inputs["landmark_mask"][i],
                        outputs["ddf"][i],
                        moving_geometry,
                    )
                    row.update(landmark_point_metrics(points))
                    writer.write_landmarks(indices, points)
                rows.append(row)
                if label_maps:
                    moving_source, fixed_source = loader.get_sources(indices)
                    segmentation += segmentation_rows(
                        label_maps,
                        extra_grids,
                        arrays,
                        row["pair_index"],
                        row["label_index"],
                        {"moving": written_moving, "fixed": written_fixed},
                        {"moving": moving_source, "fixed": fixed_source},
                    )
        write_metrics_csvs(rows, scratch)
        if segmentation:
            write_segmentation_csvs(segmentation, scratch)
        save_config(config, os.path.join(scratch, "config.yaml"))
        write_marker(scratch, TOOL, {"checkpoint": os.path.abspath(ckpt_prefix), "split": split})
        # an existing folder is replaced only now that the new results are complete
        replace_folder(scratch, out_path)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        if created_exp and not os.listdir(exp_path):
            os.rmdir(exp_path)
        raise
    finally:
        loader.close()
    exp_config = os.path.join(exp_path, "config.yaml")
    if not os.path.lexists(exp_config):  # DeepReg's place; never over a training run's (or another) config
        save_config(config, exp_config)
    logger.info("predictions of %d samples written to %s", len(rows), out_path)
    return out_path


__all__ = ["predict", "default_config_path", "training_config_path", "check_against_training", "MUST_MATCH_TRAINING"]

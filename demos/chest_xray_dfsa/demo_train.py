"""Train the chest X-ray DFSA demo in three stages: segmenter, label auto-encoder, registration network.

Run from anywhere after ``demo_data.py``::

    python demos/chest_xray_dfsa/demo_train.py            # the three stages of He, He and Cao (2022)
    python demos/chest_xray_dfsa/demo_train.py --test     # 1 epoch each on 16 x 16 pictures (a smoke test)

The release (JSRT, Montgomery or Shenzhen) is the one ``demo_data.py`` converted (``dataset/conversion.json``).
Each stage merges a paper config from ``config/`` with ``chest_xray_dfsa.yaml`` and a generated override
(``logs_train/<run>/<stage>.override.yaml``: the data folders, and the previous stages' files):

1. ``segmenter``: ``config/dfsa_segmenter_<dataset>.yaml``, the attention U-Net (contour-ce);
2. ``autoencoder``: ``config/dfsa_label_autoencoder.yaml``, the denoising auto-encoder of the lung masks
   (CE + 2.0 contour), whose frozen encoder the registration loss uses; its run saves
   ``save/encoder.keras``;
3. ``register``: ``config/dfsa_<dataset>.yaml``, the multi-branch DFSA network with the frozen segmenter
   (``train.init_from.path`` = stage 1's last checkpoint) and the embedding loss' ``encoder`` = stage 2's file.

``--segmenter_ckpt`` and ``--encoder`` skip stages 1 and 2. Runs go to
``demos/chest_xray_dfsa/logs_train/<timestamp>/<stage>/`` (``-test`` appended to ``--test`` runs).
"""

import argparse
import json
import os
import sys

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from data_scripts.conversion import RECORD_NAME  # noqa: E402
from demos import staged_demo  # noqa: E402

NAME = "chest_xray_dfsa"
DEMO_CONFIG = os.path.join(DEMO_DIR, f"{NAME}.yaml")
DATASETS = ("jsrt", "montgomery", "shenzhen")
AUTOENCODER_CONFIG = "dfsa_label_autoencoder.yaml"
#: where the auto-encoder stage saves the encoder the embedding loss loads
ENCODER_FILE = os.path.join("save", "encoder.keras")
#: --test: 16 x 16 pictures (the 5-level segmenter halves them 4 times; 4 DFSA branches 3 times)
TEST_SHAPE = (16, 16)


def converted_dataset(dataset: str) -> dict:
    """``{"name", "sizes"}`` of the converted release in ``dataset`` (its conversion.json)."""
    record_path = os.path.join(dataset, RECORD_NAME)
    if not os.path.isfile(record_path):
        sys.exit(f"{record_path} is missing: run python demos/{NAME}/demo_data.py first (--synthetic for a tiny one)")
    with open(record_path, encoding="utf-8") as stream:
        record = json.load(stream)
    if record.get("converter") not in DATASETS:
        sys.exit(f"{record_path} is not a chest X-ray conversion (converter {record.get('converter')!r})")
    return {"name": record["converter"], "sizes": sorted(record["sizes"])}


def data_override(folder: str, sizes, test: bool) -> dict:
    """Train on the smallest converted size, test on the largest (the paper: 64 and 256)."""
    dataset = os.path.join(folder, "dataset")
    override = {
        "train": {"dir": staged_demo.portable_path(os.path.join(dataset, str(sizes[0]), "train")), "format": "nifti"},
        "test": {"dir": staged_demo.portable_path(os.path.join(dataset, str(sizes[-1]), "test")), "format": "nifti"},
        "image_shape": list(TEST_SHAPE) if test else [sizes[0], sizes[0]],
    }
    for split in ("train", "test"):
        override[split]["labeled"] = True
    return {"dataset": override}


def embedding_labels(config_name: str, encoder: str) -> list:
    """``train.loss.label`` of ``config_name`` with every ``embedding`` entry's ``encoder`` set to ``encoder``
    (a list in a config override replaces the whole list, so the other entries are kept here)."""
    from tfreg.config.loader import load_yaml_file

    labels = load_yaml_file(staged_demo.repo_config(config_name))["train"]["loss"]["label"]
    labels = labels if isinstance(labels, list) else [labels]
    return [dict(entry, encoder=encoder) if entry.get("name") == "embedding" else entry for entry in labels]


def main(argv=None) -> str:
    """Train; returns the registration stage's folder ``<dir>/logs_train/<run>/register``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test", action="store_true", help="one epoch per stage on 16 x 16 pictures (a smoke test)")
    parser.add_argument("--segmenter_ckpt", default=None, help="a trained segmenter checkpoint: skip stage 1")
    parser.add_argument("--encoder", default=None, help="a trained label encoder (.keras): skip stage 2")
    parser.add_argument("--max_epochs", type=int, default=-1, help="override train.epochs (-1: the config's)")
    parser.add_argument("--dir", default=None, help=f"demo folder holding dataset/ (default demos/{NAME})")
    parser.add_argument("-g", "--gpu", default=None, help="CUDA_VISIBLE_DEVICES ('' for CPU); default: unchanged")
    args = parser.parse_args(argv)
    os.chdir(REPO_ROOT)  # the demo YAML's paths are relative to the repository root
    folder = staged_demo.demo_dir(NAME, args.dir)
    converted = converted_dataset(os.path.join(folder, "dataset"))
    name, sizes = converted["name"], converted["sizes"]
    epochs = 1 if args.test else args.max_epochs
    run = staged_demo.run_name(args.test)

    def stage(stage_name: str, config: str, extra_train: dict) -> str:
        override = data_override(folder, sizes, args.test)
        if extra_train:
            override["train"] = extra_train
        configs = [staged_demo.repo_config(config), DEMO_CONFIG]
        return staged_demo.run_stage(stage_name, configs, override, folder, run, epochs, args.gpu)

    segmenter_ckpt = args.segmenter_ckpt
    if segmenter_ckpt is None:
        segmenter_ckpt = staged_demo.last_checkpoint(stage("segmenter", f"dfsa_segmenter_{name}.yaml", {}))
    encoder = args.encoder
    if encoder is None:
        encoder = os.path.join(stage("autoencoder", AUTOENCODER_CONFIG, {}), ENCODER_FILE)
        if not os.path.isfile(encoder):
            raise FileNotFoundError(f"the auto-encoder stage saved no encoder: expected the file {encoder}")
    registration = f"dfsa_{name}.yaml"
    exp = stage(
        "register",
        registration,
        {
            # the config names the parts (segmenter/backbone: backbone, ...); only the path changes
            "init_from": {"path": staged_demo.portable_path(segmenter_ckpt)},
            "loss": {"label": embedding_labels(registration, staged_demo.portable_path(encoder))},
        },
    )
    print(
        f"[demo_train] {name}: segmenter {segmenter_ckpt}; encoder {encoder}; registration {exp} "
        "(next: demo_predict.py)"
    )
    return exp


if __name__ == "__main__":
    main()

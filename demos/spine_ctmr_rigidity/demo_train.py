"""Train one of van Ulsen's four configurations (US, US-RP, WS, WS-RP) on the spine CT/MR rigidity demo's data.

Run from anywhere after ``demo_data.py``::

    python demos/spine_ctmr_rigidity/demo_train.py --method us       # -MI + 2 gradient
    python demos/spine_ctmr_rigidity/demo_train.py --method us_rp    # + 0.2 rigidity on the moving vertebrae
    python demos/spine_ctmr_rigidity/demo_train.py --method ws       # -0.5 MI - 0.5 Dice + 2 gradient
    python demos/spine_ctmr_rigidity/demo_train.py --method ws_rp    # + 0.4 rigidity
    python demos/spine_ctmr_rigidity/demo_train.py --method us --test   # one epoch (a smoke test)

The config is ``config/rigidity_<method>.yaml`` (the thesis' network, losses and optimiser) merged with
``spine_ctmr_rigidity.yaml`` (the demo's data folders, the phantom's 64^3 size and its 2 bones, 50 epochs)
and a generated override, ``logs_train/<run>/<method>.override.yaml``, that sets what the data in
``dataset/`` actually hold (:func:`dataset_facts`: the image shape and the number of labels, e.g.
320 x 320 x 96 and 3 vertebrae after ``demo_data.py --input``) and the folders when ``--dir`` is used.
Runs go to ``demos/spine_ctmr_rigidity/logs_train/<timestamp>/<method>/`` (``-test`` appended to ``--test``
runs), each repeatable with ``tfreg_train -c <config> demos/spine_ctmr_rigidity/spine_ctmr_rigidity.yaml
<override>``.
"""

import argparse
import json
import os
import sys
from typing import Dict

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from data_scripts.conversion import RECORD_NAME, SPLIT_NAMES  # noqa: E402
from demos import staged_demo  # noqa: E402

NAME = "spine_ctmr_rigidity"
DEMO_CONFIG = os.path.join(DEMO_DIR, f"{NAME}.yaml")
#: --method -> van Ulsen's configuration (config/rigidity_<method>.yaml)
METHODS = ("us", "us_rp", "ws", "ws_rp")


def method_config(method: str) -> str:
    """``config/rigidity_<method>.yaml``; ValueError for a method not in :data:`METHODS`."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    return staged_demo.repo_config(f"rigidity_{method}.yaml")


def dataset_facts(dataset: str) -> Dict[str, object]:
    """``{"shape": [..], "num_labels": K, "splits": [...]}`` of the paired data in ``dataset``.

    The phantom's ``conversion.json`` says it; otherwise (``tfreg_preprocess`` output) the shape is the
    first fixed image's and K the largest label value over the training labels. SystemExit naming
    ``demo_data.py`` when there is no ``dataset/train``.
    """
    staged_demo.require_dataset(dataset, NAME)
    splits = [s for s in SPLIT_NAMES if os.path.isdir(os.path.join(dataset, s))]
    record_path = os.path.join(dataset, RECORD_NAME)
    if os.path.isfile(record_path):
        with open(record_path, encoding="utf-8") as stream:
            record = json.load(stream)
        if record.get("converter") == "rigid_phantom":
            return {"shape": list(record["shape"]), "num_labels": int(record["num_labels"]), "splits": splits}
    from tfreg.data.image_io import read_image, read_image_info

    train = os.path.join(dataset, "train")
    fixed = sorted(os.listdir(os.path.join(train, "fixed_images")))
    if not fixed:
        sys.exit(f"{os.path.join(train, 'fixed_images')} holds no image: run demo_data.py again")
    shape, _ = read_image_info(os.path.join(train, "fixed_images", fixed[0]))
    num_labels = 0
    for folder in ("moving_labels", "fixed_labels"):
        for name in sorted(os.listdir(os.path.join(train, folder))):
            labels, _ = read_image(os.path.join(train, folder, name), dtype=None)
            num_labels = max(num_labels, int(labels.max()))
    if num_labels == 0:
        sys.exit(f"the label maps in {train} are empty: the demo needs the vertebra labels (1..K)")
    return {"shape": [int(s) for s in shape], "num_labels": num_labels, "splits": splits}


def data_override(folder: str, facts: Dict[str, object]) -> dict:
    """The ``dataset`` section for the data in ``<folder>/dataset`` (a split it lacks is set to null)."""
    dataset = os.path.join(folder, "dataset")
    override = {split: None for split in SPLIT_NAMES}
    override.update(staged_demo.split_dirs(dataset, facts["splits"], labeled=True))
    override["moving_image_shape"] = list(facts["shape"])
    override["fixed_image_shape"] = list(facts["shape"])
    override["num_labels"] = int(facts["num_labels"])
    return {"dataset": override}


def main(argv=None) -> str:
    """Train; returns the run's folder ``<dir>/logs_train/<run>/<method>``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=METHODS, required=True, help="van Ulsen's configuration")
    parser.add_argument("--test", action="store_true", help="one epoch (a smoke test)")
    parser.add_argument("--max_epochs", type=int, default=-1, help="override train.epochs (-1: the demo's)")
    parser.add_argument("--dir", default=None, help=f"demo folder holding dataset/ (default demos/{NAME})")
    parser.add_argument("-g", "--gpu", default=None, help="CUDA_VISIBLE_DEVICES ('' for CPU); default: unchanged")
    args = parser.parse_args(argv)
    os.chdir(REPO_ROOT)  # the configs' paths are relative to the repository root
    folder = staged_demo.demo_dir(NAME, args.dir)
    facts = dataset_facts(os.path.join(folder, "dataset"))
    epochs = staged_demo.TEST_EPOCHS if args.test else args.max_epochs
    configs = [method_config(args.method), DEMO_CONFIG]
    override = data_override(folder, facts)
    exp = staged_demo.run_stage(
        args.method, configs, override, folder, staged_demo.run_name(args.test), epochs, args.gpu
    )
    print(f"[demo_train] {args.method}: {exp} (next: demo_predict.py --method {args.method})")
    return exp


if __name__ == "__main__":
    main()

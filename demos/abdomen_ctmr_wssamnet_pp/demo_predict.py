"""Register the Learn2Reg CT -> MR demo's validation pairs and report Dice (WSSAMNet++ Table III's metric).

Run from anywhere after ``demo_train.py``::

    python demos/abdomen_ctmr_wssamnet_pp/demo_predict.py           # newest full run
    python demos/abdomen_ctmr_wssamnet_pp/demo_predict.py --test    # newest demo_train.py --test run

Calls ``tfreg.engine.predict.predict`` on the valid split (the release's ``registration_val`` pairs; its
test labels are not published), writing ``demos/abdomen_ctmr_wssamnet_pp/logs_predict/<timestamp>/valid/``:
per pair the CT, MR, DDF, warped CT labels, the CT and MR segmentations and attention maps, and
``metrics.csv``; then prints the mean binary Dice of the warped CT organs against the MR organs
(``label_binary_dice``; paper: 0.241 with attention, 0.167 from the images alone).
"""

import os
import sys

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import staged_demo  # noqa: E402
from demos.abdomen_ctmr_wssamnet_pp.demo_train import NAME  # noqa: E402

COLUMNS = ("label_binary_dice", "label_tre", "image_ssd")


def main(argv=None) -> str:
    """Predict; returns the predictions folder ``<dir>/logs_predict/<timestamp>/<split>``."""
    parser = staged_demo.predict_parser(NAME, __doc__.split("\n\n")[0], ("train", "valid"), "valid")
    args = parser.parse_args(argv)
    os.chdir(REPO_ROOT)  # the saved config's dataset paths are relative to the repository root
    folder = staged_demo.demo_dir(NAME, args.dir)
    ckpt = args.ckpt_path or staged_demo.latest_stage_checkpoint(folder, "register", NAME, args.test)
    out = staged_demo.predict_split(ckpt, args.split, folder, args.gpu)
    print(f"[demo_predict] checkpoint {ckpt}; predictions in {out}/")
    summary = staged_demo.column_means(os.path.join(out, "metrics.csv"), COLUMNS)
    staged_demo.print_summary(f"{args.split} pairs (paper Dice: 0.241 with attention, 0.167 images only)", summary)
    return out


if __name__ == "__main__":
    main()

"""Register the chest X-ray DFSA demo's test pairs at 256 x 256 and report the paper's measures.

Run from anywhere after ``demo_train.py``::

    python demos/chest_xray_dfsa/demo_predict.py             # newest full run
    python demos/chest_xray_dfsa/demo_predict.py --test      # newest demo_train.py --test run
    python demos/chest_xray_dfsa/demo_predict.py -k <run>/register/save/ckpt-100

Calls ``tfreg.engine.predict.predict`` with ``full_resolution`` on the test split (the 256 x 256 pictures:
the network predicts at its training size, the field is up-sampled to 256 x 256 with its values scaled, and
the full-size moving picture and lung mask are warped), over every ordered test pair (the configs'
``dataset.test.pairs: all``, the paper's protocol). It writes
``demos/chest_xray_dfsa/logs_predict/<timestamp>/test/``: per pair the images, the field, the warped lung
masks, each image's segmentation and attention map (NIfTI in the input's geometry, so distances are in mm),
and ``metrics.csv``. It then prints the means of the paper's measures (:data:`COLUMNS`): DSC of the warped
lung masks, the Hausdorff distance and ASSD (mm) and the folded-pixel count (JAC); JSRT with attention in the
paper: 0.970, 9.230 mm, 1.244 mm, 48.236.
"""

import os
import sys

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import staged_demo  # noqa: E402
from demos.chest_xray_dfsa.demo_train import NAME  # noqa: E402

#: metrics.csv columns summarised (those absent from the file are left out)
COLUMNS = ("label_binary_dice", "label_hd_mm", "label_assd_mm", "ddf_folding_count")


def main(argv=None) -> str:
    """Predict; returns the predictions folder ``<dir>/logs_predict/<timestamp>/<split>``."""
    parser = staged_demo.predict_parser(NAME, __doc__.split("\n\n")[0], ("train", "test"), "test")
    args = parser.parse_args(argv)
    os.chdir(REPO_ROOT)  # the saved config's dataset paths are relative to the repository root
    folder = staged_demo.demo_dir(NAME, args.dir)
    ckpt = args.ckpt_path or staged_demo.latest_stage_checkpoint(folder, "register", NAME, args.test)
    out = staged_demo.predict_split(ckpt, args.split, folder, args.gpu, full_resolution=True)
    print(f"[demo_predict] checkpoint {ckpt}; predictions in {out}/")
    summary = staged_demo.column_means(os.path.join(out, "metrics.csv"), COLUMNS)
    staged_demo.print_summary(
        f"{args.split} pairs (JSRT paper with attention: DSC 0.970, HD 9.230 mm, ASSD 1.244 mm, JAC 48.236)", summary
    )
    return out


if __name__ == "__main__":
    main()

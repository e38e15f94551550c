#!/usr/bin/env bash
# The main job, end to end on a fresh machine with Python 3.11 (a few minutes on CPU):
#   1. set up .venv with tfreg (scripts/env.sh) and the demo extra (nilearn, which bundles MNI152);
#   2. build the MNI152 brain demo data (demos/mni152_brain/demo_data.py; kept if it already exists);
#   3. train a DDF LocalNet on it (tfreg_train);
#   4. predict the test pairs with the last checkpoint (tfreg_predict);
#   5. print where everything is and the mean Dice before (identity) and after registration.
# Usage: bash scripts/main_job.sh [--max_epochs N]   (other arguments go to tfreg_train too)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
if ! python -c "import nilearn" 2>/dev/null; then
  echo "[main_job] installing the demo extra (nilearn) into $VIRTUAL_ENV" >&2
  python -m pip install -q -e ".[demo]" >&2
fi

DEMO=demos/mni152_brain
LOGS=$DEMO/logs
STAMP=$(date +%Y%m%d-%H%M%S)
TRAIN=train_$STAMP
PREDICT=predict_$STAMP
START=$SECONDS

if [ -d "$DEMO/dataset" ]; then
  # demo_data.py writes atomically, so an existing folder is complete
  echo "[main_job] using the existing $DEMO/dataset (rebuild: python $DEMO/demo_data.py --overwrite)"
else
  python "$DEMO/demo_data.py"
fi
DATA_S=$((SECONDS - START))

tfreg_train -c "$DEMO/mni152_brain.yaml" --log_dir "$LOGS" -l "$TRAIN" "$@"
TRAIN_S=$((SECONDS - START - DATA_S))

# the last checkpoint: the largest N among save/ckpt-N.* (whatever files a checkpoint is made of)
LAST=$(ls "$LOGS/$TRAIN/save" 2>/dev/null | sed -n 's/^ckpt-\([0-9][0-9]*\).*/\1/p' | sort -n | tail -n 1)
if [ -z "$LAST" ]; then
  echo "[main_job] no checkpoint ckpt-N found in $LOGS/$TRAIN/save" >&2
  exit 1
fi
CKPT=$LOGS/$TRAIN/save/ckpt-$LAST

tfreg_predict -k "$CKPT" --split test --log_dir "$LOGS" -l "$PREDICT"
PREDICT_S=$((SECONDS - START - DATA_S - TRAIN_S))

echo
echo "[main_job] done in $((SECONDS - START)) s (data ${DATA_S} s, training ${TRAIN_S} s, prediction ${PREDICT_S} s)"
echo "[main_job]   data:        $DEMO/dataset/{train,valid,test}/ (ground-truth DDFs in $DEMO/dataset/ground_truth/)"
echo "[main_job]   training:    $LOGS/$TRAIN/ (config.yaml, TensorBoard train/ and validation/, save/)"
echo "[main_job]   checkpoint:  $CKPT"
echo "[main_job]   predictions: $LOGS/$PREDICT/test/pair_*/ (NIfTI images, DDFs, labels) and metrics.csv"
python "$DEMO/report.py" "$LOGS/$PREDICT"

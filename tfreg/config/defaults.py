"""Key names, allowed values and defaults of the DeepReg 1.0 config, in one place.

The validator, the v0.1.1 upgrade and the normalising step read these; the user guide's config
reference should agree with them.
"""

from __future__ import annotations

from typing import Dict, Tuple

from tfreg.checks import DATASET_SPLITS as _DATASET_SPLITS
from tfreg.checks import LOSS_CATEGORIES as _LOSS_CATEGORIES

#: Top-level keys the upgrader and the training entry point index directly.
REQUIRED_TOP_LEVEL_KEYS: Tuple[str, ...] = ("dataset", "train")
#: Keys of ``train`` that the engine itself requires. The model class (``train.method``) and the trainer
#: class (``train.trainer``) add the keys they read (``config_keys``) and require (``required_config_keys``):
#: DeepReg's registration models ``backbone`` and ``loss``, the default trainer ``optimizer``.
REQUIRED_TRAIN_KEYS: Tuple[str, ...] = ("method", "preprocess", "epochs", "save_period")
#: Every key of ``train`` the engine reads; keys that neither it, the model nor the trainer reads are
#: warned about (a typo would be ignored silently).
ENGINE_TRAIN_KEYS: Tuple[str, ...] = REQUIRED_TRAIN_KEYS + ("update_freq", "trainer", "init_from", "mixed_precision")
#: The model class checked when ``train.method`` is missing or unknown (so other keys are still checked).
DEFAULT_METHOD = "ddf"
#: The trainer when ``train.trainer`` is absent: Keras ``fit`` (DeepReg's behaviour).
DEFAULT_TRAINER = "fit"

#: The dataset splits, in the order loaders are built (defined in tfreg.checks, shared with the data code).
DATASET_SPLITS: Tuple[str, ...] = _DATASET_SPLITS
#: Keys of one split.
SPLIT_KEYS: Tuple[str, ...] = ("dir", "format", "labeled")
#: Optional keys of one split (tfreg): ``pairs``, the unpaired loader's pairing of that split.
SPLIT_OPTIONAL_KEYS: Tuple[str, ...] = ("pairs",)
#: Values of ``dataset.<split>.pairs``: DeepReg's shuffled neighbours, or every ordered pair.
PAIRS_OPTIONS: Tuple[str, ...] = ("sample", "all")
#: Data-loader types that take ``pairs`` (a type registered by a user is checked by its constructor).
PAIRS_LOADER_TYPES: Tuple[str, ...] = ("unpaired",)

#: Per data-loader type: the keys it requires and the optional ones, all passed to its constructor.
#: A type registered by a user but absent here accepts any keys (its constructor checks them).
DATA_LOADER_REQUIRED_KEYS: Dict[str, Tuple[str, ...]] = {
    "paired": ("moving_image_shape", "fixed_image_shape"),
    "unpaired": ("image_shape",),
    "grouped": ("image_shape", "intra_group_prob", "intra_group_option", "sample_image_in_group"),
}
#: ``num_labels`` (tfreg): label files are integer label maps with values 0..K, read as K one-hot channels.
DATA_LOADER_OPTIONAL_KEYS: Tuple[str, ...] = ("sample_label", "seed", "num_labels")
#: Landmark keys (tfreg.data.landmarks): read landmark files beside the images, the padded array size,
#: the edge of WSSAMNet's ROI cubes (null: no ROI maps), and the files' units (physical mm or voxels).
LANDMARK_KEYS: Tuple[str, ...] = ("landmarks", "max_landmarks", "landmark_roi_size", "landmark_units")
#: Optional keys of one data-loader type only, on top of DATA_LOADER_OPTIONAL_KEYS.
DATA_LOADER_TYPE_OPTIONAL_KEYS: Dict[str, Tuple[str, ...]] = {"paired": LANDMARK_KEYS}
#: ``stack`` (tfreg): every label channel in one sample, ``(*S, L)``, for losses that need all structures at once.
SAMPLE_LABEL_OPTIONS: Tuple[str, ...] = ("sample", "all", "stack")
INTRA_GROUP_OPTIONS: Tuple[str, ...] = ("forward", "backward", "unconstrained")
#: Image shapes are 3-D as in DeepReg, or 2-D (tfreg supports 2-D images).
IMAGE_SHAPE_LENGTHS: Tuple[int, ...] = (2, 3)

#: The loss categories under ``train.loss`` (defined in tfreg.checks, shared with the models).
LOSS_CATEGORIES: Tuple[str, ...] = _LOSS_CATEGORIES
#: The weight of a loss entry that does not set one (DeepReg's default, with a warning).
DEFAULT_LOSS_WEIGHT = 1.0

#: Keys of ``train.preprocess``.
REQUIRED_PREPROCESS_KEYS: Tuple[str, ...] = ("batch_size", "shuffle_buffer_num_batch")
KNOWN_PREPROCESS_KEYS: Tuple[str, ...] = REQUIRED_PREPROCESS_KEYS + ("num_parallel_calls", "data_augmentation")
#: tf.data.AUTOTUNE, DeepReg's default.
DEFAULT_NUM_PARALLEL_CALLS = -1
#: What an absent ``train.preprocess.data_augmentation`` becomes (DeepReg's v0.1.1 upgrade adds it).
DEFAULT_DATA_AUGMENTATION: Dict[str, str] = {"name": "affine"}

#: TensorBoard's update_freq words; an int (batches) is allowed too.
UPDATE_FREQ_WORDS: Tuple[str, ...] = ("epoch", "batch")

# ---------------------------------------------------------------------- v0.1.1 renames
#: v0.1.1 optimizer names to keras.optimizers class names.
V011_OPTIMIZER_NAMES: Dict[str, str] = {"adam": "Adam", "sgd": "SGD", "rms": "RMSprop"}
#: v0.1.1 loss names to 1.0 names.
V011_LOSS_NAMES: Dict[str, str] = {"mean-squared": "ssd", "dice_generalized": "dice"}
#: v0.1.1 loss argument names to 1.0 names.
V011_LOSS_ARGUMENTS: Dict[str, str] = {"neg_weight": "background_weight"}
#: v0.1.1 ``regularization.energy_type`` to the 1.0 ``name`` and extra arguments.
V011_ENERGY_TYPES: Dict[str, Tuple[str, Dict[str, bool]]] = {
    "bending": ("bending", {}),
    "gradient-l2": ("gradient", {"l1": False}),
    "gradient-l1": ("gradient", {"l1": True}),
}
#: The label-loss wrappers of v0.1.1 and the key holding the scales in each.
V011_LABEL_WRAPPERS: Tuple[str, ...] = ("single_scale", "multi_scale")

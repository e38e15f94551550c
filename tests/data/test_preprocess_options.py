"""PreprocessOptions (tfreg.data.preprocess_options): normalised values and errors naming the option."""

import pytest

from tfreg.data.preprocess_options import PreprocessOptions
from tfreg.data.rigid_alignment import RegistrationSettings


def test_defaults_and_normalisation():
    options = PreprocessOptions()
    assert options.align == "none" and options.percentiles == (1.0, 99.0) and not options.needs_labels
    options = PreprocessOptions(
        spacing=1, align="label", align_labels=5, crop_size=[320, 320, 96], keep_labels=[3, 4, 5]
    )
    assert options.spacing == (1.0,) and options.align_labels == (5,) and options.crop_size == (320, 320, 96)
    assert options.needs_labels
    record = options.to_dict()
    assert record["crop_size"] == [320, 320, 96] and record["registration"]["smoothing_sigmas"] == [2.0, 1.0, 0.0]
    assert record["max_memory_gb"] is None


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (
            {"align": "labels"},
            r"align='labels' is not supported: align must be one of \['label', 'image', 'none'\]. Did you",
        ),
        ({"align": "label"}, "align='label' needs align_labels"),
        ({"align": "image", "align_labels": [5]}, "align_labels is only used with align='label'"),
        (
            {"align_labels": [0], "align": "label"},
            "align_labels must be one or more distinct integer label values >= 1",
        ),
        ({"crop_labels": [1]}, "crop_labels centres a crop: give crop_size too"),
        ({"crop_size": [10, 0, 10]}, "crop_size must be positive integers"),
        ({"crop_size": [10.5]}, "crop_size must be positive integers"),
        ({"spacing": [1.0, -1.0]}, "spacing must be positive numbers"),
        ({"percentiles": [99, 1]}, "percentiles must be two numbers low < high"),
        ({"keep_labels": [2, 2]}, "keep_labels must be one or more distinct"),
        ({"max_memory_gb": 0}, "max_memory_gb must be a number > 0"),
        ({"registration": {"iterations": 3}}, "registration must be a RegistrationSettings"),
        ({"align_transform": "similarity"}, "align_transform='similarity' is not supported"),
        ({"align": "label", "align_labels": [5], "align_transform": "affine"}, "align_transform='affine' is aligned"),
        ({"align_transform": "rigid_affine"}, "align_transform='rigid_affine' needs a rigid stage"),
        ({"shape": [128, 0, 96]}, "shape must be positive integers"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PreprocessOptions(**kwargs)


def test_affine_and_shape_options():
    options = PreprocessOptions(align="image", align_transform="affine", shape=[128, 128, 96])
    assert options.shape == (128, 128, 96) and options.to_dict()["align_transform"] == "affine"
    assert options.to_dict()["shape"] == [128, 128, 96] and not options.needs_labels


def test_registration_settings_kept():
    options = PreprocessOptions(align="image", registration=RegistrationSettings(mi_bins=16, seed=3))
    assert options.to_dict()["registration"]["mi_bins"] == 16

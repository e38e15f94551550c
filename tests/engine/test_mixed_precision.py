"""train.mixed_precision: a TransMorph run trains in float16 with float32 fields; refusals before work."""

import keras
import numpy as np
import pytest

from tests.conftest import data_root
from tests.engine.deepreg_configs import paired_config, write_config
from tfreg.config import ConfigError
from tfreg.engine.mixed_precision import mixed_precision_policy
from tfreg.engine.train import train

#: a TransMorph small enough for 8^3 fixed images: patch 2, window 2, 2 stages
TRANSMORPH = {
    "name": "transmorph",
    "preset": "tiny",
    "patch_size": 2,
    "window_size": 2,
    "embed_dim": 8,
    "depths": [1, 1],
    "num_heads": 2,
}


@pytest.fixture
def real_data():
    if not data_root().is_dir():
        pytest.skip(f"real test data not found at {data_root()} (set TFREG_TEST_DATA)")
    return data_root()


@pytest.mark.slow
def test_mixed_precision_run_trains_in_float16_and_restores_the_policy(real_data, tmp_path):
    config = paired_config(real_data, epochs=1, backbone=TRANSMORPH, mixed_precision=True)
    path = write_config(config, tmp_path / "mixed.yaml")
    model, exp = train(config_path=path, log_dir=str(tmp_path / "logs"), exp_name="run", verbose=0)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert model.backbone.encoder.compute_dtype == "float16"
    assert model.backbone.head.compute_dtype == "float32"
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"
    assert all(np.isfinite(np.asarray(v)).all() for v in model.trainable_variables)


def test_mixed_precision_is_refused_by_trainers_without_loss_scaling(real_data, tmp_path):
    config = paired_config(real_data, epochs=1, backbone=TRANSMORPH, mixed_precision=True, trainer={"name": "loop"})
    path = write_config(config, tmp_path / "loop.yaml")
    with pytest.raises(ConfigError, match="train.mixed_precision: trainer 'loop' has no loss scaling"):
        train(config_path=path, log_dir=str(tmp_path / "logs"), exp_name="run", verbose=0)
    assert not (tmp_path / "logs").exists()
    config["train"]["mixed_precision"] = "yes"
    del config["train"]["trainer"]
    with pytest.raises(ConfigError, match="train.mixed_precision: must be true or false, got 'yes'"):
        train(config_path=write_config(config, tmp_path / "bad.yaml"), log_dir=str(tmp_path / "logs"), verbose=0)


def test_policy_context_restores_the_previous_policy_after_an_error():
    with pytest.raises(RuntimeError):
        with mixed_precision_policy(True):
            assert keras.mixed_precision.global_policy().name == "mixed_float16"
            raise RuntimeError("boom")
    assert keras.mixed_precision.global_policy().name == "float32"
    with mixed_precision_policy(False):
        assert keras.mixed_precision.global_policy().name == "float32"

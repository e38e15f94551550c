"""A 2-epoch training run on DeepReg's paired test data, shared by the engine tests (about 20 s)."""

import pytest

from tests.conftest import data_root
from tests.engine.deepreg_configs import paired_config, write_config


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """``{tmp, config_path, model, exp}`` of one run with save_period 1 (ckpt-1, ckpt-2)."""
    from tfreg.engine.train import train

    if not data_root().is_dir():
        pytest.skip(f"real test data not found at {data_root()} (set TFREG_TEST_DATA)")
    tmp = tmp_path_factory.mktemp("train")
    config_path = write_config(paired_config(data_root()), tmp / "paired.yaml")
    model, exp = train(config_path=config_path, log_dir=str(tmp / "logs"), exp_name="run", verbose=0)
    return dict(tmp=tmp, config_path=config_path, model=model, exp=exp)

"""tfreg.engine.runtime.configure_devices: -g, -gr and --num_workers (contract §3, §11)."""

import os
import subprocess
import sys

import pytest

from tfreg.engine.runtime import configure_devices


@pytest.fixture
def cuda_env(monkeypatch):
    """Let a test change CUDA_VISIBLE_DEVICES; monkeypatch puts the original value back afterwards."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "sentinel")
    return monkeypatch


@pytest.mark.parametrize("gpu", ["0", "0,1", "", 3])
def test_gpu_sets_cuda_visible_devices(cuda_env, gpu):
    configure_devices(gpu=gpu)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == str(gpu)


def test_gpu_none_leaves_environment_alone(cuda_env):
    configure_devices(gpu=None)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "sentinel"


def test_gpu_none_does_not_create_the_variable(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    configure_devices()
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_allow_growth_without_gpus_is_harmless(cuda_env):
    configure_devices(gpu=None, gpu_allow_growth=True)  # no GPU in the test machine, or already initialised


@pytest.mark.parametrize("bad", [-1, -8, True, False, 1.5, "2", None])
def test_num_workers_must_be_a_non_negative_int(cuda_env, bad):
    with pytest.raises(ValueError, match="num_workers"):
        configure_devices(gpu="7", num_workers=bad)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "sentinel"  # nothing applied before the check


def test_num_workers_limits_thread_pools_in_a_fresh_process():
    code = (
        "import tensorflow as tf\n"
        "from tfreg.engine.runtime import configure_devices\n"
        "configure_devices(gpu='', num_workers=2)\n"
        "import os\n"
        "print(repr(os.environ['CUDA_VISIBLE_DEVICES']), tf.config.threading.get_intra_op_parallelism_threads(),"
        " tf.config.threading.get_inter_op_parallelism_threads())\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "'' 2 2"


def test_num_workers_zero_keeps_defaults(cuda_env):
    import tensorflow as tf

    before = (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )
    configure_devices(num_workers=0)
    assert (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    ) == before

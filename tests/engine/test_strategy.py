"""tfreg.engine.strategy in the test process (one CPU device): names, TF_CONFIG checks, the batch-size
check, the chief rule and the BatchNormalization switch. Training under several replicas is in
``test_distribute.py`` (subprocesses)."""

import json

import keras
import pytest
import tensorflow as tf

from tfreg.engine.strategy import (
    STRATEGIES,
    _is_chief_task,
    check_batch_size,
    check_tf_config,
    is_chief,
    make_strategy,
    strategy_kind,
    synchronize_batch_norm,
)
from tfreg.layers.normalization import batch_norm_layers

WORKERS = ["127.0.0.1:20001", "127.0.0.1:20002"]


class Replicas:
    """Stands for a strategy where only ``num_replicas_in_sync`` is read."""

    def __init__(self, count):
        self.num_replicas_in_sync = count


def test_names():
    assert STRATEGIES == ("auto", "default", "mirrored", "multiworker")
    for name in ("default", "mirrored", "multiworker"):
        assert strategy_kind(name) == name
    with pytest.raises(
        ValueError, match=r"--strategy must be one of \['auto', 'default', 'mirrored', 'multiworker'\], got 'tpu'"
    ):
        strategy_kind("tpu")
    with pytest.raises(ValueError, match="--strategy must be one of"):
        make_strategy("Mirrored")  # names are case-sensitive, as on the command line


def test_auto_is_default_without_several_gpus():
    expected = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default"
    assert strategy_kind("auto") == expected
    if expected == "default":
        strategy = make_strategy("auto")
        assert strategy is tf.distribute.get_strategy()
        assert strategy.num_replicas_in_sync == 1


def test_default_and_mirrored_are_chief():
    assert is_chief(make_strategy("default"))
    mirrored = tf.distribute.MirroredStrategy(devices=["/cpu:0"])
    assert mirrored.num_replicas_in_sync == 1 and is_chief(mirrored)


def test_chief_rule():
    assert _is_chief_task("worker", 0, {"worker": WORKERS})
    assert not _is_chief_task("worker", 1, {"worker": WORKERS})
    # with an explicit chief, worker 0 is an ordinary worker
    cluster = {"chief": ["127.0.0.1:20000"], "worker": WORKERS}
    assert _is_chief_task("chief", 0, cluster)
    assert not _is_chief_task("worker", 0, cluster)
    assert not _is_chief_task("evaluator", 0, {"worker": WORKERS})


def test_check_batch_size():
    assert check_batch_size(4, Replicas(1)) == 4
    assert check_batch_size(6, Replicas(3)) == 2
    with pytest.raises(ValueError) as info:
        check_batch_size(3, Replicas(2))
    assert str(info.value) == (
        "train.preprocess.batch_size = 3 is not divisible by the 2 replicas of the Replicas: use a multiple of 2"
    )
    with pytest.raises(ValueError, match=r"^batch = 5 is not divisible by the 4 replicas"):
        check_batch_size(5, Replicas(4), key="batch")


def tf_config(**overrides):
    config = {"cluster": {"worker": WORKERS}, "task": {"type": "worker", "index": 1}}
    config.update(overrides)
    return json.dumps(config)


def test_tf_config_valid(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", tf_config())
    assert check_tf_config() == {"cluster": {"worker": WORKERS}, "task": {"type": "worker", "index": 1}}
    chief = {"cluster": {"chief": ["h:1"], "worker": WORKERS}, "task": {"type": "chief", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(chief))
    assert check_tf_config() == chief


@pytest.mark.parametrize(
    "value, message",
    [
        (None, "--strategy multiworker needs the TF_CONFIG environment variable"),
        ("", "--strategy multiworker needs the TF_CONFIG environment variable"),
        ("{cluster:", "TF_CONFIG is not valid JSON"),
        ("[1, 2]", "TF_CONFIG must be a JSON object"),
        (json.dumps({"task": {"type": "worker", "index": 0}}), "TF_CONFIG has no cluster object"),
        (tf_config(cluster={"worker": []}), "TF_CONFIG must list the workers under cluster.worker"),
        (tf_config(cluster={"ps": ["h:1"]}), "TF_CONFIG must list the workers under cluster.worker"),
        (tf_config(cluster={"worker": "h:1,h:2"}), "TF_CONFIG cluster.worker must be a list of 'host:port' strings"),
        (tf_config(cluster={"worker": ["h1", "h2"]}), "TF_CONFIG cluster.worker must be a list of 'host:port' strings"),
        (json.dumps({"cluster": {"worker": WORKERS}}), "TF_CONFIG has no task object"),
        (tf_config(task="worker"), "TF_CONFIG has no task object"),
        (tf_config(task={"index": 0}), "TF_CONFIG task.type must be 'worker' or 'chief', got None"),
        (tf_config(task={"type": "ps", "index": 0}), "TF_CONFIG task.type must be 'worker' or 'chief', got 'ps'"),
        (tf_config(task={"type": "worker"}), "TF_CONFIG task.index must be an int"),
        (tf_config(task={"type": "worker", "index": "0"}), "TF_CONFIG task.index must be an int"),
        (tf_config(task={"type": "worker", "index": True}), "TF_CONFIG task.index must be an int"),
        (
            tf_config(task={"type": "worker", "index": 2}),
            "TF_CONFIG task.index 2 is outside cluster.worker, which lists 2",
        ),
        (
            tf_config(task={"type": "chief", "index": 0}),
            "TF_CONFIG task.index 0 is outside cluster.chief, which lists 0",
        ),
    ],
)
def test_tf_config_errors(monkeypatch, value, message):
    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(ValueError) as info:
        check_tf_config()
    assert str(info.value).startswith(message)
    # make_strategy checks before creating the strategy (which would start a server and wait for peers)
    with pytest.raises(ValueError) as info:
        make_strategy("multiworker")
    assert str(info.value).startswith(message)


def tiny_model():
    """Two BatchNormalization layers, one nested in a sub-model, and one of them already synchronised."""
    inner = keras.Sequential([keras.layers.Dense(3), keras.layers.BatchNormalization()], name="inner")
    inputs = keras.Input((4,))
    x = inner(inputs)
    x = keras.layers.BatchNormalization(name="top_bn")(x)
    x = keras.layers.BatchNormalization(name="already", synchronized=True)(x)
    return keras.Model(inputs, keras.layers.Dense(1)(x))


def batch_norms(model):
    found = batch_norm_layers(model)
    assert len(found) == 3
    return found


def test_synchronize_batch_norm_single_replica_untouched():
    model = tiny_model()
    assert synchronize_batch_norm(model, Replicas(1)) == 0
    assert synchronize_batch_norm(model, tf.distribute.get_strategy()) == 0
    assert [bn.synchronized for bn in batch_norms(model)] == [False, False, True]


def test_synchronize_batch_norm_several_replicas():
    model = tiny_model()
    assert synchronize_batch_norm(model, Replicas(2)) == 2  # the one already synchronised is not counted
    assert all(bn.synchronized for bn in batch_norms(model))
    assert synchronize_batch_norm(model, Replicas(2)) == 0

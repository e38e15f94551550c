"""Registered trainers: the alternating trainer with two networks and two optimizers (which weights change
in which step; checkpoint and resume of both optimizers), the loop trainer, partial restore from YAML, and
the rigidity (moving mask) and inverse-consistency losses trained from YAML."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import data_root
from tests.engine.deepreg_configs import paired_config, write_config
from tfreg.engine.checkpoint import file_key, named_weights
from tfreg.engine.custom_loop import gradient_step, run_loop
from tfreg.engine.train import train
from tfreg.engine.trainers.base import TrainingRun
from tfreg.models.base import _with_channel
from tfreg.models.ddf import DDFModel
from tfreg.registry import REGISTRY


class TwoNets(DDFModel):
    """A composite model: the registration backbone plus a segmenter of the moving image, each its own
    parameter group, with a ``segmentation`` loss category (what the joint methods need)."""

    loss_inputs = dict(DDFModel.loss_inputs, segmentation=("moving_label", "pred_moving_label"))
    config_keys = DDFModel.config_keys + ("segmenter",)
    required_config_keys = DDFModel.required_config_keys + ("segmenter",)

    @classmethod
    def output_names(cls, labeled):
        return super().output_names(labeled) + ("pred_moving_label",)

    @classmethod
    def parameter_group_names(cls):
        return ("registration", "segmentation")

    def build_networks(self, config):
        super().build_networks(config)
        defaults = dict(image_size=self.moving_image_size, out_channels=1, out_activation="sigmoid")
        self.segmenter = self.registry.build_backbone(config=dict(config["segmenter"]), default_args=defaults)

    def parameter_groups(self):
        return {"registration": self.backbone.trainable_variables, "segmentation": self.segmenter.trainable_variables}

    def call(self, inputs, training=None):
        outputs = super().call(inputs, training=training)
        outputs["pred_moving_label"] = self.segmenter(_with_channel(inputs["moving_image"]), training=training)[..., 0]
        return outputs


SEGMENTER = {"name": "local", "num_channel_initial": 2, "extract_levels": [0, 1]}


@pytest.fixture(scope="module")
def registry():
    reg = REGISTRY.copy()
    reg.register_model("two-nets", TwoNets)
    return reg


def two_nets_config(**overrides):
    config = paired_config(data_root(), method="two-nets", epochs=2)
    train_section = config["train"]
    train_section["segmenter"] = dict(SEGMENTER)
    train_section["loss"]["segmentation"] = {"name": "dice", "weight": 1.0}
    train_section["optimizers"] = {
        "registration": train_section.pop("optimizer"),
        "segmentation": {"name": "SGD", "learning_rate": 0.1},
    }
    train_section["trainer"] = {
        "name": "alternating",
        "phases": [
            {"optimizer": "registration", "steps": 1, "losses": ["image", "label", "regularization"]},
            {"optimizer": "segmentation", "steps": 2, "losses": ["segmentation"]},
        ],
    }
    train_section.update(overrides)
    return config


def _values(variables):
    return [np.array(v.numpy()) for v in variables]


def _changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


def test_alternating_steps_change_only_their_group(registry, tmp_path):
    model = registry.build_model(
        {
            "name": "two-nets",
            "moving_image_size": (8, 8, 8),
            "fixed_image_size": (8, 8, 8),
            "index_size": 2,
            "labeled": True,
            "config": {
                "backbone": {"name": "local", "num_channel_initial": 2, "extract_levels": [0, 1]},
                "segmenter": dict(SEGMENTER),
                "loss": {
                    "image": {"name": "ssd", "weight": 1.0},
                    "segmentation": {"name": "dice", "weight": 1.0},
                },
            },
        }
    )
    rng = np.random.default_rng(0)
    sample = {k: rng.random((2, 8, 8, 8)).astype("float32") for k in ("moving_image", "fixed_image")}
    sample["moving_label"] = (rng.random((2, 8, 8, 8)) > 0.5).astype("float32")
    sample["fixed_label"] = sample["moving_label"]
    sample["indices"] = np.zeros((2, 2), "float32")
    model(sample)
    opts = {"registration": keras.optimizers.SGD(0.5), "segmentation": keras.optimizers.SGD(0.5)}
    groups = model.parameter_groups()
    steps = [
        gradient_step(model, opts["registration"], lambda: groups["registration"], ("image",)),
        gradient_step(model, opts["segmentation"], lambda: groups["segmentation"], ("segmentation",)),
    ]
    data = tf.data.Dataset.from_tensors(sample).repeat()
    reg_before, seg_before = _values(groups["registration"]), _values(groups["segmentation"])

    def run(initial_epoch):
        common = dict(strategy=tf.distribute.get_strategy(), exp_path=str(tmp_path / f"e{initial_epoch}"))
        return TrainingRun(
            train_data=data,
            train_steps=1,
            epochs=initial_epoch + 1,
            initial_epoch=initial_epoch,
            save_period=1,
            verbose=0,
            **common,
        )

    checkpoint = tf.train.Checkpoint()
    # schedule [0, 1, 1]: global step 0 is a registration step
    run_loop(model, checkpoint, run(0), steps, [0, 1, 1])
    # the DDF head starts at zero, so only the head moves in the first step; any change counts
    assert any(_changed(reg_before, groups["registration"]))
    assert not any(_changed(seg_before, groups["segmentation"]))
    assert int(opts["registration"].iterations) == 1 and int(opts["segmentation"].iterations) == 0
    # global step 1 (the cycle continues at the resumed epoch): a segmentation step
    reg_mid, seg_mid = _values(groups["registration"]), _values(groups["segmentation"])
    run_loop(model, checkpoint, run(1), steps, [0, 1, 1])
    assert not any(_changed(reg_mid, groups["registration"]))
    assert any(_changed(seg_mid, groups["segmentation"]))
    assert int(opts["registration"].iterations) == 1 and int(opts["segmentation"].iterations) == 1


def _iterations(prefix, name):
    reader = tf.train.load_checkpoint(prefix)
    keys = [k for k in reader.get_variable_to_shape_map() if k.startswith(name + "/") and "iterations" in k]
    assert len(keys) == 1, keys
    return int(reader.get_tensor(keys[0]))


def _schedule_counts(total_steps, cycle=(0, 1, 1)):
    counts = [0, 0]
    for step in range(total_steps):
        counts[cycle[step % len(cycle)]] += 1
    return counts


@pytest.fixture(scope="module")
def alternating_run(registry, tmp_path_factory):
    if not data_root().is_dir():
        pytest.skip(f"real test data not found at {data_root()} (set TFREG_TEST_DATA)")
    tmp = tmp_path_factory.mktemp("alternating")
    config_path = write_config(two_nets_config(), tmp / "two_nets.yaml")
    model, exp = train(config_path=config_path, log_dir=str(tmp / "logs"), exp_name="run", verbose=0, registry=registry)
    return dict(tmp=tmp, config_path=config_path, model=model, exp=exp)


def test_alternating_trains_and_checkpoints_both_optimizers(alternating_run):
    save = os.path.join(alternating_run["exp"], "save")
    assert sorted(os.path.basename(p) for p in glob.glob(os.path.join(save, "ckpt-*.index"))) == [
        "ckpt-1.index",
        "ckpt-2.index",
    ]
    first = [_iterations(os.path.join(save, "ckpt-1"), n) for n in ("registration", "segmentation")]
    steps_per_epoch = sum(first)
    assert steps_per_epoch > 0
    assert first == _schedule_counts(steps_per_epoch)
    second = [_iterations(os.path.join(save, "ckpt-2"), n) for n in ("registration", "segmentation")]
    assert second == _schedule_counts(2 * steps_per_epoch)


@pytest.mark.slow  # whole training; the main CI step stays under 15 minutes
def test_alternating_resume_restores_every_optimizer(alternating_run, registry):
    save = os.path.join(alternating_run["exp"], "save")
    tmp = alternating_run["tmp"]
    model, exp = train(
        config_path=alternating_run["config_path"],
        ckpt_path=os.path.join(save, "ckpt-1"),
        log_dir=str(tmp / "logs"),
        exp_name="resumed",
        verbose=0,
        registry=registry,
    )
    resumed = os.path.join(exp, "save", "ckpt-2")
    for name in ("registration", "segmentation"):
        # the counters continued from ckpt-1 through the same schedule as the uninterrupted run
        assert _iterations(resumed, name) == _iterations(os.path.join(save, "ckpt-2"), name)


@pytest.mark.slow  # whole training; the main CI step stays under 15 minutes
def test_init_from_restores_only_the_named_part(alternating_run, registry, tmp_path):
    source = os.path.join(alternating_run["exp"], "save", "ckpt-2")
    config = two_nets_config(epochs=1, init_from={"path": source, "parts": ["segmenter"]})
    config["train"]["optimizers"]["segmentation"]["learning_rate"] = 0.0  # keep the restored values
    config["train"]["optimizers"]["registration"]["learning_rate"] = 0.0
    config_path = write_config(config, tmp_path / "init.yaml")
    model, _ = train(
        config_path=config_path, log_dir=str(tmp_path / "logs"), exp_name="init", verbose=0, registry=registry
    )
    reader = tf.train.load_checkpoint(source)
    weights = named_weights(model)
    # trainable weights only: with learning rate 0 they keep the restored values, while BatchNorm's moving
    # statistics still follow the batches
    trainable = {id(v) for v in model.trainable_variables}
    seg_keys = [k for k, v in weights.items() if k.startswith("segmenter/") and id(v) in trainable]
    reg_keys = [k for k, v in weights.items() if k.startswith("backbone/") and id(v) in trainable]
    assert seg_keys and reg_keys
    for key in seg_keys:
        np.testing.assert_array_equal(weights[key].numpy(), reader.get_tensor(file_key(key)))
    # the registration backbone was not restored: a fresh initialisation differs from the trained one
    assert any(not np.array_equal(weights[k].numpy(), reader.get_tensor(file_key(k))) for k in reg_keys)


def test_alternating_refuses_callbacks(registry, tmp_path):
    config_path = write_config(two_nets_config(), tmp_path / "c.yaml")
    with pytest.raises(ValueError, match="callbacks are not supported by trainer AlternatingTrainer"):
        train(
            config_path=config_path,
            log_dir=str(tmp_path / "logs"),
            callbacks=[keras.callbacks.History()],
            registry=registry,
        )
    assert not os.path.exists(tmp_path / "logs")


def _tags(folder):
    values = {}
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                values[value.tag] = float(tf.make_ndarray(value.tensor))
    return values


def test_rigidity_and_inverse_consistency_train_from_yaml_with_the_loop_trainer(shared_data, tmp_path):
    from tests.data.helpers import write_paired

    config = paired_config(shared_data, epochs=1)
    config["dataset"]["moving_image_shape"] = [8, 8, 8]  # ddf_backward needs one grid
    # the mask's structures all at once: every label channel in each sample (DeepReg's test pairs have 1 or 3
    # labels, which cannot be stacked), so pairs of two labels each; two steps (batches of 4), the first with a
    # zero DDF (the rigidity penalty's minimum)
    ids = [f"case{i}" for i in range(8)]
    data = write_paired(str(tmp_path / "data"), ids, moving_shape=(8, 8, 8), fixed_shape=(8, 8, 8), num_labels=2)
    for split in ("train", "valid", "test"):
        config["dataset"][split]["dir"] = data
    config["dataset"]["sample_label"] = "stack"
    config["train"]["loss"]["regularization"] = [
        {"name": "rigidity", "weight": 0.2, "mask": "moving_label"},
        {"name": "inverse-consistency", "weight": 0.1},
    ]
    config["train"]["trainer"] = {"name": "loop"}
    config_path = write_config(config, tmp_path / "rigid.yaml")
    model, exp = train(config_path=config_path, log_dir=str(tmp_path / "logs"), exp_name="rigid", verbose=0)
    assert model.requested_outputs == ("ddf_backward",)
    logged = _tags(os.path.join(exp, "train"))
    for tag in ("epoch_loss/regularization_RigidityPenalty", "epoch_loss/regularization_InverseConsistency"):
        assert tag in logged and np.isfinite(logged[tag]) and logged[tag] > 0, sorted(logged)
    assert glob.glob(os.path.join(exp, "save", "ckpt-1.index"))


def test_build_optimizer_turns_a_schedule_mapping_into_a_keras_schedule():
    from tfreg.engine.trainers.base import build_optimizer

    schedule = {"name": "PolynomialDecay", "initial_learning_rate": 1.0, "decay_steps": 10, "end_learning_rate": 0.0}
    optimizer = build_optimizer({"name": "Adam", "learning_rate": dict(schedule, power=1.0)})
    optimizer.build([keras.Variable(1.0)])
    assert float(optimizer.learning_rate) == pytest.approx(1.0)
    optimizer.iterations.assign(5)  # linear decay (power 1): half-way after 5 of 10 steps
    assert float(optimizer.learning_rate) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="train.optimizer.learning_rate: name 'Poly' is not"):
        build_optimizer({"name": "Adam", "learning_rate": {"name": "Poly"}})

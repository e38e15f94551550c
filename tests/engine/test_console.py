"""tfreg.engine.console: the training console shows the loss and its terms; TensorBoard keeps every metric."""

import glob
import os
import re

import pytest
import tensorflow as tf

from tests.conftest import data_root
from tests.engine.deepreg_configs import paired_config, write_config
from tfreg.engine.console import ONE_LINE, PROGRESS_BAR, ConsoleLogger, console_names, hint, is_loss_name

# what a labeled DDF model logs in one epoch (DeepReg's names), in Keras' order
LOGS = {
    "loss": -0.25,
    "loss/image_LocalNormalizedCrossCorrelationLoss": -0.44,
    "loss/image_LocalNormalizedCrossCorrelationLoss_weighted": -0.044,
    "loss/label_DiceScoreLoss": -0.22,
    "loss/label_DiceScoreLoss_weighted": -0.22,
    "metric/moving_image_mean": 0.5,
    "metric/moving_image_min": 0.0,
    "metric/moving_image_max": 1.0,
    "metric/TRE": 1.5,
    "val_loss": -0.04,
    "val_loss/label_DiceScoreLoss": -0.008,
    "val_loss/label_DiceScoreLoss_weighted": -0.008,
    "val_metric/ddf_max": 0.1,
}
LOSS_NAMES = [
    "loss",
    "loss/image_LocalNormalizedCrossCorrelationLoss",
    "loss/label_DiceScoreLoss",
    "val_loss",
    "val_loss/label_DiceScoreLoss",
]


def test_loss_names_are_the_total_and_the_unweighted_terms():
    assert [n for n in LOGS if is_loss_name(n)] == LOSS_NAMES
    assert console_names(LOGS, "losses") == LOSS_NAMES
    assert console_names(LOGS, "all") == list(LOGS)
    with pytest.raises(ValueError, match=r"console_metrics must be one of \['losses', 'all'\], got 'most'"):
        console_names(LOGS, "most")
    assert "tfreg_train -v" in hint("logs/run") and "logs/run" in hint("logs/run")
    assert hint("logs/run", "all") is None


def _epoch(logger, epoch=0, steps=3):
    logger.on_epoch_begin(epoch)
    for batch in range(steps):
        logger.on_train_batch_end(batch, {k: v for k, v in LOGS.items() if not k.startswith("val_")})
    logger.on_epoch_end(epoch, LOGS)


def test_one_line_per_epoch(capsys):
    _epoch(ConsoleLogger(epochs=2, steps=3, verbose=ONE_LINE))
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "\r" not in out and "\x1b" not in out  # a log file's line, no control codes
    assert re.match(r"Epoch 1/2 - \d+\.\ds - loss: -0\.25 - ", out)
    shown = re.findall(r"(\S+): -?[\d.e+-]+", out)
    assert shown == LOSS_NAMES


def test_progress_bar_per_epoch(capsys):
    _epoch(ConsoleLogger(epochs=2, steps=3, verbose=PROGRESS_BAR), epoch=1)
    out = capsys.readouterr().out
    assert out.startswith("Epoch 2/2\n")
    for name in LOSS_NAMES:
        assert f"{name}: " in out
    assert "metric/" not in out and "_weighted" not in out
    _epoch(ConsoleLogger(epochs=2, steps=3, verbose=PROGRESS_BAR, console_metrics="all"))
    out = capsys.readouterr().out
    assert "metric/moving_image_min" in out and "val_metric/ddf_max" in out and "_weighted" in out


def test_bad_arguments():
    with pytest.raises(ValueError, match="verbose must be 1"):
        ConsoleLogger(epochs=1, steps=1, verbose=0)
    with pytest.raises(ValueError, match="console_metrics must be one of"):
        ConsoleLogger(epochs=1, steps=1, console_metrics="every")


def _event_tags(folder):
    tags = set()
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags.update(value.tag for value in event.summary.value)
    return tags


@pytest.mark.slow
@pytest.mark.parametrize(
    "trainer, verbose, console_metrics", [("fit", 2, "losses"), ("loop", 2, "losses"), ("fit", 1, "all")]
)
def test_a_training_prints_the_losses_and_logs_every_metric(tmp_path, capsys, trainer, verbose, console_metrics):
    """A 1-epoch run: the console has the loss, its terms and their val_ values (every metric with "all"),
    and TensorBoard still holds the image/label/field min, mean and max of train/ and validation/."""
    from tfreg.engine.train import train

    if not data_root().is_dir():
        pytest.skip(f"real test data not found at {data_root()} (set TFREG_TEST_DATA)")
    config = paired_config(data_root(), epochs=1, trainer={"name": trainer})
    _, exp = train(
        config_path=write_config(config, tmp_path / "c.yaml"),
        log_dir=str(tmp_path),
        exp_name="run",
        verbose=verbose,
        console_metrics=console_metrics,
    )
    out = capsys.readouterr().out
    terms = [
        "loss/image_LocalNormalizedCrossCorrelationLoss",
        "loss/label_DiceScoreLoss",
        "loss/regularization_BendingEnergy",
    ]
    for name in ["loss"] + terms:
        assert f" {name}: " in out and f" val_{name}: " in out, out
    statistics = ["metric/moving_image_min", "metric/fixed_label_mean", "metric/ddf_max", "metric/TRE"]
    if console_metrics == "losses":
        assert "metric/" not in out and "_weighted" not in out, out
        assert f"every metric (image, label and field statistics, TRE) is logged for TensorBoard in {exp}" in out
        assert len(re.findall(r"^Epoch 1/1 - .* - loss: ", out, flags=re.M)) == 1  # one line per epoch
    else:
        for name in statistics + [terms[0] + "_weighted"]:
            assert f" {name}: " in out and f" val_{name}: " in out, out
    train_tags = _event_tags(os.path.join(exp, "train"))
    valid_tags = _event_tags(os.path.join(exp, "validation"))
    for name in statistics + ["metric/moving_image_mean", "metric/moving_image_max"] + terms:
        assert f"epoch_{name}" in train_tags, sorted(train_tags)
        assert f"epoch_{name}" in valid_tags, sorted(valid_tags)

"""tfreg.loss_inputs: splitting a loss config entry into constructor arguments and tensor wiring."""

import pytest

from tfreg.loss_inputs import LossInput, TensorSource, check_source_names, declared_inputs, split_loss_entry


class Masked:
    """A loss with one optional mask input (as the rigidity penalty)."""

    tensor_inputs = (LossInput("mask", "structures", optional=True, is_mask=True),)

    def __init__(self, weight_a=1.0, name=None, reduction=None):
        pass


class TwoInputs:
    tensor_inputs = (
        LossInput("mask", "structures", optional=True, is_mask=True),
        LossInput("ddf_backward", "backward field", default="ddf_backward"),
    )

    def __init__(self, name=None):
        pass


class TakesChannels:
    tensor_inputs = (LossInput("mask", "structures", optional=True, is_mask=True),)

    def __init__(self, channels=None, name=None):
        pass


def test_plain_loss_has_no_inputs():
    class Plain:
        def __init__(self, name=None):
            pass

    entry = split_loss_entry(Plain, {"name": "plain", "weight": 2.0, "a": 1})
    assert entry.kwargs == {"name": "plain", "a": 1} and entry.inputs == {} and entry.problems == []


def test_short_form_with_channels():
    entry = split_loss_entry(
        Masked,
        {"name": "m", "weight": 0.2, "mask": "moving_label", "channels": [1, 2], "combine": "union", "weight_a": 3},
    )
    assert entry.problems == []
    assert entry.kwargs == {"name": "m", "weight_a": 3}
    assert entry.inputs == {"mask": TensorSource("moving_label", (1, 2), "union")}


def test_long_form():
    entry = split_loss_entry(Masked, {"name": "m", "mask": {"from": "fixed", "channels": [0]}})
    assert entry.problems == [] and entry.inputs == {"mask": TensorSource("fixed", (0,), "separate")}


def test_missing_required_mask_is_a_problem_naming_the_input():
    entry = split_loss_entry(Masked, {"name": "m", "weight": 1})
    assert len(entry.problems) == 1
    keys, message = entry.problems[0]
    assert keys == ("mask",) and "needs its input 'mask'" in message and "mask: null" in message


def test_explicit_null_leaves_the_input_out():
    entry = split_loss_entry(Masked, {"name": "m", "mask": None})
    assert entry.problems == [] and entry.inputs == {}


def test_default_source_is_used():
    entry = split_loss_entry(TwoInputs, {"name": "t", "mask": "moving_label"})
    assert entry.problems == []
    assert entry.inputs == {"mask": TensorSource("moving_label"), "ddf_backward": TensorSource("ddf_backward")}


def test_null_for_a_non_optional_input_is_refused():
    entry = split_loss_entry(TwoInputs, {"name": "t", "mask": None, "ddf_backward": None})
    assert [k for k, _ in entry.problems] == [("ddf_backward",)]


def test_short_form_only_for_a_single_input():
    # two declared inputs: channels is a constructor argument, passed through (the registry then refuses it)
    entry = split_loss_entry(TwoInputs, {"name": "t", "mask": "fixed", "channels": [0]})
    assert entry.kwargs == {"name": "t", "channels": [0]}


def test_constructor_argument_named_channels_is_not_taken():
    entry = split_loss_entry(TakesChannels, {"name": "c", "mask": "fixed", "channels": [3]})
    assert entry.kwargs == {"name": "c", "channels": [3]} and entry.inputs == {"mask": TensorSource("fixed")}


@pytest.mark.parametrize(
    "value, fragment",
    [
        ({"mask": 3}, "must be a tensor name"),
        ({"mask": {"channels": [0]}}, "needs 'from'"),
        ({"mask": {"from": "x", "bad": 1}}, "unknown key"),
        ({"mask": "x", "channels": [-1]}, "channel indices >= 0"),
        ({"mask": "x", "channels": [0, 0]}, "must not repeat"),
        ({"mask": "x", "channels": []}, "non-empty"),
        ({"mask": "x", "combine": "sum"}, "combine must be one of"),
        ({"mask": {"from": "x"}, "channels": [0]}, "not both"),
        ({"mask": None, "channels": [0]}, "is null"),
    ],
)
def test_malformed_wiring(value, fragment):
    entry = split_loss_entry(Masked, dict(name="m", **value))
    assert len(entry.problems) == 1 and fragment in entry.problems[0][1], entry.problems


def test_channels_on_a_non_mask_input_is_refused():
    entry = split_loss_entry(TwoInputs, {"name": "t", "mask": None, "ddf_backward": {"from": "d", "channels": [0]}})
    assert entry.problems and "masks only" in entry.problems[0][1]


def test_declared_inputs_must_be_loss_inputs():
    class Bad:
        tensor_inputs = ("mask",)

    with pytest.raises(TypeError, match="tuple of LossInput"):
        declared_inputs(Bad)


def test_check_source_names():
    sources = {"mask": TensorSource("moving_label"), "ddf_backward": TensorSource("nope")}
    assert check_source_names(sources, ["moving_label", "ddf"]) == [("ddf_backward", "nope")]


def test_registered_losses_declare_their_inputs():
    from tfreg.registry import LOSS_CLASS, REGISTRY

    assert [i.name for i in declared_inputs(REGISTRY.get(LOSS_CLASS, "rigidity"))] == ["mask"]
    assert [i.default for i in declared_inputs(REGISTRY.get(LOSS_CLASS, "inverse-consistency"))] == ["ddf_backward"]


# ---------------------------------------------------------------------- label channels a loss needs
@pytest.mark.parametrize(
    "name, kwargs, every, count, minimum",
    [
        ("dice", {}, None, None, None),  # DeepReg's Dice: one foreground over every channel, any labels
        ("focal", {}, None, None, None),  # binary: per-channel targets
        ("focal", {"multi_class": True, "alpha": 0.25}, True, None, 1),
        ("focal", {"multi_class": True, "alpha": [0.1, 0.9, 1.0]}, True, 3, 1),
        ("contour-ce", {"multi_class": False}, None, None, None),
        ("contour-ce", {"multi_class": True}, True, None, 1),
        ("multiclass-dice", {}, True, None, 1),
        ("multiclass-dice", {"include_background": False}, True, None, 2),
        ("multiclass-cross-entropy", {"class_weights": [1.0, 2.0]}, True, 2, 1),
    ],
)
def test_label_channel_need_of_the_registered_losses(name, kwargs, every, count, minimum):
    import tfreg.losses  # noqa: F401  (registers the losses)
    from tfreg.loss_inputs import label_channel_need
    from tfreg.registry import REGISTRY

    need = label_channel_need(REGISTRY.get("loss_class", name), dict(kwargs, name=name))
    if every is None:
        assert need is None
    else:
        assert (need.every_channel, need.count, need.minimum) == (every, count, minimum)


def test_label_channel_problems():
    from tfreg.loss_inputs import (
        LabelChannelNeed,
        channel_count_problem,
        mask_channel_problem,
        sampled_label_problem,
    )

    need = LabelChannelNeed(count=3, reason="class_weights has 3 class weights")
    assert sampled_label_problem("l", need, "stack") == "" and sampled_label_problem("l", None, "sample") == ""
    assert "dataset.sample_label: all gives one label channel" in sampled_label_problem("l", need, "all")
    assert channel_count_problem("l", need, 3) == ""
    assert "'l' wants 3 label channel(s) (class_weights has 3 class weights), but the data gives 2" in (
        channel_count_problem("l", need, 2)
    )
    mask = TensorSource("moving_label")
    assert mask_channel_problem("mask", mask, 1, "sample", "r") == ""  # one structure: the sample holds all of it
    assert "whose 2 label channels are structures" in mask_channel_problem("mask", mask, 2, None, "r")
    assert mask_channel_problem("mask", TensorSource("ddf"), 5, None, "r") == ""  # not a label tensor
    selected = TensorSource("fixed", channels=(0, 2))
    assert mask_channel_problem("mask", selected, 3, "stack", "r") == ""
    assert "selects channels [2] of 'fixed', but the data has 2" in mask_channel_problem(
        "mask", selected, 2, "stack", "r"
    )

"""tfreg/data/pipeline.py: batches, order, labels, augmentation hook, errors, tf.distribute."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tests.data.helpers import label, write_paired, write_unpaired  # noqa: E402
from tfreg.data.file_loaders import NiftiFileLoader  # noqa: E402
from tfreg.data.image_io import save_image  # noqa: E402
from tfreg.data.loaders import PairedDataLoader, UnpairedDataLoader  # noqa: E402
from tfreg.data.pipeline import build_dataset, steps_per_epoch  # noqa: E402
from tfreg.registry import REGISTRY  # noqa: E402

IDS = ["c0", "c1", "c2"]


def paired(root, labeled=True, sample_label="all", seed=0):
    return PairedDataLoader(
        NiftiFileLoader, [str(root)], labeled, sample_label if labeled else None, seed, (4, 4, 4), (3, 3, 3)
    )


def test_eval_batches_keep_the_sample_order(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels={"c0": 1, "c1": 3, "c2": 2})
    loader = paired(tmp_path)
    expected = [(i[0], l) for i, labels in loader.sample_generator() for l in labels]
    dataset = loader.get_dataset_and_preprocess(training=False, batch_size=4, repeat=False, shuffle_buffer_num_batch=1)
    batches = list(dataset)
    assert [b["indices"].shape[0] for b in batches] == [4, 2]  # no drop_remainder outside training
    got = [tuple(int(v) for v in row) for b in batches for row in b["indices"].numpy()]
    assert got == expected
    first = batches[0]
    assert set(first) == {"moving_image", "fixed_image", "moving_label", "fixed_label", "indices"}
    assert all(v.dtype == tf.float32 for v in first.values())
    assert first["moving_image"].shape[1:] == (4, 4, 4) and first["fixed_label"].shape[1:] == (3, 3, 3)
    # each row holds the label channel its indices name
    image_index, label_index = got[1]
    reference = loader.load_resized_sample([image_index], [label_index])
    np.testing.assert_allclose(first["moving_label"][1].numpy(), reference["moving_label"][0], atol=1e-6)
    np.testing.assert_allclose(first["fixed_image"][1].numpy(), reference["fixed_image"], atol=1e-6)


def test_unlabeled_indices_end_with_minus_one(tmp_path):
    write_unpaired(str(tmp_path), [f"i{k}" for k in range(4)], num_labels=None)
    loader = UnpairedDataLoader(NiftiFileLoader, [str(tmp_path)], False, None, 0, (4, 4, 4))
    batch = next(iter(loader.get_dataset_and_preprocess(False, 2, False, 0)))
    assert set(batch) == {"moving_image", "fixed_image", "indices"}
    assert batch["indices"].shape == (2, 3) and np.all(batch["indices"].numpy()[:, 2] == -1)


def test_training_drops_remainder_repeats_and_shuffles(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels=None)
    loader = paired(tmp_path, labeled=False, seed=None)
    dataset = loader.get_dataset_and_preprocess(training=True, batch_size=2, repeat=True, shuffle_buffer_num_batch=2)
    assert dataset.element_spec["moving_image"].shape == (2, 4, 4, 4)  # static batch
    seen = [tuple(b["indices"].numpy()[:, 0].astype(int)) for b in dataset.take(6)]
    assert all(len(set(s)) <= 2 for s in seen)
    assert steps_per_epoch(loader.num_samples, 2) == loader.steps_per_epoch(2) == 1
    assert steps_per_epoch(1, 4) == 1 and steps_per_epoch(9, 4) == 2


class AddOne:
    """A test augmentation: records its default arguments and adds 1 to the moving image."""

    calls = []

    def __init__(self, moving_image_size, fixed_image_size, batch_size, amount=1.0):
        AddOne.calls.append((tuple(moving_image_size), tuple(fixed_image_size), batch_size))
        self.amount = amount

    def __call__(self, inputs):
        out = dict(inputs)
        out["moving_image"] = inputs["moving_image"] + self.amount
        return out


def test_augmentation_hook(tmp_path):
    registry = REGISTRY.copy()
    registry.register_data_augmentation("add_one", cls=AddOne)
    write_paired(str(tmp_path), IDS, num_labels=1)
    loader = paired(tmp_path)
    AddOne.calls.clear()
    plain = next(iter(build_dataset(loader, True, 3, False, 0)))
    augmented = next(
        iter(
            build_dataset(
                loader, True, 3, False, 0, [{"name": "add_one"}, {"name": "add_one", "amount": 2.0}], registry=registry
            )
        )
    )
    assert AddOne.calls == [((4, 4, 4), (3, 3, 3), 3)] * 2
    np.testing.assert_allclose(augmented["moving_image"].numpy(), plain["moving_image"].numpy() + 3.0, atol=1e-6)
    np.testing.assert_array_equal(augmented["fixed_image"].numpy(), plain["fixed_image"].numpy())
    evaluation = next(iter(build_dataset(loader, False, 3, False, 0, {"name": "add_one"}, registry=registry)))
    np.testing.assert_array_equal(evaluation["moving_image"].numpy(), plain["moving_image"].numpy())
    with pytest.raises(ValueError, match=r"da_class.*'nope'.*add_one"):
        build_dataset(loader, True, 3, False, 0, {"name": "nope"}, registry=registry)
    with pytest.raises(ValueError, match="data_augmentation"):
        build_dataset(loader, True, 3, False, 0, "affine", registry=registry)


def test_bad_batch_arguments(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels=None)
    loader = paired(tmp_path, labeled=False)
    with pytest.raises(ValueError, match="batch_size"):
        build_dataset(loader, True, 0, False, 1)
    with pytest.raises(ValueError, match="shuffle_buffer_num_batch"):
        build_dataset(loader, True, 2, False, -1)


def test_load_time_error_names_the_file(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels=1)
    save_image(label((5, 6, 7), 1, 0) + 1.0, str(tmp_path / "fixed_labels" / "c2.nii.gz"))
    dataset = paired(tmp_path).get_dataset_and_preprocess(False, 1, False, 0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"fixed_labels/c2.nii.gz has values in \[1.0, 2.0\]"):
        list(dataset)


def test_default_strategy_distribution(tmp_path):
    write_paired(str(tmp_path), IDS, num_labels=None)
    strategy = tf.distribute.get_strategy()
    dataset = paired(tmp_path, labeled=False).get_dataset_and_preprocess(True, 2, True, 1)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
    assert batch["moving_image"].shape == (2, 4, 4, 4)


@pytest.mark.slow
def test_mirrored_strategy_splits_the_batch(tmp_path):
    """Two logical CPUs (set before TensorFlow starts, hence a subprocess); global batch 4 -> 2 per replica."""
    write_paired(str(tmp_path), IDS + ["c3"], num_labels=1)
    script = textwrap.dedent(
        f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from tfreg.data.file_loaders import NiftiFileLoader
        from tfreg.data.loaders import PairedDataLoader
        loader = PairedDataLoader(NiftiFileLoader, [{str(tmp_path)!r}], True, "sample", 0, (4, 4, 4), (3, 3, 3))
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        dataset = loader.get_dataset_and_preprocess(True, 4, True, 1)
        batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
        shapes = [tuple(t.shape) for t in strategy.experimental_local_results(batch["moving_label"])]
        print("SHAPES", shapes)
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert "SHAPES [(2, 4, 4, 4), (2, 4, 4, 4)]" in result.stdout, result.stderr[-3000:]


def _runtime_imports(path):
    """Modules a source file imports when it runs (anywhere, functions included), except under TYPE_CHECKING."""
    import ast

    tree = ast.parse(open(path, encoding="utf-8").read())
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            skipped.update(id(n) for n in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_pipeline_does_not_import_the_loaders():
    # The loaders import the pipeline (when a dataset is built); the pipeline must not import them back, so
    # there is no import cycle between tfreg.data.loaders and tfreg.data.pipeline.
    import tfreg.data.loaders
    import tfreg.data.pipeline

    imported = _runtime_imports(tfreg.data.pipeline.__file__)
    assert not [m for m in imported if m.startswith("tfreg.data.loaders")], sorted(imported)
    assert "tfreg.data.sampling" in imported  # steps_per_epoch lives there, beside the sample counts
    loader_dir = os.path.dirname(tfreg.data.loaders.__file__)
    for name in sorted(os.listdir(loader_dir)):
        if name.endswith(".py"):
            # Only base.py builds datasets; the others never reach the pipeline.
            uses = "tfreg.data.pipeline" in _runtime_imports(os.path.join(loader_dir, name))
            assert uses == (name == "base.py"), name
    # The moved function is the same object under every name it had.
    from tfreg.data import sampling, steps_per_epoch
    from tfreg.data.loaders.base import steps_per_epoch as from_base

    assert tfreg.data.pipeline.steps_per_epoch is sampling.steps_per_epoch is steps_per_epoch is from_base
    assert [sampling.steps_per_epoch(n, 4) for n in (0, 3, 4, 9)] == [1, 1, 1, 2]

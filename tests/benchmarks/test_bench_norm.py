"""benchmarks/bench_norm.py without training: the run's config differs from the main job's only in norm and
the data folders, results merge per (norm, seed), the Dice summary and the README table.

The measurement itself (four trainings of the main job, about 40 minutes) is not run here.
"""

import copy
import os

import pytest
import yaml

from tests.benchmarks.script_loader import load_benchmark

bench = load_benchmark("bench_norm")


@pytest.mark.parametrize("norm", ["batch", "instance", "group", "none"])
def test_run_config_changes_only_norm_and_the_data_folders(tmp_path, norm):
    with open(bench.DEMO_CONFIG, encoding="utf-8") as stream:
        demo = yaml.safe_load(stream)
    config = bench.run_config(norm, str(tmp_path / "data"))
    for split in ("train", "valid", "test"):
        assert config["dataset"][split]["dir"] == os.path.join(str(tmp_path / "data"), split)
    assert config["train"]["backbone"]["norm"] == norm
    expected = copy.deepcopy(demo)
    for split in ("train", "valid", "test"):
        expected["dataset"][split]["dir"] = config["dataset"][split]["dir"]
    expected["train"]["backbone"]["norm"] = norm
    assert config == expected


def rows():
    # two pairs, two labels: Dice after (before) per (pair, label)
    return [
        {"pair": "pair_0", "label": 0, "after": 0.8, "before": 0.6},
        {"pair": "pair_0", "label": 1, "after": 0.5, "before": 0.3},
        {"pair": "pair_1", "label": 0, "after": 0.6, "before": 0.4},
        {"pair": "pair_1", "label": 1, "after": 0.7, "before": 0.5},
    ]


def test_dice_summary_means_per_label_and_overall():
    summary = bench.dice_summary(rows(), ["grey matter"])  # label 1 has no name: label_1
    assert summary["pairs"] == 2
    assert summary["after"] == pytest.approx({"grey matter": 0.7, "label_1": 0.6, "mean": 0.65})
    assert summary["before"] == pytest.approx({"grey matter": 0.5, "label_1": 0.4, "mean": 0.45})


def entry(norm, seed, mean):
    return {
        "norm": norm,
        "seed": seed,
        "steps": 200,
        "dice": {"after": {"a": mean, "mean": mean}, "before": {"a": 0.5, "mean": 0.5}, "pairs": 4},
        "train_ddf_max": 2.5,
        "val_ddf_max": None,
        "s_per_step": 1.25,
        "wall_s": 480.0,
        "load_before": [1.0, 2.0, 3.0],
        "load_after": [1.5, 2.0, 2.5],
    }


def test_merge_replaces_the_same_norm_and_seed_and_orders_rows():
    results = []
    for e in (entry("none", 0, 0.6), entry("batch", 0, 0.5), entry("batch", 1, 0.55), entry("none", 0, 0.62)):
        results = bench.merge(results, e)
    assert [(r["norm"], r["seed"], r["dice"]["after"]["mean"]) for r in results] == [
        ("batch", 0, 0.5),
        ("batch", 1, 0.55),
        ("none", 0, 0.62),
    ]


def test_table_rows_and_the_mean_over_seeds():
    results = [entry("batch", 0, 0.5), entry("batch", 1, 0.56), entry("group", 0, 0.7)]
    results[1]["val_ddf_max_per_epoch"] = [3.0, None, 26.04, 2.7]
    meta = dict(date="d", machine="m", config="c.yaml", source="nilearn", data_seed=0, steps=200, pairs=4)
    text = bench.table(results, meta)
    lines = text.splitlines()
    assert "| identity (no registration) | - | 0.500 | 0.500 | - | - | - | - | - | - |" in lines
    assert "| batch | 1 | 0.560 | **0.560** | 2.50 | - | 26.0 (3) | 1.25 | 8.0 | 1.0/2.0/3.0 -> 1.5/2.0/2.5 |" in lines
    assert "| batch | 0 | 0.500 | **0.500** | 2.50 | - | - | 1.25 | 8.0 | 1.0/2.0/3.0 -> 1.5/2.0/2.5 |" in lines
    assert "| batch | 0, 1 | 0.530 | 0.060 |" in lines
    # one seed of group: a row, but no line in the mean-over-seeds table
    assert sum(line.startswith("| group |") for line in lines) == 1
    header = lines[2]
    assert header.startswith("| norm | seed | a | mean Dice |")
    assert all(line.count("|") == header.count("|") for line in lines[3:8])

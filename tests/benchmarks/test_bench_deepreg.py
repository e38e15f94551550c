"""benchmarks/bench_deepreg.py: its DeepReg 0.1 configs are ones tfreg reads unchanged, and its table's ratios.

The trainings themselves (minutes, and DeepReg's own environment) are not repeated here.
"""

import pytest
import yaml

from tests.benchmarks.script_loader import load_benchmark

bench = load_benchmark("bench_deepreg")


@pytest.mark.parametrize("name", ["unpaired", "paired_brain"])
def test_configs_are_deepreg_0_1_layout_and_validate_in_tfreg(tmp_path, name):
    from tfreg.config import load_configs_with_provenance, validate_config
    from tfreg.registry import REGISTRY

    config = bench.deepreg_config(name, str(tmp_path), epochs=3)
    # DeepReg 0.1's sanity check: dataset.dir with all three modes, and all three loss categories
    assert set(config["dataset"]["dir"]) == {"train", "valid", "test"}
    assert set(config["train"]["loss"]) == {"image", "label", "regularization"}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    loaded, provenance = load_configs_with_provenance([str(path)], write_updated=False)
    validated = validate_config(loaded, provenance, registry=REGISTRY)
    assert validated["train"]["backbone"]["name"] == "local"
    assert validated["train"]["preprocess"]["batch_size"] == (2 if name == "unpaired" else 1)


def test_table_ratios_and_verdicts():
    runs = [
        {"side": "deepreg", "s_per_step": 40.0, "peak_mib": 3000.0, "load": 1.0},
        {"side": "deepreg_onednn", "s_per_step": 12.0, "peak_mib": 2200.0, "load": 1.0},
        {"side": "tfreg", "s_per_step": 10.0, "peak_mib": 2100.0, "load": 1.0},
        {"side": "deepreg_onednn", "s_per_step": 14.0, "peak_mib": 2300.0, "load": 2.0},
        {"side": "tfreg", "s_per_step": 8.0, "peak_mib": 2000.0, "load": 2.0},
    ]

    class Args:
        configs = ["unpaired"]
        rounds, epochs = 2, 3
        deepreg_version, deepreg_tf = "0.1.2", "2.15.1"

    text = bench.table({"unpaired": runs}, Args)
    # medians over rounds: DeepReg 40 / tfreg 9 = 4.44x; oneDNN 13 / 9 = 1.44x; peaks are medians too
    assert "| 40.00 | 4.44x | 3000 |" in text
    assert "| 13.00 | 1.44x | 2250 |" in text
    assert "tfreg 4.44x the throughput of DeepReg (TF default kernels); target >= 2.0x: met" in text
    assert "tfreg 1.44x the throughput of DeepReg (oneDNN on); target >= 2.0x: **not met**" in text

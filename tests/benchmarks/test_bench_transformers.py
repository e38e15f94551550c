"""benchmarks/bench_transformers.py at a tiny size: its rows, a child's figures, and failures recorded as rows.

The full-size benchmark (hours, 20 GiB) is not run here; one 16^3 LocalNet child is (about 20 s).
"""

import numpy as np
import pytest

from tests.benchmarks.script_loader import load_benchmark

bench = load_benchmark("bench_transformers")

TINY = (16, 16, 16)


def independent_ddf_model(backbone):
    """A ``ddf`` model built from its class, not through the benchmark or the registry, and called once."""
    from tfreg.models import DDFModel

    model = DDFModel(
        moving_image_size=TINY,
        fixed_image_size=TINY,
        index_size=2,
        labeled=False,
        batch_size=1,
        config={
            "backbone": backbone,
            "loss": {"image": {"name": "lncc", "weight": 1.0}, "regularization": {"name": "bending", "weight": 1.0}},
        },
    )
    zeros = np.zeros((1, *TINY), np.float32)
    model({"moving_image": zeros, "fixed_image": zeros, "indices": np.zeros((1, 2), np.float32)})
    return model


@pytest.mark.slow  # a whole training: the main CI step stays under 15 minutes
def test_a_tiny_local_child_reports_its_parameters_times_and_peaks():
    result = bench.run_child("local", TINY, "float32", steps=1, repeat=1, timeout=300, max_rss_gib=8)
    assert "error" not in result, result.get("error")
    # DeepReg's LocalNet as its configs have it: 16 initial channels, extract levels 0-3
    model = independent_ddf_model({"name": "local", "num_channel_initial": 16, "extract_levels": [0, 1, 2, 3]})
    assert result["params"] == model.count_params()
    assert result["trainable_params"] == sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert result["trainable_params"] < result["params"]  # the batch norms' moving statistics are not trained
    for phase in ("train", "infer"):
        assert result[phase]["steps"] == 1 and result[phase]["s_per_step"] > 0
        assert result[phase]["first_step_s"] > result[phase]["s_per_step"]  # the first call traces
    # peaks: the whole process (TensorFlow included, so above 0.3 GiB); the end's is at least inference's
    assert 0.3 < result["infer_peak_rss_gib"] <= result["peak_rss_gib"] < 8
    assert result["load_before"] >= 0 and result["load_after"] >= 0 and result["backend"] == "tensorflow"

    text = bench.table([result], ["float32"])
    assert "| model | size | params | train s/step | infer s | peak GiB | load |" in text
    row = next(line for line in text.splitlines() if line.startswith("| DeepReg `local`"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1:3] == ["16x16x16", f"{result['trainable_params']:,}"]
    assert cells[3:5] == [f"{result['train']['s_per_step']:.2f}", f"{result['infer']['s_per_step']:.2f}"]
    assert cells[5] == f"{result['peak_rss_gib']:.1f} / {result['infer_peak_rss_gib']:.1f}"


def test_unregistered_backbones_and_python_errors_are_rows(monkeypatch):
    cases = dict(
        bench.CASES,
        ghost=bench.Case("registration", {"name": "no_such_backbone"}, "a backbone not in the registry"),
        too_deep=bench.Case(  # GlobalNet's depth 3 needs at least 2**3 voxels per axis
            "registration", {"name": "global", "num_channel_initial": 2, "depth": 3}, "too deep"
        ),
    )
    monkeypatch.setattr(bench, "CASES", cases)
    ghost = bench.measure("ghost", (4, 4, 4), "float32", steps=1, repeat=1)
    assert ghost["missing"] and "'no_such_backbone' is not registered" in ghost["error"]
    deep = bench.measure("too_deep", (4, 4, 4), "float32", steps=1, repeat=1)
    assert deep["error"].startswith("build: ValueError: image_size (4, 4, 4) does not fit depth 3")
    assert "params" not in deep and "train" not in deep
    for r in (ghost, deep):
        r.update(load_before=1.0, load_after=2.0, peak_rss_gib=0.5)

    text = bench.table([ghost, deep], ["float32"])
    assert "| a backbone not in the registry | 4x4x4 | - | not registered | - | - | 1.0 / 2.0 |" in text
    assert "| too deep | 4x4x4 | - | failed [1] | failed [1] | 0.5 / - | 1.0 / 2.0 |" in text
    assert "- [1] too_deep 4x4x4 float32: build: ValueError: image_size (4, 4, 4) does not fit depth 3" in text
    assert "- not registered in this tfreg, so not measured: ghost" in text


def test_every_default_case_is_registered_or_said_to_be_missing():
    assert "transmorph_large" not in bench.DEFAULT_CASES  # 108 M parameters: only when asked
    for name in bench.DEFAULT_CASES:
        reason = bench.missing_backbone(bench.CASES[name])
        assert reason is None or "is not registered in this tfreg" in reason, (name, reason)
    assert bench.missing_backbone(bench.CASES["local"]) is None


@pytest.mark.parametrize(
    "limits, reason",
    [
        ({"timeout": 0.5, "max_rss_gib": 8}, "over 0.5 s, killed"),
        ({"timeout": 60, "max_rss_gib": 0.05}, "over 0.05 GiB"),
    ],
)
def test_a_child_past_its_limits_is_killed_and_recorded(limits, reason):
    # killed while it imports TensorFlow: a row with the reason and its peak, not an exception
    result = bench.run_child("local", TINY, "float32", steps=1, repeat=1, **limits)
    assert result["killed"] and result["error"].startswith(reason) and result["error"].endswith("build/inference")
    assert result["peak_rss_gib"] > 0 and result["returncode"] != 0


def test_precisions_side_by_side_with_the_mixed_error_as_a_note():
    def run(precision, **extra):
        return dict(case="unet", size=[80, 96, 112], precision=precision, load_before=1.0, load_after=1.5, **extra)

    ok = run(
        "float32",
        trainable_params=2050003,
        train={"s_per_step": 12.345, "steps": 3},
        infer={"s_per_step": 2.5, "steps": 3},
        peak_rss_gib=6.04,
        infer_peak_rss_gib=3.26,
    )
    failed = run("mixed_float16", error="inference: InvalidArgumentError: no float16 MaxPool3D", peak_rss_gib=0.9)
    text = bench.table([ok, failed], ["float32", "mixed_float16"])
    header = next(line for line in text.splitlines() if line.startswith("| model"))
    assert header.count("(float32)") == 4 and header.count("(mixed_float16)") == 4
    assert (
        "| 80x96x112 | 2,050,003 | 12.35 | 2.50 | 6.0 / 3.3 | 1.0 / 1.5 | failed [1] | failed [1] | 0.9 / - | "
        "1.0 / 1.5 |" in text
    )
    assert "- [1] unet 80x96x112 mixed_float16: inference: InvalidArgumentError: no float16 MaxPool3D" in text


def test_synthetic_pair_is_a_smooth_displacement_and_the_label_one_hot():
    train, infer = bench.synthetic_inputs("segmentation", (20, 24, 28))
    fixed, moving, label = train["fixed_image"][0], train["moving_image"][0], train["fixed_label"][0]
    assert sorted(infer) == ["fixed_image", "indices", "moving_image"]  # inference sees the images only
    assert fixed.shape == moving.shape == (20, 24, 28) and label.shape == (20, 24, 28, bench.NUM_LABELS)
    assert 0 <= fixed.min() and fixed.max() <= 1
    # smooth: neighbouring voxels differ by far less than the [0, 1] range; moved: not the same image
    assert np.abs(np.diff(fixed, axis=0)).max() < 0.2
    assert 0.005 < np.abs(moving - fixed).mean() < 0.2
    # one-hot with a background: each voxel in at most one structure, about a fifth in each of the five
    per_voxel = label.sum(-1)
    assert set(np.unique(per_voxel)) == {0.0, 1.0}
    np.testing.assert_allclose(label.mean((0, 1, 2)), 0.2, atol=0.01)
    assert bench.parse_size("80x96x112") == (80, 96, 112)
    with pytest.raises(Exception, match="80x96x112"):
        bench.parse_size("80,96,112")

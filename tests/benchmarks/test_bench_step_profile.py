"""benchmarks/bench_step_profile.py: its table's speed-ups are against the DeepReg side, whatever else ran.

The profile itself (minutes, and DeepReg's own environment) is not repeated here.
"""

from tests.benchmarks.script_loader import load_benchmark

profile = load_benchmark("bench_step_profile")


def _times(**ms):
    return dict({part: value / 1000 for part, value in ms.items()}, load=1.0)


def test_speed_up_is_against_the_last_deepreg_side_not_the_fft_off_run():
    results = {
        "unpaired": {
            "deepreg_onednn": _times(**{"backbone fwd": 2000, "assembled step": 12000}),
            "tfreg_fft_off": _times(**{"backbone fwd": 1900, "assembled step": 9000}),
            "tfreg": _times(**{"backbone fwd": 1600, "assembled step": 5000}),
        }
    }
    text = profile.table(results, ["deepreg_onednn", "tfreg_fft_off", "tfreg"])
    assert (
        "| part | DeepReg (oneDNN on) | tfreg, FFT conv off | tfreg | tfreg speed-up vs DeepReg (oneDNN on) |" in text
    )
    assert "| backbone fwd | 2000 | 1900 | 1600 | 1.25x |" in text  # 2000 / 1600
    assert "| assembled step | 12000 | 9000 | 5000 | 2.40x |" in text  # 12000 / 5000
    assert "warp fwd" not in text  # parts that were not timed are left out

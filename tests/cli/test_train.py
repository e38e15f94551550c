"""tfreg_train's -v/--verbose: what the console shows (the losses by default, every metric with -v, nothing
with -v 0), with DeepReg's flags around it unchanged."""

import pytest

from tfreg.cli.train import main


@pytest.mark.parametrize(
    "flags, verbose, console_metrics",
    [
        ([], None, "losses"),  # None: a progress bar on a terminal, one line per epoch otherwise
        (["-v"], None, "all"),
        (["-v", "2"], None, "all"),
        (["--verbose", "1"], None, "losses"),
        (["-v", "0"], 0, "losses"),
    ],
)
def test_verbose_chooses_what_the_console_shows(monkeypatch, flags, verbose, console_metrics):
    import tfreg.engine.train

    seen = {}
    monkeypatch.setattr(tfreg.engine.train, "train", lambda **kwargs: seen.update(kwargs))
    # -v may come before or after DeepReg's flags, and alone before -c
    assert main(flags + ["-c", "a.yaml", "b.yaml", "-l", "exp", "--max_epochs", "2"]) == 0
    assert (seen["verbose"], seen["console_metrics"]) == (verbose, console_metrics)
    assert (seen["config_path"], seen["exp_name"], seen["max_epochs"]) == (["a.yaml", "b.yaml"], "exp", 2)
    seen.clear()
    assert main(["-c", "a.yaml", "-l", "exp"] + flags) == 0
    assert (seen["verbose"], seen["console_metrics"]) == (verbose, console_metrics)


def test_bad_verbose_level(capsys):
    with pytest.raises(SystemExit):
        main(["-c", "a.yaml", "-v", "3"])
    assert "invalid choice: 3" in capsys.readouterr().err

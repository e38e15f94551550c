"""tfreg.evaluation.progress: drawn only on terminals, carriage-return redraws, clear and close."""

import io

import pytest

from tfreg.evaluation.progress import Progress, _clock


class FakeTTY(io.StringIO):
    """A StringIO that claims to be a terminal."""

    def isatty(self):
        return True


def test_disabled_when_stream_is_not_a_tty():
    stream = io.StringIO()
    with Progress(3, "x", stream=stream) as bar:
        for _ in range(3):
            bar.update()
    assert bar.enabled is False
    assert stream.getvalue() == ""
    assert bar.count == 3


def test_explicitly_disabled_on_a_tty():
    stream = FakeTTY()
    with Progress(2, stream=stream, enabled=False) as bar:
        bar.update(2)
    assert stream.getvalue() == ""


def test_draws_on_a_tty_with_counts_and_percent():
    stream = FakeTTY()
    with Progress(4, "eval", stream=stream, width=8, min_interval=0.0) as bar:
        bar.update()
        assert stream.getvalue().endswith("eval 1/4 [##------]  25%  0:00 elapsed, 0:00 left")
        bar.update(3)
    out = stream.getvalue()
    # every draw starts with a carriage return; close does not redraw a state already shown
    assert out.count("\r") == 2  # update 1, update 4
    assert "eval 4/4 [########] 100%" in out
    assert out.endswith("\n") and out.count("\n") == 1


def test_min_interval_skips_intermediate_draws_but_not_the_last():
    stream = FakeTTY()
    bar = Progress(100, stream=stream, min_interval=3600.0)
    for _ in range(100):
        bar.update()
    # the first step (nothing drawn yet) and the last step are drawn, nothing in between
    assert stream.getvalue().count("\r") == 2
    assert "100/100" in stream.getvalue()
    bar.close()
    bar.close()  # idempotent
    assert stream.getvalue().count("\n") == 1


def test_clear_blanks_the_line_and_forces_a_redraw():
    stream = FakeTTY()
    bar = Progress(10, "abc", stream=stream, min_interval=3600.0)
    bar.update()
    length = len(bar.render())
    bar.clear()
    assert stream.getvalue().endswith("\r" + " " * length + "\r")
    bar.update()  # within min_interval, but clear() asked for a redraw
    assert stream.getvalue().rsplit("\r", 1)[-1].startswith("abc 2/10 [")


def test_zero_total_and_negative():
    stream = FakeTTY()
    with Progress(0, stream=stream):
        pass
    assert "0/0" in stream.getvalue() and "100%" in stream.getvalue()
    with pytest.raises(ValueError, match="total must be >= 0"):
        Progress(-1)


def test_clock_format():
    assert _clock(0) == "0:00"
    assert _clock(75.9) == "1:15"
    assert _clock(3 * 3600 + 62) == "3:01:02"


def test_close_draws_the_final_state_when_it_was_not_shown():
    stream = FakeTTY()
    bar = Progress(5, stream=stream, min_interval=3600.0)
    bar.update()
    bar.update()  # skipped: within min_interval
    assert "2/5" not in stream.getvalue()
    bar.close()
    assert stream.getvalue().rstrip("\n").rsplit("\r", 1)[-1].startswith("2/5 [")

"""What a training run prints: the loss and its terms per epoch; every metric goes to TensorBoard.

A registration model logs about 40 values per epoch under DeepReg's names: the total ``loss``, each loss
term (``loss/<category>_<Loss>`` and its ``..._weighted`` share of the total) and the mean, min and max of
every image, label and field (``metric/...``), each again with ``val_`` in validation. Keras' progress
output prints all of them on one line, which cannot be read. :class:`ConsoleLogger` prints a chosen part:

- ``losses`` (the default): ``loss``, each unweighted ``loss/...`` term and their ``val_`` values;
- ``all``: every logged value (Keras' own output, ``tfreg_train -v``).

Either way, everything is still written to TensorBoard (``train/``, ``validation/``); only the console
shows less. The output is a progress bar per epoch (``verbose=1``, for a terminal) or one line per epoch
(``verbose=2``, for log files: no control characters, one line per epoch).

The same logger serves every trainer: a Keras callback for ``model.fit`` (``fit``, ``progressive``), and
called by hand from tfreg's own loop (``loop``, ``alternating``; :mod:`tfreg.engine.custom_loop`).
"""

from __future__ import annotations

import sys
import time
from typing import Dict, Iterable, List, Mapping, Optional

import keras

#: ``losses``: the loss and each unweighted loss term (and ``val_``); ``all``: every logged value.
CONSOLE_METRICS = ("losses", "all")
#: Progress styles: 1 a progress bar per epoch (a terminal), 2 one line per epoch (a log file).
PROGRESS_BAR, ONE_LINE = 1, 2


def is_loss_name(name: str) -> bool:
    """Whether ``name`` is the total loss or an unweighted loss term, in training or validation
    (``loss``, ``val_loss``, ``loss/image_SSD``, ``val_loss/label_Dice``; not ``..._weighted``)."""
    base = name[len("val_") :] if name.startswith("val_") else name
    return base == "loss" or (base.startswith("loss/") and not base.endswith("_weighted"))


def console_names(names: Iterable[str], console_metrics: str = "losses") -> List[str]:
    """The names of ``names`` that the console shows for ``console_metrics`` (in the given order)."""
    if console_metrics not in CONSOLE_METRICS:
        raise ValueError(f"console_metrics must be one of {list(CONSOLE_METRICS)}, got {console_metrics!r}")
    return [n for n in names if console_metrics == "all" or is_loss_name(n)]


class ConsoleLogger(keras.callbacks.Callback):
    """Print a training run's progress with the values :func:`console_names` chooses.

    Args:
        epochs: the last epoch of the run (printed as ``Epoch e/epochs``).
        steps: training batches per epoch (the progress bar's length).
        verbose: :data:`PROGRESS_BAR` (1) or :data:`ONE_LINE` (2).
        console_metrics: ``"losses"`` or ``"all"`` (:data:`CONSOLE_METRICS`).

    Writes to ``sys.stdout`` (where Keras' progress bar writes too).

    Used by ``model.fit`` as a callback (with ``verbose=0`` so that Keras prints nothing itself), or by a
    custom loop calling :meth:`on_epoch_begin`, :meth:`on_train_batch_end` and :meth:`on_epoch_end` with
    the logs.
    """

    def __init__(
        self,
        epochs: int,
        steps: int,
        verbose: int = ONE_LINE,
        console_metrics: str = "losses",
    ):
        super().__init__()
        if verbose not in (PROGRESS_BAR, ONE_LINE):
            raise ValueError(f"verbose must be {PROGRESS_BAR} (progress bar) or {ONE_LINE} (one line), got {verbose!r}")
        console_names((), console_metrics)  # checks the choice
        self.epochs = int(epochs)
        self.steps = int(steps)
        self.verbose = verbose
        self.console_metrics = console_metrics
        self._bar: Optional[keras.utils.Progbar] = None
        self._start = 0.0

    def wants(self, name: str) -> bool:
        """Whether the console shows the logged value ``name``."""
        return bool(console_names([name], self.console_metrics))

    def shown(self, logs: Optional[Mapping[str, object]]) -> Dict[str, float]:
        """The entries of ``logs`` the console shows, as floats (non-numeric entries are left out)."""
        out = {}
        for name in console_names(list(logs or {}), self.console_metrics):
            try:
                out[name] = float(logs[name])
            except (TypeError, ValueError):
                continue
        return out

    @staticmethod
    def _write(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.time()
        if self.verbose == PROGRESS_BAR:
            self._write(f"Epoch {epoch + 1}/{self.epochs}")
            # values are already running means (Keras' metric results): shown as they are, not averaged again
            self._bar = keras.utils.Progbar(self.steps, verbose=1, unit_name="step", stateless_metrics=set())

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(batch + 1, list(self.shown(logs).items()), finalize=False)

    def on_epoch_end(self, epoch, logs=None):
        values = self.shown(logs)
        if self._bar is not None:
            self._bar.update(self.steps, list(values.items()), finalize=True)
            self._bar = None
            return
        text = " - ".join(f"{name}: {value:.4g}" for name, value in values.items())
        self._write(f"Epoch {epoch + 1}/{self.epochs} - {time.time() - self._start:.1f}s - {text}")


def console_logger(run) -> Optional[ConsoleLogger]:
    """The :class:`ConsoleLogger` of a :class:`tfreg.engine.trainers.base.TrainingRun` (its ``verbose``,
    ``console_metrics``, ``train_steps`` and ``display_epochs or epochs``), or None when nothing is printed
    (``verbose`` 0, or a worker other than the chief)."""
    if not run.verbose or not run.chief:
        return None
    return ConsoleLogger(
        run.display_epochs or run.epochs, run.train_steps, verbose=run.verbose, console_metrics=run.console_metrics
    )


def hint(log_dir: str, console_metrics: str = "losses") -> Optional[str]:
    """The line printed once before training says where the values the console leaves out are (None for
    ``all``, which leaves nothing out)."""
    if console_metrics == "all":
        return None
    return (
        "Printing the loss and its terms; every metric (image, label and field statistics, TRE) is logged for "
        f"TensorBoard in {log_dir}; tfreg_train -v prints them all."
    )


__all__ = [
    "CONSOLE_METRICS",
    "PROGRESS_BAR",
    "ONE_LINE",
    "ConsoleLogger",
    "console_logger",
    "console_names",
    "hint",
    "is_loss_name",
]

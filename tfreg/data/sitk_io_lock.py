"""One process-wide lock around SimpleITK's file reading and writing.

SimpleITK/ITK file I/O is not safe to call from several threads at once: ITK's image-IO factory and
some format libraries keep global state, and concurrent ``ReadImage``/``ReadImageInformation`` calls
abort or segfault the process now and then (SimpleITK issues #74 and #805, NiftyNet #476). tf.data runs
our loaders in parallel threads (``Dataset.map(num_parallel_calls=...)`` around ``tf.py_function``), so
every SimpleITK file call in tfreg holds :data:`SITK_IO_LOCK`. Only the file access is serialised;
resampling, augmentation and the NumPy work after a read still run in parallel.

A re-entrant lock, so a helper that holds it may call another that takes it again.
"""

from __future__ import annotations

import threading

SITK_IO_LOCK = threading.RLock()

__all__ = ["SITK_IO_LOCK"]

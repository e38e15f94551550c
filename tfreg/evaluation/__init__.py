"""tfreg.evaluation: file-level evaluation, the library behind ``tfreg_evaluate`` (NumPy, SciPy, SimpleITK;
no TensorFlow, no Keras, nothing from :mod:`tfreg.engine`).

It reads registration results from image files (tfreg, DeepReg, ANTs, Elastix), applies the array
metrics of :mod:`tfreg.metrics` pair by pair and writes CSVs. Modules (importing this package imports
none of them):

- ``inputs``: which files make up each pair (:class:`~tfreg.evaluation.inputs.PairSpec`, from a
  prediction folder, a pairs CSV or directly) and landmark files;
- ``evaluate``: :func:`~tfreg.evaluation.evaluate.evaluate`, the per-pair/per-label CSV and its summary;
- ``compare``: :func:`~tfreg.evaluation.compare.compare`, the paired Wilcoxon comparison of two CSVs, and
  :func:`~tfreg.evaluation.compare.compare_runs`, one baseline against several runs
  (``tfreg_evaluate --compare``);
- ``progress``: the terminal progress bar.

The engine may import this package; this package imports neither the engine nor TensorFlow.
"""

"""tfreg.engine: what the command lines run, callable from Python.

Modules (importing this package imports none of them):

- ``train``: :func:`~tfreg.engine.train.train` (DeepReg's ``train`` signature plus ``strategy``);
- ``predict``: :func:`~tfreg.engine.predict.predict`; ``predict_outputs`` (the pair tree) and
  ``predict_metrics`` (the three CSVs);
- ``warp``: :func:`~tfreg.engine.warp.warp_file`;
- ``build`` (loaders, datasets, model, optimizer from a config), ``checkpoint``, ``strategy``,
  ``custom_loop`` (MultiWorkerMirroredStrategy), ``runtime`` (device flags).

The file-level evaluation behind ``tfreg_evaluate`` (NumPy/SimpleITK only) is :mod:`tfreg.evaluation`.
"""

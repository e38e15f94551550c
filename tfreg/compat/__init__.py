"""Import paths of other toolkits, mapped onto tfreg.

- :mod:`tfreg.compat.deepreg`: DeepReg's module layout (``deepreg.registry``, ``deepreg.train``,
  ``deepreg.model.layer_util``, ``deepreg.loss.label``, ...) with DeepReg's names and argument names, so that
  a DeepReg script runs with ``deepreg.`` replaced by ``tfreg.compat.deepreg.`` in its imports
  (docs/migrating-from-deepreg.md lists what else changes).

These modules only re-export tfreg's own objects, or adapt an argument name; they sit above the engine
(``tfreg.compat`` -> ``tfreg.engine`` -> ...), and nothing in tfreg imports them.
"""

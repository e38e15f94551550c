"""``deepreg.model``: ``layer``, ``layer_util`` and ``backbone``."""

"""``deepreg.config``: config loading and checking (``parser``)."""

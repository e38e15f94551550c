"""tfreg.engine."""

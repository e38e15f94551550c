"""tfreg.metrics."""

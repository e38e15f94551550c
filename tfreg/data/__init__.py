"""tfreg.data."""

"""tfreg.config."""

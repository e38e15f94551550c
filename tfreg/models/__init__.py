"""tfreg.models."""

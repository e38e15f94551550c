"""tfreg.ops."""

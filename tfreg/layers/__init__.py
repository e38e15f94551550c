"""tfreg.layers."""

"""tfreg.cli."""

"""tfreg.losses."""

"""MNI152 brain demo: paired, labeled brain MR registration built from nilearn's bundled template (no download)."""

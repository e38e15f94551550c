"""OASIS demo: WSSAMNet++ inter-subject brain MR registration (frozen segmenter, contour attention)."""

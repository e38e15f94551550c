"""BraTSReg demo: WSSAMNet (self-supervised pre-training, then end-to-end segmenters with landmark ROI targets)."""

"""DeepReg's grouped prostate mask demo: longitudinal, feature-based registration of prostate gland masks."""

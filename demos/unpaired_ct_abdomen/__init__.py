"""DeepReg's unpaired abdominal CT demo: unsupervised, weakly-supervised and combined training of a U-Net."""

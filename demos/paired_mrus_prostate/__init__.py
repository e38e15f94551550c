"""DeepReg's paired prostate MR-ultrasound demo: weakly-supervised registration driven by gland labels."""

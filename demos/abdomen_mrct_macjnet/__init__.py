"""Learn2Reg Abdomen MR->CT demo: macJNet, joint segmentation-registration learning (LapIRN with attention gates and
two scSE segmenters), after an affine Mattes-MI pre-alignment at 128 x 128 x 96."""

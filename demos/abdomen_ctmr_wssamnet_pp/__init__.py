"""Learn2Reg Abdomen CT->MR demo: WSSAMNet++ with two frozen segmenters, one per modality, and contour attention."""

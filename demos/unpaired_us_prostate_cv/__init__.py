"""DeepReg's unpaired prostate ultrasound demo: inter-patient 3-D TRUS registration, a cross-validation example."""

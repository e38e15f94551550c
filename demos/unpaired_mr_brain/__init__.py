"""DeepReg's unpaired hippocampus MR demo: inter-subject registration of hippocampus crops (Learn2Reg task 4)."""

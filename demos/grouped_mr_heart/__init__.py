"""DeepReg's grouped cardiac MR demo: intra-patient registration of three MR sequences (MyoPS 2020)."""

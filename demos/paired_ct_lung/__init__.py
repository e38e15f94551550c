"""DeepReg's paired lung CT demo: expiration to inspiration CT of the same patient (Learn2Reg lung training data)."""

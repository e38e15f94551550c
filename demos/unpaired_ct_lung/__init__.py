"""DeepReg's unpaired lung CT demo: expiration CT of different patients (Learn2Reg lung training data)."""

"""DeepReg's paired brain MR-ultrasound demo: intra-operative ultrasound to pre-operative T1 MR (RESECT)."""

"""Classical non-rigid registration of prostate MR (DeepReg's demo) with tfreg_register's optimisation."""

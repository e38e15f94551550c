"""Classical affine registration of head-and-neck CT (DeepReg's demo) with tfreg_register's optimisation."""

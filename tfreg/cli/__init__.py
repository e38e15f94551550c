"""tfreg.cli: thin argparse entry points (``tfreg_train``, ``tfreg_predict``, ``tfreg_warp``, ``tfreg_vis``,
``tfreg_evaluate`` and the ``deepreg_*`` aliases); each calls one engine function."""

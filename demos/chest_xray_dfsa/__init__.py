"""Chest X-ray demo: He, He and Cao's attention-guided multi-scale registration (DFSA) on JSRT, MONT or SHEN."""

"""Scripts that convert or create data in DeepReg's on-disk layouts.

- ``nifti_to_h5.py``: NIfTI (or any SimpleITK format) split folder -> DeepReg HDF5 files;
- ``h5_to_nifti.py``: the way back;
- ``synthetic_pairs.py``: moving/fixed pairs with a known DDF from one image and label map;
- ``rigid_phantom.py``: CT/MR-like pairs with rigid "bones" (deep brain nuclei moved rigidly, the rest
  smoothly, bright in the "CT", dark in the "MR") and their exact DDFs, from a brain and its aseg labels;
- ``learn2reg_oasis.py``: Learn2Reg OASIS or neurite-oasis -> DeepReg's unpaired layout (images/labels);
- ``learn2reg_abdomen_ctmr.py``: Learn2Reg Abdomen MR-CT -> DeepReg's paired layout (moving CT, fixed MR,
  or the reverse with ``--moving MR``; ``--labels`` keeps some organs);
- ``brats_reg.py``: BraTSReg 2022 -> DeepReg's paired layout (moving follow-up, fixed baseline) with
  ``moving_landmarks``/``fixed_landmarks`` CSV folders;
- ``jsrt.py``, ``montgomery.py``, ``shenzhen.py``: the chest X-ray releases (JSRT with the SCR lung masks,
  Montgomery County, Shenzhen with its separate masks) -> DeepReg's unpaired 2-D layout at 64 and 256
  pixels, lungs merged; ``chest_xray.py`` holds what the three share (grey, resizing, geometry, split);
- ``synthetic_releases.py``: small synthetic copies of the neurite-oasis, Learn2Reg OASIS, Abdomen MR-CT
  and BraTSReg releases in their own layouts, analytic phantoms, for the demos' ``--synthetic`` option and the tests;
  ``synthetic_chest_xray.py``: the same for the three chest X-ray releases;
- ``conversion.py``: the steps all converters share (checks, seeded splits, one-hot labels, atomic write,
  SHA-256 manifest, the command line).

Each is a command-line script (``python data_scripts/<name>.py --help``) and an importable module
(``from data_scripts.nifti_to_h5 import convert_nifti_to_h5``, from the repository root).
"""

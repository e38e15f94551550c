"""Scripts that convert or create data in DeepReg's on-disk layouts.

- ``nifti_to_h5.py``: NIfTI (or any SimpleITK format) split folder -> DeepReg HDF5 files;
- ``h5_to_nifti.py``: the way back;
- ``synthetic_pairs.py``: moving/fixed pairs with a known DDF from one image and label map.

Each is a command-line script (``python data_scripts/<name>.py --help``) and an importable module
(``from data_scripts.nifti_to_h5 import convert_nifti_to_h5``, from the repository root).
"""

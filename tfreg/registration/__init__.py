"""Pairwise registration of two images by instance optimisation (``tfreg_register``).

:mod:`tfreg.registration.optimise` optimises a transform for arrays with Keras (any backend);
:mod:`tfreg.registration.files` reads the image files, starts from a trained model if asked, and writes
the results and the transforms other tools read.
"""

from tfreg.registration.optimise import OptimisationSettings, RegistrationResult, register_arrays

__all__ = ["OptimisationSettings", "RegistrationResult", "register_arrays"]

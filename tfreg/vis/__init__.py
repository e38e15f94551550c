"""tfreg.vis: figures and animations of registration results (NumPy, SciPy, SimpleITK, matplotlib).

Every plotting function writes a file and returns the written path(s); the ``tfreg_vis`` command
(:mod:`tfreg.cli.vis`) is a thin layer over them. Nothing here imports TensorFlow or Keras.

Modules, one concept each:

- :mod:`~tfreg.vis.io`: read images, labels, DDFs (NIfTI, ``.h5`` and ``file.h5:key``) and metric CSVs;
- :mod:`~tfreg.vis.slices`: slice selection, physical aspect ratio, drawing one slice;
- :mod:`~tfreg.vis.montage`: moving / warped / fixed slice montages;
- :mod:`~tfreg.vis.overlay`: colour-channel or alpha overlays and checkerboards;
- :mod:`~tfreg.vis.contours`: label contours over an image;
- :mod:`~tfreg.vis.grid`: a regular grid deformed by a DDF;
- :mod:`~tfreg.vis.jacobian_map`: det J colour maps with folding highlighted;
- :mod:`~tfreg.vis.distributions`: violin and box plots of a metric across methods;
- :mod:`~tfreg.vis.jacobian_distribution`: det J inside labels, violins with pair medians and fixed-width
  histograms (``tfreg_evaluate --jacobian-figure``);
- :mod:`~tfreg.vis.deepreg_modes`: DeepReg's ``deepreg_vis`` modes 0-3 (slice, warp and tiled GIFs).

Display convention (all modes): a 2-D slice with in-plane array axes ``(a, b)``, ``a < b``, is drawn with
``a`` to the right and ``b`` upwards (``imshow(slice.T, origin="lower")``), each pixel stretched to its
physical aspect ``spacing[b] / spacing[a]``.
"""

import matplotlib

# Figures are only ever written to files: the Agg backend works without a display (servers, CI, SSH).
matplotlib.use("Agg")

__all__ = [
    "contours",
    "deepreg_modes",
    "distributions",
    "grid",
    "io",
    "jacobian_distribution",
    "jacobian_map",
    "montage",
    "overlay",
    "slices",
]

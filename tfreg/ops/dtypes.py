"""Dtype helpers shared by the ops (``keras.ops`` only)."""

from keras import ops


def as_float(x):
    """``x`` as a tensor with a floating dtype: integer and boolean inputs (e.g. uint8 images) become
    float32, floating inputs keep their dtype (float16 stays float16 under mixed precision)."""
    x = ops.convert_to_tensor(x)
    if "float" not in str(x.dtype):
        x = ops.cast(x, "float32")
    return x

"""Backend-neutral value-and-gradient for tests, so one test body runs under TensorFlow and JAX."""

import keras
import numpy as np


def value_and_grads(fn, *args):
    """Evaluates ``fn(*args)`` (reduced to a scalar by summation) and its gradients w.r.t. every arg.

    Args:
        fn: a function of tensors built with ``keras.ops``.
        *args: NumPy float32 arrays.

    Returns:
        ``(value, [grad per arg])`` as NumPy arrays.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.Variable(a) for a in args]
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(fn(*tensors))
        grads = tape.gradient(value, tensors)
        grads = [np.zeros_like(a) if g is None else np.asarray(g) for a, g in zip(args, grads)]
        return np.asarray(value), grads
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def scalar(*xs):
            return jnp.sum(fn(*xs))

        value, grads = jax.value_and_grad(scalar, argnums=tuple(range(len(args))))(*[jnp.asarray(a) for a in args])
        return np.asarray(value), [np.asarray(g) for g in grads]
    raise NotImplementedError(f"value_and_grads does not support the {backend} backend")

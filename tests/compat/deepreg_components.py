"""Custom components written by us in the shape of DeepReg's examples/: a backbone subclassing ``tf.keras.Model``
with DeepReg's backbone keywords (examples/custom_backbone.py), an image/label loss subclassing
``tf.keras.losses.Loss`` with DeepReg's ``reduction`` default (custom_image_label_loss.py), and a loss with a
constructor parameter (custom_parameterized_image_label_loss.py).

Used by tests/compat/test_deepreg.py and, registered under the names DeepReg's example YAMLs use, by
tests/config/test_deepreg_repo_configs.py and tests/engine/test_train_deepreg_repo_configs.py.
"""

import tensorflow as tf


class TwoConvBackbone(tf.keras.Model):
    """A backbone in the shape of DeepReg's examples/custom_backbone.py: DeepReg's keywords, two convolutions."""

    def __init__(self, image_size, out_channels, num_channel_initial, out_kernel_initializer, out_activation, **kwargs):
        super().__init__(**kwargs)
        self.image_size = image_size
        self.hidden = tf.keras.layers.Conv3D(num_channel_initial, 3, padding="same", activation="relu")
        self.head = tf.keras.layers.Conv3D(
            out_channels, 1, padding="same", kernel_initializer=out_kernel_initializer, activation=out_activation
        )

    def call(self, inputs, training=None, mask=None):
        return self.head(self.hidden(inputs))


class RootMeanSquare(tf.keras.losses.Loss):
    """``sqrt(mean((t - p)^2))`` per sample, in the shape of DeepReg's examples/custom_image_label_loss.py."""

    def __init__(self, reduction=tf.keras.losses.Reduction.SUM, name="RootMeanSquare"):
        super().__init__(reduction=reduction, name=name)

    def call(self, y_true, y_pred):
        diff = tf.reshape(y_true - y_pred, (tf.shape(y_true)[0], -1))
        return tf.sqrt(tf.reduce_mean(diff * diff, axis=1))


class LpDistance(tf.keras.losses.Loss):
    """``||t - p||_p`` per sample with a constructor parameter, as DeepReg's parameterised-loss example."""

    def __init__(self, p, reduction=tf.keras.losses.Reduction.SUM, name="LpDistance"):
        super().__init__(reduction=reduction, name=name)
        if p not in (1, 2):
            raise ValueError(f"p must be 1 or 2, got {p}")
        self.p = p

    def call(self, y_true, y_pred):
        diff = tf.reshape(y_true - y_pred, (tf.shape(y_true)[0], -1))
        return tf.norm(diff, ord=self.p, axis=1)


__all__ = ["LpDistance", "RootMeanSquare", "TwoConvBackbone"]

"""``get_config`` from declared attribute names: one implementation for tfreg's losses, layers and backbones.

Most tfreg components store each constructor argument, validated, under the argument's own name, and
their ``get_config`` is the base class's config plus those attributes. Instead of one ``get_config`` per
class re-listing them, a class declares ``config_keys`` (its own arguments only) and inherits
:class:`AttributeConfigMixin`; the keys of every class along the MRO are collected, bases first. A class
whose config differs from its attributes (a renamed or derived value) still overrides ``get_config``;
``config_drop`` removes base-class keys the constructor does not take.
Pure Python: no Keras import here.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple


def attribute_config(obj: Any) -> Dict[str, Any]:
    """``{key: getattr(obj, key)}`` for the ``config_keys`` declared by each class of ``type(obj).__mro__``.

    Bases come first, so a subclass's value of a repeated key wins. Tuples are stored as lists (what a
    YAML or JSON round trip gives back), so that ``from_config(get_config())`` reproduces the config.
    """
    config: Dict[str, Any] = {}
    for klass in reversed(type(obj).__mro__):
        for key in vars(klass).get("config_keys", ()):
            value = getattr(obj, key)
            config[key] = list(value) if isinstance(value, tuple) else value
    return config


class AttributeConfigMixin:
    """Adds the attributes named in ``config_keys`` (along the MRO) to the base class's ``get_config``.

    Put it before the Keras base: ``class ConvBlock(AttributeConfigMixin, keras.layers.Layer)``.
    """

    #: Constructor arguments this class adds, saved from the attributes of the same name.
    config_keys: Tuple[str, ...] = ()
    #: Keys of the base class's config that the constructor does not take (e.g. a weight-free layer's
    #: ``trainable``), removed so that ``from_config(get_config())`` works.
    config_drop: Tuple[str, ...] = ()

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(attribute_config(self))
        for key in self.config_drop:
            config.pop(key, None)
        return config


__all__ = ["attribute_config", "AttributeConfigMixin"]

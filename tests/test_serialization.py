"""Tests for tfreg/serialization.py: get_config from the ``config_keys`` declared along the MRO."""

from tfreg.serialization import AttributeConfigMixin, attribute_config


class _Base:
    def get_config(self):
        return {"name": "n", "trainable": True}


class _A(AttributeConfigMixin, _Base):
    config_keys = ("size",)
    config_drop = ("trainable",)

    def __init__(self):
        self.size = (3, 4)
        self.scale = 2.0


class _B(_A):
    config_keys = ("scale",)


def test_attribute_config_collects_keys_bases_first_and_lists_tuples():
    assert attribute_config(_B()) == {"size": [3, 4], "scale": 2.0}
    assert list(attribute_config(_B())) == ["size", "scale"]


def test_mixin_adds_attributes_to_the_base_config_and_drops_keys():
    assert _B().get_config() == {"name": "n", "size": [3, 4], "scale": 2.0}
    assert _A().get_config() == {"name": "n", "size": [3, 4]}


def test_class_losses_do_not_save_spatial_dims():
    from tfreg.registry import REGISTRY

    config = REGISTRY.build_loss({"name": "multiclass-dice"}).get_config()
    assert "spatial_dims" not in config and config["from_logits"] is False

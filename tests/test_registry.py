"""Tests for tfreg/registry.py: DeepReg's REGISTRY API and tfreg's error messages.

Every test works on its own ``Registry()`` (or a copy), so the global REGISTRY is never modified.
"""

import sys
import types

import pytest

from tfreg.registry import (
    ATTENTION_CLASS,
    BACKBONE_CLASS,
    DATA_AUGMENTATION_CLASS,
    DATA_LOADER_CLASS,
    FILE_LOADER_CLASS,
    KNOWN_CATEGORIES,
    LOSS_CLASS,
    MODEL_CLASS,
    REGISTRY,
    Registry,
)


class Thing:
    """A component with two arguments, one with a default."""

    def __init__(self, size, scale=1.0):
        self.size = size
        self.scale = scale


class Flexible:
    """A component that takes any keyword argument, as Keras layers and losses do."""

    def __init__(self, size=1, **kwargs):
        self.size = size
        self.kwargs = kwargs


class Other:
    pass


def make_thing(size, scale=2.0):
    """A factory function is registrable too."""
    return ("made", size, scale)


HELPERS = [
    ("register_backbone", "build_backbone", BACKBONE_CLASS),
    ("register_loss", "build_loss", LOSS_CLASS),
    ("register_model", "build_model", MODEL_CLASS),
    ("register_data_loader", "build_data_loader", DATA_LOADER_CLASS),
    ("register_data_augmentation", "build_data_augmentation", DATA_AUGMENTATION_CLASS),
    ("register_file_loader", "build_file_loader", FILE_LOADER_CLASS),
    ("register_attention", "build_attention", ATTENTION_CLASS),
]


# ---------------------------------------------------------------------- categories
def test_deepreg_category_names():
    assert BACKBONE_CLASS == "backbone_class"
    assert LOSS_CLASS == "loss_class"
    assert MODEL_CLASS == "model_class"
    assert DATA_AUGMENTATION_CLASS == "da_class"
    assert DATA_LOADER_CLASS == "data_loader_class"
    assert FILE_LOADER_CLASS == "file_loader_class"
    assert Registry().categories == KNOWN_CATEGORIES
    assert KNOWN_CATEGORIES[:6] == [
        "backbone_class",
        "loss_class",
        "model_class",
        "da_class",
        "data_loader_class",
        "file_loader_class",
    ]


def test_unknown_category():
    reg = Registry()
    with pytest.raises(ValueError, match=r"Unknown category 'loss_clas'.*Did you mean 'loss_class'\?"):
        reg.register("loss_clas", "x", Thing)
    with pytest.raises(ValueError, match="Unknown category 'nope'"):
        reg.get("nope", "x")
    with pytest.raises(ValueError, match="Unknown category 'nope'"):
        reg.names("nope")


def test_add_category():
    reg = Registry()
    reg.add_category("metric_class")
    reg.add_category("metric_class")  # adding it again is a no-op
    assert reg.categories == KNOWN_CATEGORIES + ["metric_class"]
    reg.register("metric_class", "dice", Thing)
    assert reg.get("metric_class", "dice") is Thing
    assert reg.build_from_config("metric_class", {"name": "dice", "size": 3}).size == 3
    for bad in ("", None, 3):
        with pytest.raises(ValueError, match="non-empty string"):
            reg.add_category(bad)
    # Other registries are unaffected.
    assert "metric_class" not in Registry().categories


# ---------------------------------------------------------------------- registration
def test_register_get_contains_names():
    reg = Registry()
    assert reg.register(LOSS_CLASS, "thing", Thing) is Thing
    assert reg.get(LOSS_CLASS, "thing") is Thing
    assert reg.contains(LOSS_CLASS, "thing")
    assert not reg.contains(LOSS_CLASS, "other")
    assert not reg.contains(BACKBONE_CLASS, "thing")
    reg.register(LOSS_CLASS, "another", Other)
    assert reg.names(LOSS_CLASS) == ["another", "thing"]
    assert reg.names(BACKBONE_CLASS) == []


def test_duplicate_raises_and_force_replaces():
    reg = Registry()
    reg.register(LOSS_CLASS, "thing", Thing)
    with pytest.raises(ValueError, match="Name thing in category loss_class has been registered.*force=True"):
        reg.register(LOSS_CLASS, "thing", Other)
    assert reg.get(LOSS_CLASS, "thing") is Thing
    reg.register(LOSS_CLASS, "thing", Other, force=True)
    assert reg.get(LOSS_CLASS, "thing") is Other
    # The same name in another category is a different key.
    reg.register(MODEL_CLASS, "thing", Thing)
    assert reg.get(MODEL_CLASS, "thing") is Thing


@pytest.mark.parametrize("name", ["", None, 5])
def test_bad_name(name):
    with pytest.raises(ValueError, match="non-empty string"):
        Registry().register(LOSS_CLASS, name, Thing)


def test_decorator_form():
    reg = Registry()

    @reg.register(category=BACKBONE_CLASS, name="deco")
    class Deco:
        pass

    @reg.register_loss(name="deco_loss")
    class DecoLoss:
        pass

    @reg.register_loss("deco_fn")
    def deco_fn():
        return 1

    assert reg.get(BACKBONE_CLASS, "deco") is Deco
    assert reg.get(LOSS_CLASS, "deco_loss") is DecoLoss
    # The decorator returns the class unchanged.
    assert Deco.__name__ == "Deco" and deco_fn() == 1
    with pytest.raises(ValueError, match="has been registered"):
        reg.register_loss(name="deco_loss")(Other)
    reg.register_loss(name="deco_loss", force=True)(Other)
    assert reg.get(LOSS_CLASS, "deco_loss") is Other


@pytest.mark.parametrize("register, build, category", HELPERS)
def test_every_register_and_build_helper(register, build, category):
    reg = Registry()
    getattr(reg, register)("thing", Thing)
    assert reg.get(category, "thing") is Thing
    assert reg.names(category) == ["thing"]
    built = getattr(reg, build)({"name": "thing", "size": 4})
    assert isinstance(built, Thing) and (built.size, built.scale) == (4, 1.0)
    built = getattr(reg, build)(config={"name": "thing"}, default_args={"size": 5})
    assert built.size == 5
    # Decorator form and force.
    getattr(reg, register)(name="other")(Other)
    assert reg.get(category, "other") is Other
    with pytest.raises(ValueError, match="has been registered"):
        getattr(reg, register)("thing", Other)
    getattr(reg, register)("thing", Other, force=True)
    assert reg.get(category, "thing") is Other


def test_copy_is_independent():
    reg = Registry()
    reg.register_loss("thing", Thing)
    clone = reg.copy()
    clone.register_loss("extra", Other)
    clone.register_loss("thing", Other, force=True)
    clone.add_category("metric_class")
    assert reg.names(LOSS_CLASS) == ["thing"]
    assert reg.get(LOSS_CLASS, "thing") is Thing
    assert "metric_class" not in reg.categories
    assert clone.names(LOSS_CLASS) == ["extra", "thing"]
    # Classes themselves are shared, not copied.
    assert reg.copy().get(LOSS_CLASS, "thing") is Thing


def test_global_registry_copy_does_not_touch_global():
    clone = REGISTRY.copy()
    name = "tfreg_test_registry_only_in_copy"
    clone.register_loss(name, Thing)
    assert clone.contains(LOSS_CLASS, name)
    assert not REGISTRY.contains(LOSS_CLASS, name)


def test_builtin_modules_loaded_on_first_lookup(tmp_path, monkeypatch):
    # A stand-in for tfreg.losses: a module whose import registers a component into the registry.
    reg = Registry(builtin_modules=["tfreg_test_builtin_plugin"])
    holder = types.ModuleType("tfreg_test_registry_holder")
    holder.REG = reg
    monkeypatch.setitem(sys.modules, "tfreg_test_registry_holder", holder)
    (tmp_path / "tfreg_test_builtin_plugin.py").write_text(
        "import tfreg_test_registry_holder\ntfreg_test_registry_holder.REG.register_loss('builtin_thing', object)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tfreg_test_builtin_plugin", raising=False)
    reg.register_loss("user_thing", Thing)  # registering does not trigger the import
    assert "tfreg_test_builtin_plugin" not in sys.modules
    assert reg.contains(LOSS_CLASS, "builtin_thing")
    assert "tfreg_test_builtin_plugin" in sys.modules
    assert reg.names(LOSS_CLASS) == ["builtin_thing", "user_thing"]
    monkeypatch.delitem(sys.modules, "tfreg_test_builtin_plugin")


# ---------------------------------------------------------------------- lookup errors
def test_unknown_name_lists_names_and_suggests():
    reg = Registry()
    reg.register_loss("lncc", Thing)
    reg.register_loss("gmi", Thing)
    reg.register_loss("ssd", Thing)
    with pytest.raises(ValueError) as info:
        reg.get(LOSS_CLASS, "lnc")
    message = str(info.value)
    assert "Could not find loss_class with name 'lnc'" in message
    assert "['gmi', 'lncc', 'ssd']" in message
    assert "Did you mean 'lncc'?" in message
    # Case-only differences are suggested too.
    reg.register_model("DDF", Thing)
    with pytest.raises(ValueError, match="Did you mean 'DDF'"):
        reg.get(MODEL_CLASS, "ddf")
    # Nothing close: no suggestion.
    with pytest.raises(ValueError) as info:
        reg.get(LOSS_CLASS, "zzzzzz")
    assert "Did you mean" not in str(info.value)


# ---------------------------------------------------------------------- building
def test_build_from_config_default_args_setdefault():
    reg = Registry()
    reg.register_loss("thing", Thing)
    config = {"name": "thing", "size": 3}
    built = reg.build_from_config(LOSS_CLASS, config, default_args={"size": 10, "scale": 0.5})
    # The config wins over defaults; defaults fill the rest.
    assert (built.size, built.scale) == (3, 0.5)
    # The config itself is not modified.
    assert config == {"name": "thing", "size": 3}
    built = reg.build_from_config(LOSS_CLASS, {"name": "thing", "size": None}, default_args={"size": 10})
    assert built.size is None  # setdefault keeps an explicit null
    assert reg.build_from_config(LOSS_CLASS, {"name": "thing", "size": 1}, default_args=None).size == 1


def test_build_factory_function():
    reg = Registry()
    reg.register_loss("made", make_thing)
    assert reg.build_loss({"name": "made", "size": 2}) == ("made", 2, 2.0)
    with pytest.raises(ValueError, match=r"unexpected key\(s\) \['bad'\]; accepted keys: \['size', 'scale'\]"):
        reg.build_loss({"name": "made", "size": 2, "bad": 1})


def test_build_missing_name():
    with pytest.raises(ValueError, match=r"config of loss_class must contain the key 'name', got keys \['size'\]"):
        Registry().build_loss({"size": 3})


@pytest.mark.parametrize("config", ["thing", ["thing"], None])
def test_build_non_dict_config(config):
    with pytest.raises(ValueError, match="config of loss_class must be a dict with a 'name' key"):
        Registry().build_loss(config)


def test_build_unknown_name():
    reg = Registry()
    reg.register_loss("thing", Thing)
    with pytest.raises(ValueError, match=r"Could not find loss_class with name 'thin'.*Did you mean 'thing'"):
        reg.build_loss({"name": "thin"})


def test_build_unexpected_kwargs_lists_accepted_keys():
    reg = Registry()
    reg.register_backbone("thing", Thing)
    with pytest.raises(ValueError) as info:
        reg.build_backbone({"name": "thing", "size": 1, "scael": 2.0, "zzz": 0})
    message = str(info.value)
    assert message.startswith("Configuration is not compatible for backbone_class 'thing'")
    assert "unexpected key(s) ['scael', 'zzz']; accepted keys: ['size', 'scale']" in message
    assert "For 'scael', did you mean 'scale'?" in message
    # A default argument that the constructor does not take is reported the same way.
    with pytest.raises(ValueError, match=r"unexpected key\(s\) \['image_size'\]"):
        reg.build_backbone({"name": "thing", "size": 1}, default_args={"image_size": (8, 8, 8)})


def test_build_accepts_anything_with_var_kwargs():
    reg = Registry()
    reg.register_loss("flex", Flexible)
    built = reg.build_loss({"name": "flex", "size": 2, "anything": 1})
    assert built.size == 2 and built.kwargs == {"anything": 1}


def test_accepted_arguments():
    reg = Registry()
    reg.register_backbone("thing", Thing)
    reg.register_loss("flex", Flexible)
    assert reg.accepted_arguments("backbone_class", "thing") == ["size", "scale"]
    assert reg.accepted_arguments("loss_class", "flex") is None  # keeps its **kwargs: anything goes
    with pytest.raises(ValueError, match="Could not find backbone_class with name 'thin'"):
        reg.accepted_arguments("backbone_class", "thin")
    # a built-in: LocalNet's own, UNet's (through **kwargs, e.g. the norm choice), Backbone's, then Keras' name/dtype
    accepted = REGISTRY.accepted_arguments("backbone_class", "local")
    assert {"extract_levels", "depth", "norm", "norm_groups", "image_size", "name", "dtype"} <= set(accepted)
    assert "trainable" not in accepted


def test_var_kwargs_subclass_checked_against_its_base_classes():
    """A ``**kwargs`` subclass accepts its own and its bases' arguments (walking the MRO), nothing else."""
    import keras

    class Base:
        def __init__(self, size=1, scale=1.0):
            self.size, self.scale = size, scale

    class Middle(Base):
        def __init__(self, depth=0, **kwargs):
            super().__init__(**kwargs)
            self.depth = depth

    class Leaf(Middle):  # no __init__ of its own: Middle's chain applies
        pass

    reg = Registry()
    reg.register_loss("leaf", Leaf)
    built = reg.build_loss({"name": "leaf", "depth": 2, "scale": 3.0})
    assert (built.depth, built.size, built.scale) == (2, 1, 3.0)
    with pytest.raises(
        ValueError, match=r"unexpected key\(s\) \['scael'\]; accepted keys: \['depth', 'size', 'scale'\]"
    ):
        reg.build_loss({"name": "leaf", "scael": 2.0})

    # At a Keras base the walk accepts only the documented name/dtype (and reduction for losses).
    class MyLayer(keras.layers.Layer):
        def __init__(self, width=1, **kwargs):
            super().__init__(**kwargs)
            self.width = width

    reg.register_attention("mine", MyLayer)
    assert reg.build_attention({"name": "mine", "width": 3, "dtype": "float32"}).width == 3
    with pytest.raises(
        ValueError, match=r"unexpected key\(s\) \['trainable'\]; accepted keys: \['width', 'name', 'dtype'\]"
    ):
        reg.build_attention({"name": "mine", "trainable": False})


def test_builtin_var_kwargs_components_refuse_unknown_keys_and_take_base_keys():
    """Built-in losses and backbones pass **kwargs to their base: base keys work, typos are still refused."""
    lncc = REGISTRY.build_loss({"name": "lncc", "kernel_size": 5, "spatial_dims": 2, "reduction": None})
    assert (lncc.kernel_size, lncc.spatial_dims, lncc.reduction) == (5, 2, None)
    with pytest.raises(ValueError, match=r"unexpected key\(s\) \['kernel_sise'\].*did you mean 'kernel_size'"):
        REGISTRY.build_loss({"name": "lncc", "kernel_sise": 5})
    tv = REGISTRY.build_loss({"name": "tv", "isotropic": True, "reduction": "sum"})
    assert tv.isotropic and tv.reduction == "sum"
    with pytest.raises(ValueError, match=r"unexpected key\(s\) \['spatial_dims'\]"):
        REGISTRY.build_loss({"name": "tv", "spatial_dims": 2})
    net = REGISTRY.build_backbone({"name": "unet", "image_size": (8, 8), "depth": 1, "num_channel_initial": 2})
    assert net.image_size == (8, 8) and net.num_channel_initial == 2 and net.depth == 1
    with pytest.raises(ValueError, match=r"unexpected key\(s\) \['num_channels_initial'\]"):
        REGISTRY.build_backbone({"name": "unet", "image_size": (8, 8), "num_channels_initial": 2})


def test_type_error_from_constructor_becomes_value_error():
    reg = Registry()
    reg.register_loss("thing", Thing)
    with pytest.raises(ValueError, match="Configuration is not compatible for loss_class 'thing'") as info:
        reg.build_loss({"name": "thing"})  # size is missing
    assert isinstance(info.value.__cause__, TypeError)

    class Picky:
        def __init__(self, size):
            if not isinstance(size, int):
                raise TypeError("size must be an int")

    reg.register_loss("picky", Picky)
    with pytest.raises(ValueError, match="with arguments \\['size'\\]: size must be an int"):
        reg.build_loss({"name": "picky", "size": "3"})


def test_other_errors_from_constructor_pass_through():
    class Broken:
        def __init__(self):
            raise RuntimeError("boom")

    reg = Registry()
    reg.register_loss("broken", Broken)
    with pytest.raises(RuntimeError, match="boom"):
        reg.build_loss({"name": "broken"})


def _plugin(tmp_path, monkeypatch, module, body):
    """Write ``module``.py into tmp_path (on sys.path); its import runs ``body`` with ``REG`` in scope."""
    (tmp_path / f"{module}.py").write_text(f"from tfreg_test_registry_holder import REG\n{body}\n")
    monkeypatch.delitem(sys.modules, module, raising=False)


def test_builtin_modules_loaded_per_category(tmp_path, monkeypatch):
    reg = Registry(
        builtin_modules={LOSS_CLASS: ["tfreg_test_plugin_loss"], BACKBONE_CLASS: ["tfreg_test_plugin_backbone"]}
    )
    holder = types.ModuleType("tfreg_test_registry_holder")
    holder.REG = reg
    monkeypatch.setitem(sys.modules, "tfreg_test_registry_holder", holder)
    monkeypatch.syspath_prepend(str(tmp_path))
    _plugin(tmp_path, monkeypatch, "tfreg_test_plugin_loss", "REG.register_loss('builtin_loss', object)")
    _plugin(tmp_path, monkeypatch, "tfreg_test_plugin_backbone", "REG.register_backbone('builtin_net', object)")
    # A lookup imports only its own category's modules.
    assert reg.names(LOSS_CLASS) == ["builtin_loss"]
    assert "tfreg_test_plugin_loss" in sys.modules
    assert "tfreg_test_plugin_backbone" not in sys.modules
    assert not reg.contains(MODEL_CLASS, "anything")  # a category without built-ins imports nothing
    assert "tfreg_test_plugin_backbone" not in sys.modules
    # copy() imports every category's modules, so the copy sees all built-ins.
    clone = reg.copy()
    assert "tfreg_test_plugin_backbone" in sys.modules
    assert clone.names(BACKBONE_CLASS) == ["builtin_net"] and clone.names(LOSS_CLASS) == ["builtin_loss"]
    # Each module is imported once: removing it from sys.modules does not make the registry import it again.
    monkeypatch.delitem(sys.modules, "tfreg_test_plugin_loss")
    assert reg.get(LOSS_CLASS, "builtin_loss") is object
    assert "tfreg_test_plugin_loss" not in sys.modules


def test_failed_builtin_import_is_retried(tmp_path, monkeypatch):
    reg = Registry(builtin_modules={LOSS_CLASS: ["tfreg_test_plugin_flaky"]})
    holder = types.ModuleType("tfreg_test_registry_holder")
    holder.REG = reg
    monkeypatch.setitem(sys.modules, "tfreg_test_registry_holder", holder)
    monkeypatch.syspath_prepend(str(tmp_path))
    _plugin(tmp_path, monkeypatch, "tfreg_test_plugin_flaky", "raise ImportError('missing dependency xyz')")
    with pytest.raises(ImportError, match="missing dependency xyz"):
        reg.names(LOSS_CLASS)
    # The error shows again on the next lookup instead of an empty registry.
    with pytest.raises(ImportError, match="missing dependency xyz"):
        reg.get(LOSS_CLASS, "flaky")
    # Once the module imports, the next lookup sees its registrations.
    _plugin(tmp_path, monkeypatch, "tfreg_test_plugin_flaky", "REG.register_loss('flaky', object)")
    assert reg.get(LOSS_CLASS, "flaky") is object
    monkeypatch.delitem(sys.modules, "tfreg_test_plugin_flaky")


def test_global_registry_categories_import_their_own_modules():
    from tfreg.registry import BUILTIN_MODULES

    assert set(BUILTIN_MODULES) == set(KNOWN_CATEGORIES)
    assert BUILTIN_MODULES[LOSS_CLASS] == ["tfreg.losses"]
    assert BUILTIN_MODULES[BACKBONE_CLASS] == ["tfreg.models.backbones"]
    assert BUILTIN_MODULES[ATTENTION_CLASS] == ["tfreg.layers.attention"]
    # Every built-in category has at least one registered name once looked up.
    for category in KNOWN_CATEGORIES:
        assert REGISTRY.names(category), category

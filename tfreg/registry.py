"""The component registry: DeepReg's ``REGISTRY`` API, category names and error behaviour.

A config names components (``backbone: {name: local}``, ``loss: {image: {name: lncc}}``, ...). Each name
is looked up in ``REGISTRY`` under a category, and the rest of the config entry becomes constructor
keyword arguments. A user's own class registered with the same decorator works from YAML exactly like a
built-in::

    from tfreg.registry import REGISTRY

    @REGISTRY.register_loss(name="my_loss")
    class MyLoss(keras.losses.Loss):
        ...

Built-in components are registered when their modules are imported; the registry imports them on the
first lookup in their category (:data:`BUILTIN_MODULES`), so ``from tfreg.registry import REGISTRY`` alone
is enough to see them, and a lookup imports only what its category needs: building a loss imports
``tfreg.losses`` (``keras.ops`` only) and neither TensorFlow nor the data readers.
"""

from __future__ import annotations

import copy as _copy
import importlib
import inspect
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from tfreg.checks import suggestion

BACKBONE_CLASS = "backbone_class"
LOSS_CLASS = "loss_class"
MODEL_CLASS = "model_class"
DATA_AUGMENTATION_CLASS = "da_class"
DATA_LOADER_CLASS = "data_loader_class"
FILE_LOADER_CLASS = "file_loader_class"
ATTENTION_CLASS = "attention_class"
TRAINER_CLASS = "trainer_class"

# DeepReg's six categories, plus tfreg's own (segmentation-guided attention layers, training loops).
KNOWN_CATEGORIES = [
    BACKBONE_CLASS,
    LOSS_CLASS,
    MODEL_CLASS,
    DATA_AUGMENTATION_CLASS,
    DATA_LOADER_CLASS,
    FILE_LOADER_CLASS,
    ATTENTION_CLASS,
    TRAINER_CLASS,
]

# For each category, the modules whose import registers tfreg's built-in components of that category.
# They are imported lazily, on the first lookup in that category, because they import this module to
# register themselves, and so that a lookup pays only for its own category: the loss, attention and
# backbone modules use keras.ops only, while the data modules bring TensorFlow and the image readers.
BUILTIN_MODULES: Dict[str, List[str]] = {
    BACKBONE_CLASS: ["tfreg.models.backbones"],
    LOSS_CLASS: ["tfreg.losses"],
    MODEL_CLASS: ["tfreg.models"],
    DATA_AUGMENTATION_CLASS: ["tfreg.data.augmentation"],
    DATA_LOADER_CLASS: ["tfreg.data.loaders"],
    FILE_LOADER_CLASS: ["tfreg.data.file_loaders"],
    ATTENTION_CLASS: ["tfreg.layers.attention"],
    TRAINER_CLASS: ["tfreg.engine.trainers"],
}


class Registry:
    """Maps ``(category, name)`` to a class or factory.

    The API and category names are DeepReg's, so that DeepReg user code that registers custom
    backbones, losses, data loaders... keeps working. Differences: unknown names fail with the list of
    registered names and a closest-match suggestion, and new categories can be added with
    :meth:`add_category`.
    """

    def __init__(
        self,
        categories: Iterable[str] = KNOWN_CATEGORIES,
        builtin_modules: Union[Mapping[str, Iterable[str]], Iterable[str]] = (),
    ):
        """
        Args:
            categories: the category names.
            builtin_modules: modules whose import registers built-in components, imported on the first
                lookup that needs them: a mapping ``category -> module names`` (imported on the first
                lookup in that category), or a plain list of module names (imported on the first lookup
                in any category).
        """
        self._dict: Dict[Tuple[str, str], Any] = {}
        self._categories: List[str] = list(categories)
        if isinstance(builtin_modules, Mapping):
            self._builtin_modules: Dict[Optional[str], List[str]] = {
                category: list(modules) for category, modules in builtin_modules.items()
            }
        else:
            # None: modules every category needs.
            self._builtin_modules = {None: list(builtin_modules)}
        # Modules imported successfully; one whose import failed stays out, so the next lookup retries.
        self._loaded_modules: set = set()
        # Modules being imported now: their own register() calls must not re-enter the loader.
        self._loading_modules: set = set()

    # ------------------------------------------------------------------ categories
    @property
    def categories(self) -> List[str]:
        """The known category names, DeepReg's first."""
        return list(self._categories)

    def add_category(self, category: str) -> None:
        """Add a new category (e.g. ``"attention_class"``); adding an existing one is a no-op."""
        if not isinstance(category, str) or not category:
            raise ValueError(f"a category name must be a non-empty string, got {category!r}")
        if category not in self._categories:
            self._categories.append(category)

    def _check_category(self, category: str) -> None:
        if category not in self._categories:
            raise ValueError(
                f"Unknown category {category!r}. Known categories: {self._categories}."
                + suggestion(category, self._categories)
                + " Add a new one with REGISTRY.add_category()."
            )

    # ------------------------------------------------------------------ registration
    def _load_builtins(self, category: Optional[str] = None) -> None:
        """Import the built-in modules of ``category`` (and those every category needs); all when None."""
        if category is None:
            modules = [m for group in self._builtin_modules.values() for m in group]
        else:
            modules = self._builtin_modules.get(None, []) + self._builtin_modules.get(category, [])
        for module in modules:
            if module in self._loaded_modules or module in self._loading_modules:
                continue
            self._loading_modules.add(module)
            try:
                importlib.import_module(module)
            finally:
                # On failure the module is not marked loaded: the next lookup retries (and shows the
                # import error again) instead of silently running without the built-ins.
                self._loading_modules.discard(module)
            self._loaded_modules.add(module)

    def _register(self, category: str, key: str, value: Any, force: bool) -> None:
        self._check_category(category)
        if not isinstance(key, str) or not key:
            raise ValueError(f"a registered name must be a non-empty string, got {key!r}")
        if not force and (category, key) in self._dict:
            raise ValueError(
                f"Name {key} in category {category} has been registered "
                f"(by {self._dict[(category, key)]!r}); pass force=True to replace it."
            )
        self._dict[(category, key)] = value

    def register(self, category: str, name: str, cls: Any = None, force: bool = False) -> Callable:
        """Register ``cls`` as ``name`` in ``category``; used directly or as a decorator.

        Args:
            category: one of :attr:`categories`.
            name: the name configs use.
            cls: the class or factory; when None, a decorator is returned.
            force: replace an existing registration instead of raising ValueError.
        """

        def decorator(c):
            self._register(category=category, key=name, value=c, force=force)
            return c

        if cls is not None:
            return decorator(cls)
        return decorator

    def register_backbone(self, name: str, cls: Any = None, force: bool = False) -> Callable:
        """Register a backbone class (category ``backbone_class``)."""
        return self.register(category=BACKBONE_CLASS, name=name, cls=cls, force=force)

    def register_loss(self, name: str, cls: Any = None, force: bool = False) -> Callable:
        """Register a loss class (category ``loss_class``)."""
        return self.register(category=LOSS_CLASS, name=name, cls=cls, force=force)

    def register_model(self, name: str, cls: Any = None, force: bool = False) -> Callable:
        """Register a registration-model class (category ``model_class``)."""
        return self.register(category=MODEL_CLASS, name=name, cls=cls, force=force)

    def register_data_loader(self, name: str, cls: Any = None, force: bool = False) -> Callable:
        """Register a data-loader class (category ``data_loader_class``)."""
        return self.register(category=DATA_LOADER_CLASS, name=name, cls=cls, force=force)

    def register_data_augmentation(self, name: str, cls: Any = None, force: bool = False) -> Callable:
        """Register a data-augmentation class (category ``da_class``)."""
        return self.register(category=DATA_AUGMENTATION_CLASS, name=name, cls=cls, force=force)

    def register_file_loader(self, name: str, cls: Any = None, force: bool = False) -> Callable:
        """Register a file-loader class (category ``file_loader_class``)."""
        return self.register(category=FILE_LOADER_CLASS, name=name, cls=cls, force=force)

    def register_attention(self, name: str, cls: Any = None, force: bool = False) -> Callable:
        """Register an attention layer (tfreg's category ``attention_class``)."""
        return self.register(category=ATTENTION_CLASS, name=name, cls=cls, force=force)

    def register_trainer(self, name: str, cls: Any = None, force: bool = False) -> Callable:
        """Register a trainer class (tfreg's category ``trainer_class``, ``train.trainer.name``)."""
        return self.register(category=TRAINER_CLASS, name=name, cls=cls, force=force)

    # ------------------------------------------------------------------ lookup
    def names(self, category: str) -> List[str]:
        """The sorted names registered in ``category``."""
        self._check_category(category)
        self._load_builtins(category)
        return sorted(k for c, k in self._dict if c == category)

    def contains(self, category: str, key: str) -> bool:
        """Whether ``key`` is registered in ``category``."""
        self._load_builtins(category)
        return isinstance(key, str) and (category, key) in self._dict

    def get(self, category: str, key: str) -> Any:
        """The class registered as ``key`` in ``category``.

        Raises:
            ValueError: naming the unknown key, the registered names and the closest match.
        """
        self._check_category(category)
        if not isinstance(key, str):
            raise ValueError(f"a {category} name must be a string, got {key!r}")
        self._load_builtins(category)
        if (category, key) in self._dict:
            return self._dict[(category, key)]
        known = self.names(category)
        raise ValueError(
            f"Could not find {category} with name {key!r}. Registered {category} names: {known}."
            + suggestion(key, known)
        )

    def accepted_arguments(self, category: str, key: str) -> Optional[List[str]]:
        """The keyword arguments the constructor of ``key`` in ``category`` accepts (along its ``**kwargs``
        chain, as :meth:`build_from_config` checks them), or None when any is accepted or they cannot be known.

        Raises:
            ValueError: ``key`` is not registered (see :meth:`get`).
        """
        return _constructor_kwargs(self.get(category, key))

    def copy(self) -> "Registry":
        """A deep copy, to register test or experimental components without touching the original.

        Every category's built-ins are imported first, so the copy sees all of them.
        """
        self._load_builtins()
        return _copy.deepcopy(self)

    # ------------------------------------------------------------------ building
    def build_from_config(self, category: str, config: Dict[str, Any], default_args: Optional[Dict] = None) -> Any:
        """Instantiate ``config["name"]`` from ``category`` with the other keys as keyword arguments.

        ``default_args`` fill in keys the config does not set (DeepReg's ``setdefault`` semantics).

        Raises:
            ValueError: when ``config`` is not a dict, has no ``name``, names an unknown component, or
                has keys the constructor does not accept (the message lists the accepted ones).
        """
        if not isinstance(config, dict):
            raise ValueError(f"config of {category} must be a dict with a 'name' key, got {config!r}")
        if "name" not in config:
            raise ValueError(f"config of {category} must contain the key 'name', got keys {sorted(map(str, config))}")
        kwargs = dict(config)
        name = kwargs.pop("name")
        for key, value in (default_args or {}).items():
            kwargs.setdefault(key, value)
        cls = self.get(category=category, key=name)
        unexpected = _unexpected_kwargs(cls, kwargs)
        if unexpected:
            accepted = _accepted_kwargs(cls)
            raise ValueError(
                f"Configuration is not compatible for {category} {name!r} ({_qualname(cls)}): "
                f"unexpected key(s) {unexpected}; accepted keys: {accepted}."
                + "".join(suggestion(k, accepted).replace(" Did", f" For {k!r}, did") for k in unexpected)
            )
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise ValueError(
                f"Configuration is not compatible for {category} {name!r} ({_qualname(cls)}) "
                f"with arguments {sorted(kwargs)}: {err}"
            ) from err

    def build_backbone(self, config: Dict, default_args: Optional[Dict] = None) -> Any:
        """Build a backbone from ``{name, **kwargs}``."""
        return self.build_from_config(category=BACKBONE_CLASS, config=config, default_args=default_args)

    def build_model(self, config: Dict, default_args: Optional[Dict] = None) -> Any:
        """Build a registration model from ``{name, **kwargs}``."""
        return self.build_from_config(category=MODEL_CLASS, config=config, default_args=default_args)

    def build_loss(self, config: Dict, default_args: Optional[Dict] = None) -> Any:
        """Build a loss from ``{name, **kwargs}``."""
        return self.build_from_config(category=LOSS_CLASS, config=config, default_args=default_args)

    def build_data_loader(self, config: Dict, default_args: Optional[Dict] = None) -> Any:
        """Build a data loader from ``{name, **kwargs}``."""
        return self.build_from_config(category=DATA_LOADER_CLASS, config=config, default_args=default_args)

    def build_data_augmentation(self, config: Dict, default_args: Optional[Dict] = None) -> Any:
        """Build a data augmentation from ``{name, **kwargs}``."""
        return self.build_from_config(category=DATA_AUGMENTATION_CLASS, config=config, default_args=default_args)

    def build_file_loader(self, config: Dict, default_args: Optional[Dict] = None) -> Any:
        """Build a file loader from ``{name, **kwargs}``."""
        return self.build_from_config(category=FILE_LOADER_CLASS, config=config, default_args=default_args)

    def build_trainer(self, config: Dict, default_args: Optional[Dict] = None) -> Any:
        """Build a trainer from ``{name, **kwargs}``."""
        return self.build_from_config(category=TRAINER_CLASS, config=config, default_args=default_args)

    def build_attention(self, config: Dict, default_args: Optional[Dict] = None) -> Any:
        """Build an attention layer from ``{name, **kwargs}``."""
        return self.build_from_config(category=ATTENTION_CLASS, config=config, default_args=default_args)


def _signature(cls: Any) -> Optional[inspect.Signature]:
    target = cls.__init__ if inspect.isclass(cls) else cls
    try:
        return inspect.signature(target)
    except (TypeError, ValueError):
        return None


#: What tfreg accepts for a Keras base class at the end of a ``**kwargs`` chain: the arguments Keras documents
#: for every layer, model and loss. ``reduction`` only where the base's own signature has it (Loss).
#: Other ``keras.layers.Layer`` arguments (``trainable``, ``autocast``, ...) are not config keys.
_KERAS_BASE_KWARGS = ("name", "dtype", "reduction")


def _is_keras_class(klass: type) -> bool:
    return getattr(klass, "__module__", "").split(".")[0] == "keras"


def _named_parameters(sig: inspect.Signature) -> List[str]:
    return [
        p.name
        for p in sig.parameters.values()
        if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]


def _has_var_keyword(sig: inspect.Signature) -> bool:
    return any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())


def _constructor_kwargs(cls: Any) -> Optional[List[str]]:
    """The keyword arguments ``cls(...)`` accepts, or None when they cannot be known (accept any).

    For a class, the constructors along the MRO are walked: a class whose ``__init__`` takes ``**kwargs``
    accepts its own named parameters plus those of the next class in the MRO that defines ``__init__``
    (where the ``**kwargs`` go, by ``super().__init__(**kwargs)``). The walk stops at the first
    ``__init__`` without ``**kwargs``, or at a Keras base class, for which only ``name``, ``dtype`` and (for
    losses) ``reduction`` are accepted. A chain of ``**kwargs`` that reaches ``object`` (a class keeping
    its ``**kwargs`` for itself) and a plain function with ``**kwargs`` accept anything.
    """
    if not inspect.isclass(cls):
        sig = _signature(cls)
        if sig is None or _has_var_keyword(sig):
            return None
        return _named_parameters(sig)
    accepted: List[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        if klass is object:
            # The **kwargs reached no constructor that names them (object takes none): the class consumes
            # them itself, e.g. stores them, so any key is accepted.
            return None
        try:
            sig = inspect.signature(klass.__init__)
        except (TypeError, ValueError):
            return None
        if _is_keras_class(klass):
            own = _named_parameters(sig)
            accepted += [k for k in _KERAS_BASE_KWARGS if k != "reduction" or k in own]
            break
        accepted += _named_parameters(sig)
        if not _has_var_keyword(sig):
            break
    return list(dict.fromkeys(accepted))


def _accepted_kwargs(cls: Any) -> List[str]:
    """The keyword arguments the constructor accepts (along its ``**kwargs`` chain, see above)."""
    return _constructor_kwargs(cls) or []


def _unexpected_kwargs(cls: Any, kwargs: Dict[str, Any]) -> List[str]:
    """Keys the constructor cannot take; empty when it cannot be inspected or is a function with ``**kwargs``."""
    accepted = _constructor_kwargs(cls)
    if accepted is None:
        return []
    return sorted(k for k in kwargs if k not in set(accepted))


def _qualname(cls: Any) -> str:
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', repr(cls))}"


REGISTRY = Registry(builtin_modules=BUILTIN_MODULES)

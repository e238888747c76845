"""The one registry class of genet-testbed: names (and name forms) -> factories.

Every use case keeps its policies in an instance of :class:`Registry` (ABR:
:data:`genet.abr.registry.POLICIES`, CC: :data:`genet.cc.registry.POLICIES`), and fills it in
one function it calls itself (``register_builtins(registry)``): nothing registers anything by
importing a module. A registry holds three forms of entry:

* a plain name, ``register("bba", f, ...)``: matches ``bba``; ``f(**options)``;
* a name with an argument, ``register("const", f, argument="MBPS", ...)``: matches ``const:5``
  (listed as ``const:MBPS``); ``f("5", **options)``;
* a path entry, ``register("onnx", f, suffix=".onnx", ...)``: matches any ``PATH.onnx`` (listed as
  ``PATH.onnx``); ``f(path, **options)``;

where ``options`` are the keyword arguments the registry's owner passes to :meth:`Registry.make`.

::

    POLICIES = Registry("ABR policy")
    POLICIES.register("bba", _bba, description="buffer-based (reservoir 5 s, cushion 10 s)")
    POLICIES.register("optimal", "genet.abr.optimal:plan_policy", description="...", causal=False)
    POLICIES.make("bba", rebuffer_penalty=4.3, ...)     # -> the factory's product
    POLICIES.get("bola")   # BadInputError: unknown ABR policy 'bola'; known: bba, optimal, PATH.onnx
    POLICIES.resolve("bola", where="--policy")  # ... --policy 'bola': unknown ABR policy; known: ...

Registration validates at once (one-line :class:`RegistryError`): the name is a lowercase
identifier (:data:`NAME_PATTERN`), not taken; the factory is a callable or an import path
``"package.module:attribute"`` (checked for form only: the module is imported on first use, so
registering a policy that needs numba or torch loads neither); the description is one line. Extra
keyword arguments of :meth:`Registry.register` are kept as the entry's ``attributes`` (ABR's
``causal``).

Standard library only (the runtime install imports this).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

from foundation.errors import BadInputError, GenetRuntimeError

T = TypeVar("T")

#: Entry names: a lowercase identifier ("bba", "const", "tcp", "onnx").
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}")
#: Argument placeholders, as listings show them ("MBPS" in ``const:MBPS``).
ARGUMENT_PATTERN = re.compile(r"[A-Z][A-Z0-9_]{0,15}")
#: File suffixes of path entries (".onnx").
SUFFIX_PATTERN = re.compile(r"\.[a-z0-9]{1,15}")
#: Lazy factories: ``"package.module:attribute"`` (the attribute may be dotted: ``Class.method``).
IMPORT_PATH_PATTERN = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


class RegistryError(BadInputError):
    """A registration that cannot be accepted (bad name, name taken, factory not callable...)."""


class UnknownNameError(BadInputError):
    """A name that no entry of the registry matches (the message lists the known forms)."""


@dataclass(frozen=True)
class RegistryEntry(Generic[T]):
    """One registered name.

    name: the registry key ("bba", "const", "onnx")
    factory: a callable returning a T, or the import path ``"module:attr"`` of one (resolved on first use)
    description: one line for listings ("buffer-based (reservoir 5 s, cushion 10 s)")
    argument: placeholder of an argument the name takes after a colon ("MBPS": ``const:5``); None: none
    suffix: file suffix of a path entry (".onnx": any ``PATH.onnx``); None: not a path entry
    attributes: what else the registry's owner records about the entry (ABR: ``causal``)
    """

    name: str
    factory: Callable[..., T] | str
    description: str
    argument: str | None = None
    suffix: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    _resolved: list = field(default_factory=list, repr=False, compare=False)

    @property
    def form(self) -> str:
        """How listings show the entry: ``bba``, ``const:MBPS``, ``PATH.onnx``."""
        if self.suffix is not None:
            return f"PATH{self.suffix}"
        return f"{self.name}:{self.argument}" if self.argument is not None else self.name

    @property
    def takes_argument(self) -> bool:
        return self.argument is not None or self.suffix is not None

    def resolve_factory(self) -> Callable[..., T]:
        """The factory itself (an import path is imported now, once)."""
        if not isinstance(self.factory, str):
            return self.factory
        if not self._resolved:
            module_name, _, attr = self.factory.partition(":")
            try:
                obj: Any = importlib.import_module(module_name)
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except (ImportError, AttributeError) as exc:
                raise GenetRuntimeError(f"{self.form}: its factory {self.factory} cannot be loaded "
                                        f"({type(exc).__name__}: {exc})") from None
            if not callable(obj):
                raise GenetRuntimeError(f"{self.form}: its factory {self.factory} is not callable")
            self._resolved.append(obj)
        return self._resolved[0]

    def create(self, argument: str | None = None, /, **options: Any) -> T:
        """The factory's product: ``factory(argument, **options)`` for entries that take an argument
        (a path for path entries), else ``factory(**options)``."""
        factory = self.resolve_factory()
        if self.takes_argument:
            return factory(argument, **options)
        return factory(**options)


class Registry(Generic[T]):
    """Names -> factories of T, with one-line errors that list what is known.

    kind: what the entries are, for messages ("ABR policy", "CC policy")
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, RegistryEntry[T]] = {}

    # ------------------------------------------------------------------ registration
    def register(self, name: str, factory: Callable[..., T] | str, *, description: str,
                 argument: str | None = None, suffix: str | None = None, **attributes: Any) -> RegistryEntry[T]:
        """Add an entry and return it; raises :class:`RegistryError` (one line) if it cannot be accepted."""
        where = f"{self.kind} registry"
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise RegistryError(f"{where}: name {name!r} must be a lowercase identifier "
                                f"({NAME_PATTERN.pattern}, e.g. 'bba')")
        if name in self._entries:
            raise RegistryError(f"{where}: {name!r} is already registered ({self._entries[name].description})")
        if isinstance(factory, str):
            if not IMPORT_PATH_PATTERN.fullmatch(factory):
                raise RegistryError(f"{where}: {name!r}: factory {factory!r} must be a callable or an import path "
                                    f"'package.module:attribute'")
        elif not callable(factory):
            raise RegistryError(f"{where}: {name!r}: factory must be a callable or an import path "
                                f"'package.module:attribute', got {type(factory).__name__}")
        if not isinstance(description, str) or not description.strip() or "\n" in description:
            raise RegistryError(f"{where}: {name!r}: description must be one non-empty line")
        if argument is not None and suffix is not None:
            raise RegistryError(f"{where}: {name!r}: an entry takes an argument or is a path entry, not both")
        if argument is not None and not (isinstance(argument, str) and ARGUMENT_PATTERN.fullmatch(argument)):
            raise RegistryError(f"{where}: {name!r}: argument placeholder {argument!r} must match "
                                f"{ARGUMENT_PATTERN.pattern} (e.g. 'MBPS')")
        if suffix is not None:
            if not (isinstance(suffix, str) and SUFFIX_PATTERN.fullmatch(suffix)):
                raise RegistryError(f"{where}: {name!r}: suffix {suffix!r} must match {SUFFIX_PATTERN.pattern} "
                                    f"(e.g. '.onnx')")
            taken = [e.name for e in self._entries.values() if e.suffix == suffix]
            if taken:
                raise RegistryError(f"{where}: {name!r}: suffix {suffix} is already {taken[0]!r}'s")
        entry: RegistryEntry[T] = RegistryEntry(name, factory, description.strip(), argument, suffix,
                                                MappingProxyType(dict(attributes)))
        self._entries[name] = entry
        return entry

    # ------------------------------------------------------------------ lookup
    def names(self) -> list[str]:
        """Entry names in registration order."""
        return list(self._entries)

    def forms(self) -> list[str]:
        """What a user may type, in registration order: ``bba``, ``const:MBPS``, ``PATH.onnx``."""
        return [e.form for e in self._entries.values()]

    def entries(self) -> list[RegistryEntry[T]]:
        return list(self._entries.values())

    def describe(self) -> str:
        """One line per entry: its form and description."""
        width = max((len(f) for f in self.forms()), default=0)
        return "\n".join(f"{e.form:<{width}}  {e.description}" for e in self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def _unknown(self, text: str, where: str | None = None) -> UnknownNameError:
        head = f"{where} {text!r}: unknown {self.kind}" if where else f"unknown {self.kind} {text!r}"
        return UnknownNameError(f"{head}; known: {', '.join(self.forms())}")

    def _needs_argument(self, text: str, entry: RegistryEntry[T], where: str | None) -> BadInputError:
        head = f"{where} {text!r}: {self.kind}" if where else f"{self.kind} {text!r}"
        return BadInputError(f"{head} needs an argument: {entry.form} ({entry.description})")

    def get(self, name: str) -> RegistryEntry[T]:
        """The entry registered as ``name``; :class:`UnknownNameError` listing the known forms otherwise."""
        entry = self._entries.get(name) if isinstance(name, str) else None
        if entry is None:
            raise self._unknown(str(name))
        return entry

    def resolve(self, text: str, where: str | None = None) -> tuple[RegistryEntry[T], str | None]:
        """(entry, argument) for what a user typed: a name (``bba``), ``name:ARGUMENT`` (``const:5``) or a
        path with a registered suffix (``models/abr/genet.onnx``, argument = the path). ``where``: the option
        or field the text came from, for the message ("--policy")."""
        text = str(text)
        entry = self._entries.get(text)
        if entry is not None:
            if entry.argument is not None:
                raise self._needs_argument(text, entry, where)
            if entry.suffix is None:
                return entry, None
        name, colon, arg = text.partition(":")
        if colon:
            entry = self._entries.get(name)
            if entry is not None and entry.argument is not None:
                if not arg:
                    raise self._needs_argument(text, entry, where)
                return entry, arg
        for entry in self._entries.values():
            if entry.suffix is not None and text.endswith(entry.suffix) and len(text) > len(entry.suffix):
                return entry, text
        raise self._unknown(text, where)

    def make(self, text: str, /, where: str | None = None, **options: Any) -> T:
        """Resolve ``text`` and call the entry's factory with its argument and ``options``."""
        entry, arg = self.resolve(text, where)
        return entry.create(arg, **options)


__all__ = ["Registry", "RegistryEntry", "RegistryError", "UnknownNameError", "NAME_PATTERN"]

"""Every documented config key does something: each leaf of ``Config`` is read somewhere in ``edge_voice/``.

A key that is parsed, validated and documented but read by nothing is a promise the daemon does not keep
(``service.watchdog`` was one). The check is static, over the source, so it covers code paths the other
tests never run (benchmarks, the doctor, real hardware).

Why not grep for ``.<key>``: many keys share a name across sections (``threads`` in five of them,
``enabled``, ``timeout_ms``, ``backend``, ``uri``, ``threshold``), so one section reading its ``threads``
would hide another section that never reads its own. A read is therefore credited to a section only when
the receiver is known to be that section: a parameter, ``self`` attribute or local annotated or assigned
with the section's class, or ``<Config>.<section>``. Derived members defined in ``core/config.py``
(``topic_prefix``, ``models_path``, ``frame_samples``, ``threshold_for``) count as reads of the keys they
use; ``__post_init__`` validation does not count.
"""

from __future__ import annotations

import ast
import dataclasses
import typing
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from edge_voice.core import config

PACKAGE = Path(config.__file__).resolve().parents[1]
CONFIG_PY = PACKAGE / "core" / "config.py"
# Not reads: core/config.py only validates and builds (its derived members are handled separately), and
# core/reload.py only compares keys (changed_keys) and copies the live ones into the running config
# (apply_live): a key read there alone still changes nothing.
NOT_READS = {CONFIG_PY, PACKAGE / "core" / "reload.py"}


def _sections() -> dict[str, str]:
    """Section name → its class name (``asr`` → ``AsrConfig``)."""
    hints = typing.get_type_hints(config.Config)
    return {
        f.name: hints[f.name].__name__
        for f in dataclasses.fields(config.Config)
        if dataclasses.is_dataclass(hints[f.name])
    }


SECTIONS = _sections()
SECTION_OF = {cls: name for name, cls in SECTIONS.items()}
CLASSES = {"Config": config.Config} | {cls: getattr(config, cls) for cls in SECTION_OF}
FIELDS = {name: {f.name for f in dataclasses.fields(cls)} for name, cls in CLASSES.items()}


def all_keys() -> set[str]:
    """Every leaf: ``section.key``, and the top-level scalars (``device_id``)."""
    keys = {k for k in FIELDS["Config"] if k not in SECTIONS}
    return keys | {f"{section}.{k}" for section, cls in SECTIONS.items() for k in FIELDS[cls]}


def _key(cls: str, name: str) -> str:
    return f"{SECTION_OF[cls]}.{name}" if cls in SECTION_OF else name


def _annotation(node: ast.expr | None) -> str | None:
    """The config class an annotation names (``AsrConfig``, ``config.Config``, ``X | None``, "Config")."""
    match node:
        case ast.Name(id=name) | ast.Attribute(attr=name) if name in CLASSES:
            return name
        case ast.Constant(value=str() as text):
            try:
                return _annotation(ast.parse(text, mode="eval").body)
            except SyntaxError:
                return None
        case ast.BinOp(op=ast.BitOr(), left=left, right=right):
            return _annotation(left) or _annotation(right)
        case ast.Subscript(value=ast.Name(id="Optional") | ast.Attribute(attr="Optional"), slice=inner):
            return _annotation(inner)
    return None


class _Reads:
    """The config keys read in module bodies given to ``scope`` (see the module docstring for what counts)."""

    def __init__(self, returns: dict[str, str], derived: dict[str, dict[str, set[str]]]) -> None:
        self.returns = returns  # function name → the config class it returns (``from_mapping`` → Config)
        self.derived = derived  # class → member defined in config.py → the keys it reads
        self.found: set[str] = set()

    def typeof(self, node: ast.expr, env: dict[str, str]) -> str | None:
        text = ast.unparse(node)
        if text in env:
            return env[text]
        match node:
            case ast.Attribute(value=value, attr=attr) if self.typeof(value, env) == "Config":
                return SECTIONS.get(attr)
            case ast.Call(func=ast.Name(id="replace") | ast.Attribute(attr="replace"), args=[first, *_]):
                return self.typeof(first, env)  # dataclasses.replace / config.replace: same class back
            case ast.Call(func=ast.Name(id=name) | ast.Attribute(attr=name)) if name in self.returns:
                return self.returns[name]
            case ast.IfExp(body=body, orelse=orelse):
                return self.typeof(body, env) or self.typeof(orelse, env)
            case ast.BoolOp(values=values):
                return next((t for v in values if (t := self.typeof(v, env))), None)
        return None

    def scope(self, body: list[ast.stmt], outer: dict[str, str], members: dict[str, str]) -> None:
        """One function, class or module body: bind names until nothing changes, then record reads.
        ``members`` are a class's ``self.<attr>`` types, shared by its methods."""
        env = outer | members
        nodes = [n for stmt in body for n in _walk_shallow(stmt)]
        for _ in range(5):  # a chain of assignments binds one link per round
            before = dict(env)
            for node in nodes:
                for target, value, ann in _bindings(node):
                    t = _annotation(ann) or (self.typeof(value, env) if value is not None else None)
                    if t is not None:
                        env[ast.unparse(target)] = t
            if env == before:
                break
        members.update({k: v for k, v in env.items() if k.startswith("self.")})
        for node in nodes:
            self._record(node, env)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                args = node.args
                params = {
                    a.arg: t
                    for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]
                    if (t := _annotation(a.annotation))
                }
                inner = [ast.Expr(node.body)] if isinstance(node, ast.Lambda) else node.body
                self.scope(inner, env | params, members)
            elif isinstance(node, ast.ClassDef):
                cls_members = {
                    f"self.{s.target.id}": t
                    for s in node.body
                    if isinstance(s, ast.AnnAssign)
                    and isinstance(s.target, ast.Name)
                    and (t := _annotation(s.annotation))
                }
                self.scope(node.body, env, cls_members)
                self.scope(node.body, env, cls_members)  # again: methods see each other's self.<attr>

    def _record(self, node: ast.AST, env: dict[str, str]) -> None:
        match node:
            case ast.Attribute(value=value, attr=attr, ctx=ast.Load()):
                name = attr
            case ast.Call(func=ast.Name(id="getattr"), args=[value, ast.Constant(value=str() as name), *_]):
                pass
            case _:
                return
        cls = self.typeof(value, env)
        if cls is None:
            return
        if name in FIELDS[cls] and not (cls == "Config" and name in SECTIONS):
            self.found.add(_key(cls, name))
        self.found |= self.derived.get(cls, {}).get(name, set())


def _walk_shallow(node: ast.AST) -> Iterator[ast.AST]:
    """``node`` and everything under it, but not inside nested functions or classes (their own scope),
    which are yielded themselves."""
    yield node
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
        return
    for child in ast.iter_child_nodes(node):
        yield from _walk_shallow(child)


def _bindings(node: ast.AST) -> Iterable[tuple[ast.expr, ast.expr | None, ast.expr | None]]:
    """(target, value, annotation) of each simple binding: ``x = v``, ``self.x: T = v``, ``x := v``."""
    match node:
        case ast.Assign(targets=targets, value=value):
            return [(t, value, None) for t in targets if isinstance(t, ast.Name | ast.Attribute)]
        case ast.AnnAssign(target=target, value=value, annotation=ann):
            return [(target, value, ann)]
        case ast.NamedExpr(target=target, value=value):
            return [(target, value, None)]
    return []


def _returns(trees: Iterable[ast.Module]) -> dict[str, str]:
    """Functions whose return annotation is a config class, by name (a name that also returns something
    else somewhere is left out: a call of it proves nothing)."""
    out: dict[str, str] = {}
    ambiguous: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                t = _annotation(node.returns)
                if t is None or out.get(node.name, t) != t:
                    ambiguous.add(node.name)
                else:
                    out[node.name] = t
    return {k: v for k, v in out.items() if k not in ambiguous}


def _derived(tree: ast.Module, returns: dict[str, str]) -> dict[str, dict[str, set[str]]]:
    """Members of the config classes other than ``__post_init__`` (properties, ``threshold_for``) and
    the keys each reads: a use of ``cfg.topic_prefix`` is a use of ``mqtt.prefix`` and ``device_id``."""
    out: dict[str, dict[str, set[str]]] = {}
    for cls in tree.body:
        if not (isinstance(cls, ast.ClassDef) and cls.name in CLASSES):
            continue
        for fn in cls.body:
            if isinstance(fn, ast.FunctionDef) and fn.name != "__post_init__":
                reader = _Reads(returns, {})
                reader.scope(fn.body, {"self": cls.name}, {})
                out.setdefault(cls.name, {})[fn.name] = reader.found
    return out


def reads_in(sources: dict[Path, str]) -> set[str]:
    """Every config key read in ``sources`` (path → text)."""
    trees = {path: ast.parse(text, str(path)) for path, text in sources.items()}
    returns = _returns(trees.values())
    reader = _Reads(returns, _derived(trees[CONFIG_PY], returns) if CONFIG_PY in trees else {})
    for path, tree in trees.items():
        if path not in NOT_READS:
            reader.scope(tree.body, {}, {})
    return reader.found


def package_sources() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.fixture(scope="module")
def read_keys() -> set[str]:
    return reads_in(package_sources())


def test_every_config_key_is_read_somewhere(read_keys: set[str]) -> None:
    unread = all_keys() - read_keys
    assert not unread, (
        f"config keys parsed and documented but read nowhere in edge_voice/: {sorted(unread)}; "
        "make them do what systemd/config.example.toml says, or remove them from Config, the example "
        "and the README"
    )


def _reads_of(snippet: str) -> set[str]:
    """The keys ``snippet`` reads, with the real config.py there for its derived members."""
    return reads_in({CONFIG_PY: CONFIG_PY.read_text(encoding="utf-8"), Path("snippet.py"): snippet})


def test_a_read_counts_for_its_own_section_only() -> None:
    config_py = CONFIG_PY.read_text(encoding="utf-8")
    reload_py = PACKAGE / "core" / "reload.py"
    # validation, loading, comparing and copying keys are not reads
    assert reads_in({CONFIG_PY: config_py, reload_py: reload_py.read_text(encoding="utf-8")}) == set()
    assert _reads_of("def f(c: WakeConfig) -> int:\n    return c.threads\n") == {"wake.threads"}
    assert _reads_of("def f(cfg: Config):\n    return cfg.llm.threads, cfg.device_id\n") == {
        "llm.threads",
        "device_id",
    }
    assert _reads_of("def f(x):\n    return x.threads, x.asr.model\n") == set()  # unknown receiver
    engine = (
        "class Engine:\n"
        "    def __init__(self, cfg: config.AsrConfig | None) -> None:\n"
        "        self.cfg = cfg\n"
        "    def run(self) -> None:\n"
        "        budget = self.cfg.max_decode_ms\n"
    )
    assert _reads_of(engine) == {"asr.max_decode_ms"}
    chain = "def f(cfg: Config):\n    mqtt = replace(cfg, device_id='x').mqtt\n    return mqtt.port\n"
    assert _reads_of(chain) == {"mqtt.port"}
    derived = "def f(cfg: Config, a: AudioConfig):\n    return cfg.topic_prefix, a.frame_samples\n"
    assert _reads_of(derived) == {"mqtt.prefix", "device_id", "audio.frame_ms"}
    assert _reads_of("def f(cfg: Config):\n    return getattr(cfg.service, 'watchdog')\n") == {
        "service.watchdog"
    }
    assert _reads_of("def f(cfg: Config):\n    return cfg.asr\n") == set()  # a whole section: no leaf

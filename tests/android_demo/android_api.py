"""The Android API as @nativescript/types-android declares it, to check the APK's dex against it.

The APK's Java compiles against hand-written stubs (no android.jar here), so nothing but this
check says the framework calls it makes exist on a phone at minSdk. The npm package declares
every public class, method and field of API levels 21..37 in TypeScript, with ``@since`` levels.

    api = AndroidApi.load(TYPES_D_TS)
    api.find_method("android.webkit.WebView", "loadUrl", "(Ljava/lang/String;)V")  # -> Member | None
    refs = dex_references(dexdump_text)        # framework methods/fields a dex uses
    bodies = dex_method_bodies(dexdump_text)   # "pkg.Class.method:(desc)" -> its instructions

Types are compared after mapping both sides onto what TypeScript can tell apart: every Java
number type is ``number``, String/CharSequence/char are ``string``, generics are erased.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

CLASS_RE = re.compile(
    r"export (?:abstract )?class (\w+)(<[^{]*?>)?\s+extends ([\w.]+)(?:<.*?>)?"
    r"(?: implements (.+?))? \{$"
)
MODULE_RE = re.compile(r"(?:declare|export) module (\w+) \{$")
MEMBER_RE = re.compile(r"public (static )?(constructor|\w+)(\(.*\))?(?:: (.*))?;$")
SINCE_RE = re.compile(r"@since (\d+)")
DEMO = Path(__file__).resolve().parents[2] / "android_demo"
TYPES_D_TS = DEMO / "node_modules/@nativescript/types-android/lib/android" / "android-platform-21-37-merged.d.ts"
NUMBERS = {"I", "J", "S", "B", "F", "D"}
STRINGS = {"java.lang.String", "java.lang.CharSequence", "string"}


@dataclass
class Member:
    name: str
    params: tuple[str, ...] | None  # None for a field
    returns: str
    since: int
    static: bool
    value: str | None = None  # a constant's literal value, as declared


@dataclass
class ApiClass:
    name: str
    since: int
    extends: str
    implements: list[str]
    type_params: set[str]
    members: dict[str, list[Member]] = field(default_factory=dict)


def split_top(text: str) -> list[str]:
    """Split on commas outside <>, () and {} (parameter lists hold generic types)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "<({"
        depth -= ch in ">)}"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    tail = text[start:].strip()
    return [p.strip() for p in parts] + ([tail] if tail else [])


def ts_type(t: str, type_params: set[str]) -> str:
    """A TypeScript type as declared -> the comparison key."""
    t = t.replace(" | null", "").strip()
    m = re.fullmatch(r"androidNative\.Array<(.*)>", t)
    if m:
        return ts_type(m.group(1), type_params) + "[]"
    t = re.sub(r"<.*>$", "", t)
    if t in type_params or t == "any":
        return "java.lang.Object"
    return "string" if t in STRINGS else t


def jvm_types(descriptor: str) -> list[str]:
    """A JVM type descriptor sequence -> comparison keys (``(I[Ljava/lang/String;)V`` style)."""
    out, i = [], 0
    while i < len(descriptor):
        dims = 0
        while descriptor[i] == "[":
            dims, i = dims + 1, i + 1
        ch = descriptor[i]
        if ch == "L":
            end = descriptor.index(";", i)
            name = descriptor[i + 1 : end].replace("/", ".").replace("$", ".")
            i = end + 1
        else:
            name = {"Z": "boolean", "V": "void", "C": "string"}.get(ch, "number" if ch in NUMBERS else ch)
            i += 1
        out.append(("string" if name in STRINGS else name) + "[]" * dims)
    return out


def method_types(descriptor: str) -> tuple[tuple[str, ...], str]:
    params, returns = descriptor[1:].split(")")
    return tuple(jvm_types(params)), jvm_types(returns)[0]


class AndroidApi:
    def __init__(self, classes: dict[str, ApiClass]):
        self.classes = classes

    @classmethod
    def load(cls, path: Path) -> AndroidApi:
        classes: dict[str, ApiClass] = {}
        stack: list[tuple[str, object]] = []  # ("module", name) | ("class", ApiClass) | ("block", None)
        comment, in_comment = "", False
        for raw in Path(path).read_text().splitlines():
            s = raw.strip()
            if in_comment or s.startswith("/**"):
                comment = (comment if in_comment else "") + s
                in_comment = not s.endswith("*/")
                continue
            since = int(m.group(1)) if (m := SINCE_RE.search(comment)) else 0
            comment = ""
            if m := MODULE_RE.match(s):
                stack.append(("module", m.group(1)))
                continue
            if m := CLASS_RE.match(s):
                outer = [n if k == "module" else n.name.rsplit(".", 1)[-1] for k, n in stack if k != "block"]
                name = ".".join([*outer, m.group(1)])
                params = set(re.findall(r"\w+", m.group(2) or ""))
                enclosing = next((c for k, c in reversed(stack) if k == "class"), None)
                if enclosing:
                    params |= enclosing.type_params
                    since = max(since, enclosing.since)
                c = ApiClass(name, since, m.group(3), split_top(m.group(4) or ""), params)
                classes[name] = c
                stack.append(("class", c))
                continue
            if stack and stack[-1][0] == "class" and (m := MEMBER_RE.match(s)):
                c = stack[-1][1]
                static, name, args, rest = m.groups()
                if args is not None:  # a method or constructor
                    params = tuple(
                        ts_type(a.split(": ", 1)[1], c.type_params) for a in split_top(args[1:-1]) if ": " in a
                    )
                    member = Member(
                        name if name != "constructor" else "<init>",
                        params,
                        ts_type(rest or "void", c.type_params),
                        since,
                        bool(static),
                    )
                    if "implementation: {" in s:
                        member = None
                else:
                    member = Member(name, None, ts_type(rest, c.type_params), since, bool(static), value=rest)
                if member:
                    c.members.setdefault(member.name, []).append(member)
            net = s.count("{") - s.count("}")
            for _ in range(net):
                stack.append(("block", None))
            for _ in range(-net):
                stack.pop()
        return cls(classes)

    def ancestors(self, name: str):
        """The class, then its superclasses and interfaces, breadth first."""
        seen, queue = set(), [name]
        while queue:
            n = queue.pop(0)
            if n in seen or n not in self.classes:
                continue
            seen.add(n)
            c = self.classes[n]
            yield c
            queue += [c.extends, *(re.sub(r"<.*>$", "", i) for i in c.implements)]

    def find_method(self, cls: str, name: str, descriptor: str) -> Member | None:
        params, returns = method_types(descriptor)
        for c in self.ancestors(cls):
            for m in c.members.get(name, []):
                if m.params == params and (name == "<init>" or m.returns == returns):
                    return m
            if name == "<init>":
                return None  # constructors are not inherited
        return None

    def find_field(self, cls: str, name: str) -> Member | None:
        for c in self.ancestors(cls):
            for m in c.members.get(name, []):
                if m.params is None:
                    return m
        return None

    def declares_method(self, cls: str, name: str) -> bool:
        return any(m.params is not None for c in self.ancestors(cls) for m in c.members.get(name, []))


@dataclass(frozen=True)
class DexClass:
    name: str  # dotted
    superclass: str
    methods: tuple[tuple[str, str], ...]  # (name, descriptor), direct and virtual
    virtual: tuple[tuple[str, str], ...]
    fields: tuple[str, ...]


REF_RE = re.compile(r"L([\w/$]+);\.([\w<>$]+):(\(?[^\s,]*)")


def dotted(internal: str) -> str:
    return internal.replace("/", ".").replace("$", ".")


def dex_classes(dump: str) -> dict[str, DexClass]:
    """The classes a ``dexdump -d`` listing defines, with their declared members."""
    classes = {}
    for block in dump.split("Class #")[1:]:
        name = dotted(re.search(r"Class descriptor\s*: 'L(.*);'", block).group(1))
        sup = dotted(re.search(r"Superclass\s*: 'L(.*);'", block).group(1))
        methods, virtual, fields = [], [], []
        section = None
        for line in block.splitlines():
            if m := re.match(r"\s+(Direct|Virtual) methods", line):
                section = m.group(1)
            elif re.match(r"\s+(Static|Instance) fields", line):
                section = "fields"
            elif m := re.match(r"\s+name\s*: '(.*)'", line):
                pending = m.group(1)
                if section == "fields":
                    fields.append(pending)
            elif (m := re.match(r"\s+type\s*: '(\(.*)'", line)) and section in ("Direct", "Virtual"):
                methods.append((pending, m.group(1)))
                if section == "Virtual":
                    virtual.append((pending, m.group(1)))
        classes[name] = DexClass(name, sup, tuple(methods), tuple(virtual), tuple(fields))
    return classes


def dex_references(dump: str) -> set[tuple[str, str, str]]:
    """Every (class, member, descriptor) the code refers to; a field's descriptor has no '('."""
    return {(dotted(c), n, d) for c, n, d in REF_RE.findall(dump)}


BODY_RE = re.compile(r"^[0-9a-f]+:\s+\|\[[0-9a-f]+\] (\S+)$", re.M)


def dex_method_bodies(dump: str) -> dict[str, str]:
    """Each method's code in a ``dexdump -d`` listing, keyed ``pkg.Class.method:(desc)ret``."""
    marks = list(BODY_RE.finditer(dump))
    ends = [m.start() for m in marks[1:]] + [len(dump)]
    return {m.group(1): dump[m.end() : end] for m, end in zip(marks, ends)}


def sdk_checked_levels(body: str) -> set[int]:
    """The API levels a method compares Build.VERSION.SDK_INT with (empty when it reads none)."""
    if "Landroid/os/Build$VERSION;.SDK_INT:I" not in body:
        return set()
    return {int(n) for n in re.findall(r"const(?:/4|/16)? v\d+, #int (\d+)", body)}

"""The security corpus: hostile ``${}`` payloads, as data, crossed with the places they are evaluated.

A payload is the inside of a ``${...}`` segment (or, for the ``boolrule`` place, the condition text
itself). ``harmless=True`` marks payloads that may legitimately be computed (within the documented
limits); every other payload must be refused. To extend the corpus, add a ``Payload`` to a family list:
``CASES`` crosses every family with every place and deduplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# --- shared sentinels ------------------------------------------------------------------------------

#: set by anything that runs host code it should not: a non-empty list is an escape
TRIPPED: list[str] = []
# (what, amount, case id) of every measured case: the worst are printed at the end of the run
FIGURES: list[tuple[str, float, str]] = []

FORMAT_WALK = "{0.__class__.__mro__[1].__subclasses__}"


class Sentinel:
    """A context value whose every reachable hook records a call: an escape shows in ``TRIPPED``.

    ``__str__``/``__repr__``/``__format__`` are not recorded: rendering a value prints it by design.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []

    def _trip(self, what: str) -> None:
        self.calls.append(what)
        TRIPPED.append(what)

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self._trip("__call__")
        return "called"

    def __getattr__(self, name: str) -> Any:
        self._trip(f"__getattr__({name})")
        raise AttributeError(name)

    def __reduce__(self) -> Any:
        self._trip("__reduce__")
        return (Sentinel, ())

    def __reduce_ex__(self, protocol: Any) -> Any:
        self._trip("__reduce_ex__")
        return (Sentinel, ())

    def __getitem__(self, key: Any) -> Any:
        self._trip("__getitem__")
        return "item"

    def __iter__(self) -> Any:
        self._trip("__iter__")
        return iter(())

    def __len__(self) -> int:
        self._trip("__len__")
        return 0

    def __bool__(self) -> bool:
        self._trip("__bool__")
        return True


def pwn(*args: Any, **kwargs: Any) -> str:
    """A host name (``expression_names``): calling it by name is allowed, reaching it any other way is not."""
    TRIPPED.append("pwn")
    return "pwned"


# --- payload families --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    family: str
    expr: str
    harmless: bool = False


def _family(name: str, exprs: list[str], harmless: tuple[str, ...] = ()) -> list[Payload]:
    return [Payload(name, e, e in harmless) for e in exprs]


ESCAPE = _family(
    "escape",
    [
        # dunder walks (copied from tests/expr/test_expr_escapes.py, plus variants)
        "().__class__.__bases__[0].__subclasses__()",
        "''.__class__.__mro__[1].__subclasses__()",
        "[].__class__.__mro__",
        "(1).__class__",
        "x.__class__.__base__",
        "l.__class__.mro()",
        "[c for c in ().__class__.__base__.__subclasses__()]",
        "[c.__init__.__globals__ for c in ''.__class__.__mro__[1].__subclasses__()]",
        "spy.__globals__",
        "spy.__call__()",
        "spy.__reduce__()",
        "spy.__reduce_ex__(2)",
        "spy.anything",
        "pwn.__globals__['TRIPPED']",
        "pwn.__code__.co_consts",
        "pwn.__call__()",
        "[pwn][0]()",
        "(pwn if 1 else 0)()",
        "{'f': pwn}['f']()",
        "(pwn, pwn)[1]()",
        "'-'.join.__self__",
        "x.upper.__self__",
        "(x for x in [1]).gi_frame.f_globals",
        # builtins that must not exist
        "getattr(1, 'real')",
        "getattr(pwn, '__globals__')",
        "__import__('os').system('touch ' + PWN)",
        "__import__('os')",
        "__builtins__['eval']('1')",
        "eval('1')",
        "exec('x = 1')",
        "compile('1', 'f', 'eval')",
        "open(PWN, 'w').write('x')",
        "open('/etc/passwd').read()",
        "globals()",
        "locals()",
        "vars()",
        "vars(spy)",
        "dir()",
        "type(1)",
        "type('X', (), {})",
        "type(spy).__dict__",
        "setattr(spy, 'x', 1)",
        "breakpoint()",
        "memoryview(x)",
        # calling context values
        "spy()",
        "[spy][0]()",
        "max([1, 2], key=spy)",
        "sorted(l, key=pwn)",
        "list(spy)",
        "len(spy)",
        "spy[0]",
        "x if spy else x",
        # format-string walks
        "'{0.__class__}'.format(x)",
        "'{.__globals__}'.format(pwn)",
        "'{0.__globals__[TRIPPED]}'.format(pwn)",
        "'{x.__class__}'.format(x=1)",
        "'{0[0].__class__}'.format(l)",
        "'{0!r:{1}}'.format(spy, 2)",
        "fmt.format(x)",
        "x.format_map(d)",
        "'{a}'.format_map({'a': pwn})",
        "'%(a)s' % {'a': spy}",
        "pct % d",
        # f-strings, lambdas, walrus, comprehension scope
        "f'{x.__class__}'",
        "f'{pwn()}'",
        "lambda: pwn()",
        "(lambda: 1)()",
        "(lambda f: f(f))(lambda f: f(f))",
        "(y := pwn)",
        "[y := 1 for z in l]",
        "[i for i in l] and i",
        "{k: v for k, v in d.items()}",
        "{i for i in l}",
        "[z for z in [pwn]][0]()",
        # misc syntax that must not exist
        "[*l]",
        "dict(**d)",
        "pwn(**d)",
        "import os",
        "l.append(1)",
        "d.update(x=1)",
        "x.encode()",
        "_private",
        "[_ for _ in l]",
    ],
    harmless=("'%(a)s' % {'a': spy}",),  # str() of a value: printing is what rendering does
)

CPU = _family(
    "cpu",
    [
        "('a'*524287).rfind('ab'+'a'*262000)",
        "('a'*400000).find('a'*300000+'b')",
        "('a'*400000).count('a'*300000+'b')",
        "('a'*300000+'b') in ('a'*400000)",
        "('a'*400000).replace('a'*300000+'b', '')",
        "('a'*400000).split('a'*300000+'b')",
        "big.strip('b'*100+'a')",
        "[[i for i in range(10**5)] for j in range(10**5)]",
        "[i * j for i in range(100000) for j in range(100000)]",
        "[[[k for k in range(100)] for j in range(100)] for i in range(100)]",
        "sum(range(10**9))",
        "range(10**12)",
        "len(range(10**6))",
        "10**10**10",
        "2**(2**64)",
        "7**100000",
        "9**9**9",
        "(10**4000) * (10**4000) * (10**4000) * (10**4000) * (10**4000) * (10**4000)",
        "'x' * 10**7",
        "sorted(big)",
        "sorted(list(range(100000)))",
        "sorted([str(i) for i in range(100000)])",
        "int('9'*100000)",
        "int('1'*70000, 2)",
        "str(10**100000)",
        "max(range(10**9))",
        "any(x == 'b' for x in big)",
        "round(1, -10**9)",
        "'{:999999999}'.format(1)",
        "'%*d' % (10**9, 1)",
        "'%.*f' % (10**9, 1.0)",
    ],
    harmless=(
        "big.strip('b'*100+'a')",
        "sorted(list(range(100000)))",
        "len(range(10**6))",
    ),
)

MEMORY = _family(
    "memory",
    [
        "'a'*10**9",
        "'a'*(2**40)",
        "[0]*10**9",
        "(1,)*10**9",
        "list(range(10**9))",
        "list(range(10**5))",
        "tuple(range(10**9))",
        "set(range(10**9))",
        "set(big)",
        "dict(zip(big, big))",
        "zip(big, big, big, big)",
        "zip(" + ", ".join(["big"] * 200) + ")",
        "zip(" + ", ".join(["x"] * 200) + ")",
        "enumerate(big)",
        "enumerate('ab', start=2**70000)",
        "list(enumerate(range(10**9)))",
        "reversed(big)",
        "[l * 100000 for i in range(10)]",
        "[[0] * 1000 for i in range(1000)]",
        "[[[0] * 100] * 100] * 100",
        "str([big] * 100000)",
        "'-'.join(['a' * 100000] * 100)",
        "'ab'.replace('', 'x' * 1000000)",
        "'x'.center(10**9)",
        "'x'.zfill(10**10)",
        "'x'.ljust(10**9)",
        "big + big",
        "big.split('a')",
        "sum([[1]] * 1000, [])",
        "1 << 10**9",
        "bytearray(10**9)",
    ],
    harmless=(
        "list(range(10**5))",
        "zip(" + ", ".join(["x"] * 200) + ")",
    ),
)

UNICODE = _family(
    "unicode",
    [
        # fullwidth and mathematical letters: NFKC turns them into the ASCII names
        "\uff45\uff56\uff41\uff4c('1')",
        "\uff45\uff58\uff45\uff43('x = 1')",
        "\uff4f\uff50\uff45\uff4e(PWN, 'w')",
        "\U0001d41e\U0001d42f\U0001d41a\U0001d425('1')",
        "\u212fval('1')",  # val
        "\uff47\uff45\uff54\uff41\uff54\uff54\uff52(1, 'real')",
        "\uff54\uff59\uff50\uff45(1)",
        # underscore lookalikes that NFKC turns into "_"
        "x.\uff3f\uff3fclass\uff3f\uff3f",  # class
        "\uff3f\uff3fimport\uff3f\uff3f('os')",
        "\ufe4d\ufe4dimport\ufe4d\ufe4d('os')",  # dashed low line
        "\ufe33\ufe33builtins\ufe33\ufe33",  # vertical low line
        "\ufe4f\ufe4fclass\ufe4f\ufe4f",  # wavy low line
        "().\uff3f\uff3fclass\uff3f\uff3f.\uff3f\uff3fbases\uff3f\uff3f",
        "x.\uff3f\uff3fclass\uff3f\uff3f.mro()",
        "'{0.\uff3f\uff3fclass\uff3f\uff3f}'.format(x)",  # no NFKC inside a format string
        "\uff3fprivate",
        "s\u0070y.\u005f\u005fcall\u005f\u005f()",
        # zero-width and bidi characters
        "ev\u200dal('1')",  # zero-width joiner
        "ev\u200bal('1')",  # zero-width space
        "ev\u200cal('1')",  # zero-width non-joiner
        "\ufeffeval('1')",  # BOM
        "x.\u200b__class__",
        "\u202eeval('1')",  # right-to-left override
        "'\u202e' + x",  # bidi inside a string literal is data
        "'\u200d'.join(['a', 'b'])",
        "x.\uff55\uff50\uff50\uff45\uff52()",  # x.(): NFKC upper, allowed
        "\u0435val('1')",  # Cyrillic : another name, undefined
        "\u0455py()",  # Cyrillic py
        "pw\u0578()",  # Armenian vo
        "\uff50\uff57\uff4e.\uff3f\uff3fglobals\uff3f\uff3f",
        "\u2168",  # Roman numeral nine: NFKC "IX", undefined name
        "\U000e0041eval('1')",  # tag character
    ],
    harmless=(
        "'\u202e' + x",
        "'\u200d'.join(['a', 'b'])",
        "x.\uff55\uff50\uff50\uff45\uff52()",
    ),
)

SYNTAX = _family(
    "syntax",
    [
        "(" * 200 + "1" + ")" * 200,
        "(" * 10000 + "1" + ")" * 10000,
        "[" * 150 + "]" * 150,
        "{" * 1000 + "}" * 1000,
        "-" * 3000 + "1",
        "not " * 1000 + "1",
        "x" + "[0]" * 1000,
        "1" + "+1" * 2600,
        "a" * 5000,
        "'" + "a" * 5000 + "'",
        "'" + "a" * 4093 + "'",  # 4095 bytes: at the limit, a plain string
        "[" + ", ".join(["1"] * 2000) + "]",
        "'abc",
        "'''abc",
        '"abc',
        "'a\x00b'",
        "\x00",
        "1\x00+1",
        "1 +",
        ")",
        "1 if",
        "\\",
        "#",
        "1; 2",
        "1\n+1",
        "yield 1",
        "await x",
        "b'abc'",
        "1j",
        "...",
        "\ud800",
        "'\\N{",
        "x.",
        "1 if 1 else " * 300 + "1",
        "[i for i in " * 50 + "l" + "]" * 50,
    ],
    harmless=(
        "(" * 200 + "1" + ")" * 200,
        "'" + "a" * 4093 + "'",
        "[" + ", ".join(["1"] * 2000) + "]",
        "1\n+1",
        "1 if 1 else " * 300 + "1",
        "-" * 3000 + "1",
        "1" + "+1" * 2600,
        "x" + "[0]" * 1000,
        "not " * 1000 + "1",
        "[i for i in " * 50 + "l" + "]" * 50,
    ),
)

# payloads aimed at the hand-written boolrule parser (the condition text, not a ${} segment)
BOOLRULE = _family(
    "boolrule",
    [
        "(" * 100000 + "1 == 1" + ")" * 100000,
        "1 == 1 and " * 20000 + "1 == 1",
        "1 == 1 or " * 20000 + "1 == 1",
        "'" + "a" * 2_000_000 + "' in '" + "a" * 2_000_000 + "'",
        "(" + ", ".join(["1"] * 100000) + ") issuperset (" + ", ".join(["2"] * 100000) + ")",
        "9" * 100000 + " == 1",
        "1e999999 == 1",
        "a." * 100000 + "a == 1",
        "__import__ == 1",
        "${__import__('os')} == 1",
        "eval('1') == 1",
        "\uff45\uff56\uff41\uff4c == 1",
        "1 == 1 \x00",
        "'abc == 1",
        "1 ==",
        "1 == 1 and",
    ],
    harmless=(
        "1 == 1 and " * 20000 + "1 == 1",
        "1 == 1 or " * 20000 + "1 == 1",
        "'" + "a" * 2_000_000 + "' in '" + "a" * 2_000_000 + "'",
        "(" + ", ".join(["1"] * 100000) + ") issuperset (" + ", ".join(["2"] * 100000) + ")",
        "1e999999 == 1",
        "a." * 100000 + "a == 1",
        "__import__ == 1",
        "eval('1') == 1",
        "\uff45\uff56\uff41\uff4c == 1",
    ),
)

TEMPLATE_FAMILIES: tuple[list[Payload], ...] = (ESCAPE, CPU, MEMORY, UNICODE, SYNTAX)
PLACES = ("splice", "gateway", "activity", "boolrule")


@dataclass(frozen=True)
class Case:
    payload: Payload
    place: str

    @property
    def id(self) -> str:
        text = self.payload.expr[:40].encode("unicode_escape").decode("ascii")
        return f"{self.place}-{self.payload.family}-{text}"


def _build_cases() -> list[Case]:
    seen: set[tuple[str, str]] = set()
    cases: list[Case] = []
    for family in TEMPLATE_FAMILIES:
        for payload in family:
            for place in PLACES:
                if (payload.expr, place) not in seen:
                    seen.add((payload.expr, place))
                    cases.append(Case(payload, place))
    for payload in BOOLRULE:
        if (payload.expr, "boolrule") not in seen:
            seen.add((payload.expr, "boolrule"))
            cases.append(Case(payload, "boolrule"))
    return cases


CASES = _build_cases()

#: payloads that are NOT refused today (sandbox findings, kept as strict xfails until fixed): payload -> why
KNOWN_FINDINGS: dict[str, str] = {}

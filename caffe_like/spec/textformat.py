"""Protobuf text format (prototxt): a schema-free reader and writer that keeps positions.

:func:`parse` turns prototxt text into a :class:`~caffe_like.spec.tree.Node` without knowing the
schema; :mod:`caffe_like.spec.schema` then checks field names and types.  Every
:class:`~caffe_like.spec.tree.Entry` carries the position of its key, every
:class:`~caffe_like.spec.tree.Leaf` the position of its value, every nested
:class:`~caffe_like.spec.tree.Node` the position of its opening bracket (1-based line and column,
columns counted in characters).  :func:`format` writes a Node back as text that protobuf's C++
``TextFormat`` parser -- the one Caffe uses -- accepts.

Grammar accepted (that of protobuf's C++ ``TextFormat::Parser``, less extensions)::

    message := field*
    field   := NAME ( ":" scalar | ":" "[" scalars? "]" | ":"? block | ":"? "[" blocks? "]" ) (";" | ",")?
    block   := "{" message "}" | "<" message ">"
    scalars := scalar ("," scalar)*
    blocks  := block ("," block)*
    scalar  := STRING+ | IDENT | "-"? NUMBER | "-" ("inf" | "infinity" | "nan")

Lexical rules:

* ``NAME``/``IDENT``: ``[A-Za-z_][A-Za-z0-9_]*``.  A value identifier becomes a Leaf of kind
  ``"ident"`` holding its text (enum names, ``true``, ``False``, ``t``, ``inf``, ``nan``, ...); a ``-``
  before ``inf``/``infinity``/``nan`` (any case) gives the ident ``"-inf"`` (the text with a ``-``).
* ``NUMBER``: decimal ``42``, hex ``0x1F``, octal ``017`` (Leaf kind ``"int"``, a Python int), or a
  float ``1.5``, ``.5``, ``1.``, ``1e-5``, ``1.5E+3``, optionally suffixed ``f``/``F`` (kind
  ``"float"``).  The sign is its own token, so ``- 3`` is ``-3`` as in protobuf.  A number must be
  followed by a space or symbol, not a letter.
* ``STRING``: double or single quotes, on one line, with the C escapes ``\\n \\t \\r \\\\ \\' \\" \\?
  \\a \\b \\f \\v``, octal ``\\ooo`` (up to ``\\377``), hex ``\\xH``/``\\xHH``, ``\\uXXXX`` (surrogate
  pairs combine) and ``\\UXXXXXXXX`` (up to ``\\U0010ffff``).  Adjacent literals concatenate.  Like
  protobuf, a string is a byte string: escapes yield bytes, other characters their UTF-8 encoding.  The
  Leaf (kind ``"str"``) holds a Python ``str`` when those bytes are valid UTF-8, else ``bytes``.
* ``#`` starts a comment to the end of the line; whitespace is space, tab, CR, LF, VT and FF.
* A list ``key: [a, b]`` is expanded into one Entry per element, each with the key's position.

Anything else -- extension fields ``[foo.bar]``, unbalanced brackets, nesting deeper than
:data:`MAX_DEPTH`, stray characters -- raises :class:`~caffe_like.errors.SpecError` naming the file,
line and column; no other exception escapes :func:`parse` for any input text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import SpecError
from .tree import Entry, Leaf, Node, Pos

__all__ = ["parse", "parse_file", "format", "MAX_DEPTH"]

#: deepest nesting of ``{ }`` blocks :func:`parse` and :func:`format` accept.
MAX_DEPTH = 100

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_IDENT_RE = re.compile(_IDENT + r"\Z")

# One token per match, with the whitespace and comments before it (group 1).  Numbers are matched
# generously (letters, dots and exponent signs included) so that a malformed number is one token with a
# precise message; it is validated when the parser uses it.
_TOKEN = re.compile(
    rf"""
    ((?:[ \t\r\n\v\f]+|\#[^\n]*)*)
    (?:
      (?P<ident>{_IDENT})
    | (?P<number>(?:[0-9]|\.[0-9])(?:[0-9A-Za-z_.]|(?<=[eE])[+-])*)
    | (?P<string>"[^"\\\n]*(?:\\[^\n][^"\\\n]*)*"|'[^'\\\n]*(?:\\[^\n][^'\\\n]*)*')
    | (?P<symbol>[{{}}<>\[\]:;,-])
    | (?P<openquote>["'])
    | (?P<badchar>.)
    | (?P<eof>\Z)
    )
    """,
    re.VERBOSE | re.DOTALL,
)

_HEX_NUMBER = re.compile(r"0[xX][0-9A-Fa-f]+\Z")
_OCTAL_NUMBER = re.compile(r"0[0-7]+\Z")
_DECIMAL_NUMBER = re.compile(r"(?:[0-9]+(\.[0-9]*)?|(\.[0-9]+))([eE][+-]?[0-9]+)?([fF])?\Z")

_ESCAPE = re.compile(
    r"""\\(?:
      u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})
    | ([0-7]{1,3})
    | x([0-9a-fA-F]{1,2})
    | u([0-9a-fA-F]{4})
    | U([0-9a-fA-F]{8})
    | ([abfnrtv\\?'"])
    | (.?)
    )""",
    re.VERBOSE | re.DOTALL,
)
_SIMPLE_ESCAPES = {
    "a": b"\a", "b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t", "v": b"\v",
    "\\": b"\\", "?": b"?", "'": b"'", '"': b'"',
}
_SPECIAL_FLOATS = ("inf", "infinity", "nan")
# Longest decimal integer literal read and largest integer written: far beyond protobuf's 64 bits, well
# within Python's int/str conversion limit (4300 digits).
_MAX_DIGITS = 1000
_MAX_INT_BITS = 3000
_CLOSER = {"{": "}", "<": ">"}
_CHARACTER_FIXES = {
    "/": "comments start with '#' in prototxt",
    "+": "write numbers without a '+' sign",
    "=": "separate a field name from its value with ':'",
    ".": "write a number like 0.5 or a plain field name (no dotted names)",
}

# (kind, text, line, column); kind is "ident", "number", "string", "openquote", "badchar", "eof",
# or the symbol itself ("{", ":", ...).
_Token = tuple[str, str, int, int]


# --------------------------------------------------------------------------------------------------
# reading


def parse(text: str, file: str | None = None) -> Node:
    """Parse prototxt ``text`` into a :class:`Node`; ``file`` is only used in positions and errors.

    Raises:
        SpecError: on any syntax error, with file, line, column and, where possible, a fix.
    """
    if not isinstance(text, str):
        raise SpecError(f"prototxt text must be a str, got {type(text).__name__}", file=file)
    return _Parser(text, None if file is None else str(file)).parse_top()


def parse_file(path) -> Node:
    """Read ``path`` as UTF-8 and :func:`parse` it; unreadable or non-UTF-8 files raise SpecError."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise SpecError(f"cannot read the file: {err.strerror or err}", file=name,
                        fix="check the path and its permissions") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise SpecError(f"the file is not valid UTF-8 (byte 0x{data[err.start]:02x})", file=name,
                        line=line, column=column, fix="save the file as UTF-8") from None
    return parse(text, name)


def _tokens(text: str) -> Iterator[_Token]:
    """Yield the tokens of ``text`` (whitespace and comments dropped), then ``eof`` tokens forever."""
    line, line_start = 1, 0
    for match in _TOKEN.finditer(text):
        start = match.end(1)
        if start != match.start():
            newlines = text.count("\n", match.start(), start)
            if newlines:
                line += newlines
                line_start = text.rfind("\n", 0, start) + 1
        kind = match.lastgroup
        value = match.group(kind)
        token = (value if kind == "symbol" else kind), value, line, start - line_start + 1
        if kind == "eof":
            while True:  # the parser may look past the end; it keeps seeing the end
                yield token
        yield token


def _describe(token: _Token) -> str:
    """A token as error messages name it."""
    kind, text = token[0], token[1]
    if kind == "eof":
        return "the end of the file"
    if kind == "string":
        return f"the string {_shorten(text)}"
    if kind == "number":
        return f"the number {_shorten(text)}"
    return f"'{_shorten(text)}'"


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Parser:
    """Recursive-descent parser over the token stream, one token of look-ahead."""

    def __init__(self, text: str, file: str | None) -> None:
        self.file = file
        self._next = _tokens(text).__next__
        self.tok: _Token = self._next()

    # -- helpers ------------------------------------------------------------------------------------

    def advance(self) -> _Token:
        """Consume the current token and return it."""
        tok = self.tok
        self.tok = self._next()
        return tok

    def pos(self, tok: _Token) -> Pos:
        return Pos(self.file, tok[2], tok[3])

    def error(self, tok: _Token, message: str, fix: str | None = None) -> SpecError:
        return SpecError(message, file=self.file, line=tok[2], column=tok[3], fix=fix)

    def unexpected(self, tok: _Token, expected: str, fix: str | None = None) -> SpecError:
        """The error for ``tok`` where ``expected`` was due; lexical errors take precedence."""
        if tok[0] == "badchar":
            return self.bad_character(tok)
        if tok[0] == "openquote":
            return self.error(tok, "unterminated string",
                              fix=f"close the string with {tok[1]} on the same line (strings cannot span lines)")
        return self.error(tok, f"expected {expected}, got {_describe(tok)}", fix)

    def bad_character(self, tok: _Token) -> SpecError:
        char = tok[1]
        if char == "\ufeff":
            return self.error(tok, "unexpected byte-order mark (U+FEFF)",
                              fix="save the file as UTF-8 without a byte-order mark")
        shown = char if char.isprintable() else f"U+{ord(char):04X}"
        return self.error(tok, f"unexpected character '{shown}'", _CHARACTER_FIXES.get(char))

    # -- grammar ------------------------------------------------------------------------------------

    def parse_top(self) -> Node:
        """Parse the whole input as the fields of the top-level message."""
        first = self.tok
        node = Node(pos=self.pos(first) if first[0] == "ident" else Pos(self.file, 1, 1))
        self.fields(node, None, 0)
        return node

    def fields(self, node: Node, opener: _Token | None, depth: int) -> None:
        """Parse fields into ``node`` up to the closer of ``opener`` (or the end of the input)."""
        closer = _CLOSER[opener[1]] if opener is not None else None
        while True:
            tok = self.tok
            kind = tok[0]
            if kind == "ident":
                self.field(node, depth)
            elif kind == closer:
                self.advance()
                return
            elif kind == "eof" and closer is None:
                return
            else:
                raise self.not_a_field(tok, opener, closer)

    def not_a_field(self, tok: _Token, opener: _Token | None, closer: str | None) -> SpecError:
        """The error for a token that cannot start a field."""
        kind = tok[0]
        if opener is not None and (kind == "eof" or kind in ("}", ">")):
            return self.error(
                tok,
                f"expected '{closer}' to close the block opened at line {opener[2]}, got {_describe(tok)}",
                fix=f"add '{closer}' or remove the extra '{opener[1]}'" if kind == "eof"
                else f"close the block opened with '{opener[1]}' at line {opener[2]}, column {opener[3]} "
                     f"with '{closer}'",
            )
        if kind in ("}", ">"):
            return self.error(tok, f"unexpected '{kind}' with no open block to close",
                              fix="remove it or add the matching opening bracket")
        if kind == "[":
            return self.error(tok, "extension and Any fields ('[foo.bar] { ... }') are not supported",
                              fix="write the field by its plain name")
        return self.unexpected(tok, "a field name")

    def field(self, node: Node, depth: int) -> None:
        """Parse one field (its name is the current token) and its optional separator."""
        name_tok = self.advance()
        key = name_tok[1]
        key_pos = Pos(self.file, name_tok[2], name_tok[3])
        colon = self.tok[0] == ":"
        if colon:
            self.advance()
        kind = self.tok[0]
        if kind == "{" or kind == "<":
            node.entries.append(Entry(key, self.block(depth), key_pos))
        elif kind == "[":
            self.list_value(node, key, key_pos, colon, depth)
        elif colon:
            node.entries.append(Entry(key, self.scalar(key), key_pos))
        else:
            raise self.unexpected(self.tok, f"':' or '{{' after field name '{key}'",
                                  fix=f"write '{key}: value' or '{key} {{ ... }}'")
        if self.tok[0] == ";" or self.tok[0] == ",":
            self.advance()

    def block(self, depth: int) -> Node:
        """Parse a ``{ ... }`` or ``< ... >`` message (the current token is its opening bracket)."""
        opener = self.advance()
        if depth >= MAX_DEPTH:
            raise self.error(opener, f"blocks nested more than {MAX_DEPTH} deep",
                             fix="flatten the definition; real nets nest a few levels")
        node = Node(pos=Pos(self.file, opener[2], opener[3]))
        self.fields(node, opener, depth + 1)
        return node

    def list_value(self, node: Node, key: str, key_pos: Pos, colon: bool, depth: int) -> None:
        """Parse ``[a, b]`` or ``[{...}, {...}]`` and add one entry per element."""
        opener = self.advance()
        if self.tok[0] == "]":
            self.advance()
            return
        blocks = self.tok[0] in ("{", "<")
        if not blocks and not colon:
            raise self.unexpected(self.tok, f"'{{' (a list without ':' after '{key}' holds messages)",
                                  fix=f"write '{key}: [...]' for a list of values")
        while True:
            if blocks:
                if self.tok[0] not in ("{", "<"):
                    raise self.unexpected(self.tok, f"'{{' (the list '{key}' holds messages)")
                value = self.block(depth)
            else:
                if self.tok[0] in ("{", "<"):
                    raise self.unexpected(self.tok, f"a value (the list '{key}' holds values, not messages)")
                value = self.scalar(key)
            node.entries.append(Entry(key, value, key_pos))
            tok = self.advance()
            if tok[0] == "]":
                return
            if tok[0] != ",":
                raise self.unexpected(
                    tok, f"',' or ']' in the list '{key}' opened at line {opener[2]}",
                    fix="separate list elements with ',' and close the list with ']'",
                )

    def scalar(self, key: str) -> Leaf:
        """Parse a scalar value: strings, identifiers and (signed) numbers."""
        tok = self.tok
        kind = tok[0]
        if kind == "ident":
            self.advance()
            return Leaf(tok[1], "ident", Pos(self.file, tok[2], tok[3]))
        if kind == "number":
            self.advance()
            return self.number(tok, tok, negative=False)
        if kind == "string":
            return self.string()
        if kind == "-":
            self.advance()
            operand = self.tok
            if operand[0] == "number":
                self.advance()
                return self.number(operand, tok, negative=True)
            if operand[0] == "ident" and operand[1].lower() in _SPECIAL_FLOATS:
                self.advance()
                return Leaf("-" + operand[1], "ident", self.pos(tok))
            raise self.unexpected(operand, "a number, inf or nan after '-'")
        raise self.unexpected(tok, f"a value for field '{key}'",
                              fix='write a number, a "quoted string" or an identifier')

    def number(self, tok: _Token, start: _Token, negative: bool) -> Leaf:
        """Convert the number token ``tok`` (signed if ``negative``) to a Leaf placed at ``start``."""
        text = tok[1]
        pos = self.pos(start)
        if _HEX_NUMBER.match(text):
            value = int(text, 16)
            return Leaf(-value if negative else value, "int", pos)
        if len(text) > 1 and text[0] == "0" and text[1].isdigit():
            if not _OCTAL_NUMBER.match(text):
                raise self.error(tok, f"invalid number '{_shorten(text)}': a leading zero makes an octal "
                                      "integer (digits 0-7 only)",
                                 fix="remove the leading zero")
            value = int(text, 8)
            return Leaf(-value if negative else value, "int", pos)
        match = _DECIMAL_NUMBER.match(text)
        if match is None:
            raise self.error(tok, f"invalid number '{_shorten(text)}'", fix=_number_fix(text))
        if match.lastindex is None:
            if len(text) > _MAX_DIGITS:
                raise self.error(tok, f"integer literal of {len(text)} digits is too long",
                                 fix="protobuf integers have at most 20 digits")
            value = int(text)
            return Leaf(-value if negative else value, "int", pos)
        value = float(text[:-1] if match.group(4) else text)
        return Leaf(-value if negative else value, "float", pos)

    def string(self) -> Leaf:
        """Parse one or more adjacent string literals into one Leaf of kind ``"str"``."""
        first = self.tok
        parts = []
        while self.tok[0] == "string":
            parts.append(self.literal(self.advance()))
        if all(isinstance(part, str) for part in parts):
            value = "".join(parts)
        else:
            data = b"".join(p if isinstance(p, bytes) else p.encode("utf-8", "surrogatepass") for p in parts)
            try:
                value = data.decode("utf-8")
            except UnicodeDecodeError:
                value = data
        return Leaf(value, "str", self.pos(first))

    def literal(self, tok: _Token) -> str | bytes:
        """The content of one quoted literal: its text when it has no escapes, else its bytes."""
        body = tok[1][1:-1]
        if "\\" not in body:
            return body
        out = bytearray()
        last = 0
        for match in _ESCAPE.finditer(body):
            out += body[last:match.start()].encode("utf-8", "surrogatepass")
            out += self.escape(match, tok)
            last = match.end()
        out += body[last:].encode("utf-8", "surrogatepass")
        return bytes(out)

    def escape(self, match: re.Match, tok: _Token) -> bytes:
        """The bytes one escape sequence stands for."""
        high, low, octal, hex2, hex4, hex8, simple, bad = match.groups()
        if high is not None:
            code = 0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00)
            return chr(code).encode("utf-8")
        if octal is not None:
            value = int(octal, 8)
            if value > 0o377:
                raise self.string_error(tok, match, f"octal escape '\\{octal}' is larger than \\377",
                                        fix="use \\ooo escapes up to \\377 for bytes")
            return bytes((value,))
        if hex2 is not None:
            return bytes((int(hex2, 16),))
        if hex4 is not None:
            return chr(int(hex4, 16)).encode("utf-8", "surrogatepass")
        if hex8 is not None:
            code = int(hex8, 16)
            if code > 0x10FFFF:
                raise self.string_error(tok, match, f"'\\U{hex8}' is beyond the last code point U+10FFFF")
            return chr(code).encode("utf-8", "surrogatepass")
        if simple is not None:
            return _SIMPLE_ESCAPES[simple]
        shown = "\\" + bad if bad and bad.isprintable() else "\\"
        raise self.string_error(tok, match, f"invalid escape sequence '{shown}' in string",
                                fix="write '\\\\' for a backslash")

    def string_error(self, tok: _Token, match: re.Match, message: str, fix: str | None = None) -> SpecError:
        """An error located at the escape ``match`` inside the literal ``tok``."""
        return SpecError(message, file=self.file, line=tok[2], column=tok[3] + 1 + match.start(), fix=fix)


def _number_fix(text: str) -> str:
    """A hint for a malformed number token."""
    if text.count(".") > 1:
        return "a number has at most one decimal point"
    if re.match(r"0[xX]", text):
        return "'0x' must be followed by hexadecimal digits only"
    if re.search(r"[eE][+-]?\Z", text):
        return "'e' must be followed by an exponent, as in 1e-5"
    return "put a space between a number and the name after it"


# --------------------------------------------------------------------------------------------------
# writing


def format(node: Node, indent: int = 2) -> str:
    """Write ``node`` as prototxt: one ``key: value`` or ``key {`` ... ``}`` per line, in entry order.

    Strings are double-quoted with C escapes (printable non-ASCII characters kept as they are), enum
    identifiers and ``true``/``false`` bare, floats as Python's shortest round-trip ``repr`` (``inf``,
    ``-inf``, ``nan`` as identifiers), ints in decimal.  Every line ends with a newline.

    Raises:
        SpecError: for a key that is not an identifier, a leaf that cannot be written, or nesting
            deeper than :data:`MAX_DEPTH`.
    """
    lines: list[str] = []
    _write_node(node, 0, " " * indent, lines)
    return "".join(line + "\n" for line in lines)


def _write_node(node: Node, depth: int, unit: str, lines: list[str]) -> None:
    if depth > MAX_DEPTH:
        raise SpecError(f"cannot write blocks nested more than {MAX_DEPTH} deep", **node.pos.where())
    prefix = unit * depth
    for entry in node.entries:
        key = entry.key
        if not isinstance(key, str) or not _IDENT_RE.match(key):
            raise SpecError(f"cannot write the field name {key!r}: it is not an identifier",
                            **entry.pos.where(), fix="use letters, digits and '_' only")
        value = entry.value
        if isinstance(value, Node):
            lines.append(f"{prefix}{key} {{")
            _write_node(value, depth + 1, unit, lines)
            lines.append(prefix + "}")
        else:
            lines.append(f"{prefix}{key}: {_leaf_text(value, key)}")


def _leaf_text(leaf: Leaf, key: str) -> str:
    """The text of one scalar value."""
    kind, value = leaf.kind, leaf.value
    if kind == "str" and isinstance(value, (str, bytes)):
        return _quote(value)
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > _MAX_INT_BITS:
            raise SpecError(f"cannot write field '{key}': an integer of {value.bit_length()} bits is too large",
                            **leaf.pos.where())
        return str(value)
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return _float_text(float(value))
    if kind == "bool" and isinstance(value, bool):
        return "true" if value else "false"
    if kind == "ident" and isinstance(value, str) and _is_ident_value(value):
        return value
    raise SpecError(f"cannot write field '{key}': {value!r} is not a valid {kind!r} value",
                    **leaf.pos.where())


def _is_ident_value(text: str) -> bool:
    if text.startswith("-"):
        return text[1:].lower() in _SPECIAL_FLOATS
    return bool(_IDENT_RE.match(text))


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


_STRING_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\"}
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\\x7f-\U0010ffff]')


def _quote(value: str | bytes) -> str:
    """``value`` as a double-quoted literal with C escapes."""
    if isinstance(value, bytes):
        return '"' + "".join(_byte_text(b) for b in value) + '"'
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, value) + '"'


def _escape_char(match: re.Match) -> str:
    char = match.group()
    named = _STRING_ESCAPES.get(char)
    if named is not None:
        return named
    if char > "\x7f" and char.isprintable():
        return char
    return "".join(f"\\{b:03o}" for b in char.encode("utf-8", "surrogatepass"))


def _byte_text(byte: int) -> str:
    char = chr(byte)
    named = _STRING_ESCAPES.get(char)
    if named is not None:
        return named
    if 0x20 <= byte < 0x7F:
        return char
    return f"\\{byte:03o}"

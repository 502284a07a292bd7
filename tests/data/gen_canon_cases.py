#!/usr/bin/python3
"""Generate tests/data/canon_cases.tsv: JSON texts and fedmsg's canonical JSON.

Each line is "<hex of the input's UTF-8 bytes>\t<canonical text>", where the
canonical text is what fedmsg.encoding.dumps() makes of json.loads(input):
json.dumps(value, sort_keys=True, separators=(',', ':')) with the other
options at their defaults (fedmsg-protocol.md, section 3).  The canonical
text is pure ASCII without tabs or newlines, so it needs no quoting; the
input is hex because it may hold any byte.  Lines starting with "#" are
comments.  tests/unit/test_canon.c parses every input with the C parser,
re-emits it and compares.

The inputs are:
  1. hand-written spellings of the cases of fedmsg-protocol.md 3.1 and 3.3;
  2. the wire bodies of tests/data/vectors/signed.jsonl (up to 16 KiB each);
  3. random documents (fixed seed) written with random whitespace, escape
     styles, number spellings and duplicate keys.

The output is deterministic: re-running reproduces the file byte for byte.

Run with Debian's Python 3:  /usr/bin/python3 tests/data/gen_canon_cases.py [OUT]
"""

import json
import math
import os
import random
import struct
import sys

SEED = 20261128
HERE = os.path.dirname(os.path.abspath(__file__))


def canonical(text):
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


HAND = [
    # numbers (3.3): int vs float, spellings, non-finite
    '[-0,0,-0.0,0.0,1E5,1e5,1.50,0.1e1,1.0000000000000000001,1e400,-1e400,'
    '1e-400,-1e-400]',
    '[NaN,Infinity,-Infinity]',
    '{"i":1700000000,"f":1700000000.0,"e":17e8}',
    '[18446744073709551615,18446744073709551616,-9223372036854775808,'
    '-9223372036854775809,340282366920938463463374607431768211456]',
    '[0.1,1e-07,1e+22,1e16,1e15,9999999999999998.0,0.0001,0.00001,3.0,'
    '1234567.891,0.30000000000000004,0.3333333333333333,5e-324,'
    '1.7976931348623157e308,123456789012345678.0,1180591620717411303424.0,'
    '1e100]',
    '[1E+2,1e-2,2.5E-3,0E0,-0E-0,1.23456789012345678901234567890e-5]',
    # strings (3.1): escapes and code point classes
    r'"\"\\\/\b\f\n\r\t"',
    r'"\u0000\u0001\u001f\u0020\u007e\u007f\u0080\u009f\u00a0\u00ff"',
    r'"\u0100\u07ff\u0800\u0fff\ud7ff\ue000\ufeff\ufffe\uffff"',
    r'"\uD83D\uDE00\ud800\udc00\udbff\udfff"',
    '"raw: \u00e9\u20ac\U0001f600\u007f/\x7f"',
    r'"lone: \ud800 \udc00 \ud800\u0041 \udc00\ud800 \ud83d"',
    r'"e\u0301 vs \u00e9"',
    '"/ is not escaped, \\/ is read as /"',
    '"\\u00E9\\u00e9\\u00C9"',
    # objects: order, duplicates, nesting, NUL in keys
    '{"b":1,"a":2,"b":3}',
    '{"a\\u0000b":1,"a":2,"a\\u0000":3,"":4}',
    '{"\\ud83d\\ude00":1,"\\ue000":2,"\\uffff":3,"z":4,"\\u00e9":5}',
    '{"\\udc00":1,"\\ud800":2,"\\ue000":3,"\\ud7ff":4}',
    '{"a":1,"_":2,"B":3,"10":4,"9":5,"ab":6,"a ":7}',
    '{"x":{"b":1,"a":{"d":1,"c":2}},"w":[{"z":1,"y":2}],"v":[3,1,2]}',
    '{"signature":{"signature":1,"certificate":2},"certificate":[]}',
    # whitespace
    ' \t\n\r{ "a" :\n[ 1 ,\t2 ]\r, "b" : { } } \n',
    '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
    '[true,false,null,"",[],{},[[]],[{}],{"":{}}]',
    '"only a string"', '1', '-1.5', 'null',
]


class Writer:
    """Writes a Python value as JSON with random (valid) spellings."""

    def __init__(self, rng):
        self.rng = rng

    def ws(self):
        r = self.rng.random()
        if r < 0.7:
            return ""
        return "".join(self.rng.choice(" \t\n\r")
                       for _ in range(self.rng.randint(1, 3)))

    def string(self, s):
        out = ['"']
        i = 0
        while i < len(s):
            c = s[i]
            o = ord(c)
            r = self.rng.random()
            short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f",
                     "\n": "\\n", "\r": "\\r", "\t": "\\t"}
            if c in short and r < 0.6:
                out.append(short[c])
            elif c == "/" and r < 0.5:
                out.append("\\/")
            elif o >= 0x10000:
                if r < 0.5:
                    out.append(c)
                else:
                    v = o - 0x10000
                    out.append(self.hexesc(0xD800 | (v >> 10)))
                    out.append(self.hexesc(0xDC00 | (v & 0x3FF)))
            elif (o < 0x20 or c in '"\\' or 0xD800 <= o <= 0xDFFF
                  or r < 0.25):
                out.append(self.hexesc(o))
            else:
                out.append(c)
            i += 1
        out.append('"')
        return "".join(out)

    def hexesc(self, o):
        h = "%04x" % o
        if self.rng.random() < 0.3:
            h = h.upper()
        return "\\u" + h

    def number(self, x):
        rng = self.rng
        if isinstance(x, bool):
            return "true" if x else "false"
        if isinstance(x, int):
            return str(x)
        if math.isnan(x):
            return "NaN"
        if math.isinf(x):
            return "Infinity" if x > 0 else "-Infinity"
        r = rng.random()
        if r < 0.4:
            s = repr(x)
        elif r < 0.6:
            s = "%.17e" % x
        elif r < 0.7:
            s = "%.25e" % x
        elif r < 0.85:
            s = repr(x)
            if "e" not in s and "." in s:
                s += "0" * rng.randint(1, 3)
        else:
            s = ("%.20e" % x).replace("e", rng.choice("eE"))
        if rng.random() < 0.3:
            s = s.replace("e", "E")
        return s

    def value(self, v):
        if v is None:
            return "null"
        if isinstance(v, (bool, int, float)):
            return self.number(v)
        if isinstance(v, str):
            return self.string(v)
        if isinstance(v, list) and not isinstance(v, Obj):
            return ("[" + self.ws() + ("," + self.ws()).join(
                self.value(x) + self.ws() for x in v) + "]")
        # an object: a list of (key, value) pairs, duplicates allowed
        return ("{" + self.ws() + ("," + self.ws()).join(
            self.string(k) + self.ws() + ":" + self.ws() + self.value(x)
            + self.ws() for k, x in v) + "}")


class Obj(list):
    """Key/value pairs of an object in writing order (may repeat keys)."""


def rand_char(rng):
    r = rng.random()
    if r < 0.45:
        return chr(rng.randint(0x20, 0x7E))
    if r < 0.55:
        return chr(rng.randint(0, 0x1F))
    if r < 0.58:
        return "\x7f"
    if r < 0.70:
        return chr(rng.randint(0x80, 0x7FF))
    if r < 0.80:
        return chr(rng.choice([rng.randint(0x800, 0xD7FF),
                               rng.randint(0xE000, 0xFFFF)]))
    if r < 0.90:
        return chr(rng.randint(0x10000, 0x10FFFF))
    if r < 0.95:
        return chr(rng.randint(0xD800, 0xDFFF))  # lone surrogate
    return rng.choice('"\\/\b\f\n\r\t\0')


def rand_str(rng, maxlen=12):
    return "".join(rand_char(rng) for _ in range(rng.randint(0, maxlen)))


def rand_float(rng):
    r = rng.random()
    if r < 0.3:
        return round(rng.uniform(-1e6, 1e6), rng.randint(0, 8))
    if r < 0.6:
        while True:
            b = rng.getrandbits(64)
            if (b >> 52) & 0x7FF != 0x7FF:
                return struct.unpack("<d", struct.pack("<Q", b))[0]
    if r < 0.8:
        return float("%de%d" % (rng.randint(1, 99999), rng.randint(-330, 310)))
    if r < 0.9:
        return rng.choice([0.0, -0.0, 1.0, -1.0, 0.5, 1e16, 1e15, 1e-4,
                           1e-5, 5e-324, 1.7976931348623157e308])
    return rng.choice([math.nan, math.inf, -math.inf])


def rand_value(rng, depth=0):
    r = rng.random()
    if depth > 3 or r < 0.45:
        k = rng.random()
        if k < 0.1:
            return rng.choice([None, True, False])
        if k < 0.35:
            return rng.choice([rng.randint(-1000, 1000),
                               rng.randint(-2 ** 70, 2 ** 70),
                               rng.randint(-10 ** 60, 10 ** 60), 0])
        if k < 0.6:
            return rand_float(rng)
        return rand_str(rng)
    if r < 0.7:
        return [rand_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    o = Obj()
    keys = []
    for _ in range(rng.randint(0, 6)):
        if keys and rng.random() < 0.15:
            k = rng.choice(keys)  # a duplicate key
        else:
            k = rand_str(rng, 6)
            keys.append(k)
        o.append((k, rand_value(rng, depth + 1)))
    return o


def vector_bodies():
    path = os.path.join(HERE, "vectors", "signed.jsonl")
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            body = rec["wire_body"]
            if len(body.encode("utf-8")) <= 16384:
                out.append((rec["name"], body))
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        HERE, "canon_cases.tsv")
    rng = random.Random(SEED)
    w = Writer(rng)
    rows = []
    rows.append("# generated by tests/data/gen_canon_cases.py; do not edit")
    rows.append("# hand-written cases")
    for text in HAND:
        rows.append((text, canonical(text)))
    rows.append("# wire bodies of tests/data/vectors/signed.jsonl")
    for name, body in vector_bodies():
        rows.append("# vector " + name)
        rows.append((body, canonical(body)))
    rows.append("# random documents, seed %d" % SEED)
    for _ in range(300):
        v = rand_value(rng)
        if rng.random() < 0.7:  # mostly objects, like envelopes
            o = Obj()
            o.append(("k", v))
            v = o
        text = w.ws() + w.value(v) + w.ws()
        rows.append((text, canonical(text)))
    n = 0
    with open(out, "w", encoding="ascii", newline="\n") as f:
        for row in rows:
            if isinstance(row, str):
                f.write(row + "\n")
                continue
            text, canon = row
            assert "\t" not in canon and "\n" not in canon
            f.write(text.encode("utf-8").hex() + "\t" + canon + "\n")
            n += 1
    print("%s: %d cases" % (out, n))


if __name__ == "__main__":
    main()

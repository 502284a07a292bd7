#!/usr/bin/python3
"""Generate tests/data/floats.tsv: doubles and their Python repr().

Each line is "<16 lowercase hex digits of the IEEE-754 bits>\t<repr(x)>",
which is how fedmsg's canonical JSON writes a float (fedmsg-protocol.md,
section 3.2).  The unit tests check the C float formatter against every
line.  Only finite values are listed; inf, -inf and nan are tested
separately.  The output is deterministic (fixed seed, no set ordering), so
re-running this script reproduces the checked-in file byte for byte.

Run with Debian's Python 3:  /usr/bin/python3 tests/data/gen_floats.py [OUT]
"""

import math
import os
import random
import struct
import sys

SEED = 20261127


def bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def from_bits(b):
    return struct.unpack("<d", struct.pack("<Q", b))[0]


class Table:
    def __init__(self):
        self.seen = set()
        self.rows = []

    def add(self, x, both_signs=False):
        xs = (x, -x) if both_signs else (x,)
        for v in xs:
            if not math.isfinite(v):
                continue
            b = bits(v)
            if b not in self.seen:
                self.seen.add(b)
                self.rows.append(b)

    def neighbours(self, x, k=1, both_signs=False):
        """x and the k nearest doubles on each side."""
        self.add(x, both_signs)
        lo = hi = x
        for _ in range(k):
            lo = math.nextafter(lo, -math.inf)
            hi = math.nextafter(hi, math.inf)
            self.add(lo, both_signs)
            self.add(hi, both_signs)


def build():
    rng = random.Random(SEED)
    t = Table()

    # 1. The reference values of fedmsg-protocol.md section 3.2.
    for x in (0.1, 1e-07, 1e+22, 1e16, 1e15, 9999999999999998.0, 0.0001,
              0.00001, 3.0, -0.0, 0.0, 1234567.891, 0.1 + 0.2, 1 / 3,
              5e-324, 1.7976931348623157e308, 123456789012345678.0,
              2.0 ** 70, 1e100):
        t.add(x)

    # 2. Powers of ten 1e-330 .. 1e310 (0.0 and inf drop out) and their
    #    neighbours, both signs.
    for e in range(-330, 311):
        t.neighbours(float("1e%d" % e), k=1, both_signs=True)

    # 3. Where repr switches notation: around 1e16 and 1e-4 (and the other
    #    side of each: 1e15, 1e-5), many ulps either way.
    for x in (1e16, 1e-4, 1e15, 1e-5, 9999999999999998.0, 1e17, 1e-3):
        t.neighbours(x, k=40, both_signs=True)

    # 4. Integers as floats: small ones, powers of two and their
    #    neighbours, and random ones up to and beyond 2**53.
    for n in range(0, 1001):
        t.add(float(n), both_signs=True)
    for p in range(0, 1024):
        t.neighbours(2.0 ** p, k=1)
    for p in range(1, 64):
        t.add(float(2 ** p - 1), both_signs=True)
        t.add(float(2 ** p + 1), both_signs=True)
    for _ in range(1000):
        t.add(float(rng.getrandbits(rng.randint(1, 80))), both_signs=True)

    # 5. Subnormals: the smallest ones, the largest ones, the boundary with
    #    the normals, and random bit patterns.
    for m in range(1, 65):
        t.add(from_bits(m), both_signs=True)
    for m in range(1, 33):
        t.add(from_bits((1 << 52) - m), both_signs=True)
    t.neighbours(2.2250738585072014e-308, k=8, both_signs=True)
    for _ in range(1000):
        t.add(from_bits(rng.getrandbits(52) or 1), both_signs=True)

    # 6. Random "short decimal" values, as people write them: round(x, k),
    #    and <few digits>e<exp>.
    for _ in range(2000):
        k = rng.randint(0, 12)
        scale = 10.0 ** rng.randint(-6, 12)
        t.add(round(rng.uniform(-1, 1) * scale, k))
    for _ in range(2000):
        digits = rng.randint(1, 17)
        m = rng.randrange(10 ** (digits - 1), 10 ** digits)
        e = rng.randint(-340, 310)
        t.add(float("%de%d" % (m, e)), both_signs=(m % 2 == 0))

    # 7. Random bit patterns over the whole finite range.
    target = len(t.rows) + 3500
    while len(t.rows) < target:
        b = rng.getrandbits(64)
        if (b >> 52) & 0x7FF != 0x7FF:
            t.add(from_bits(b))

    # 8. Every power of two 2**-1074 .. 2**1023, both signs, with its
    #    neighbours: the gap below a power of two is half the gap above, the
    #    hard case for "shortest digits, nearest to x".  Appended after the
    #    random sections so that their rows stay what they were.
    for p in range(-1074, 1024):
        t.neighbours(math.ldexp(1.0, p), k=1, both_signs=True)

    return t.rows


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here,
                                                             "floats.tsv")
    rows = build()
    with open(out, "w", encoding="ascii", newline="\n") as f:
        for b in rows:
            x = from_bits(b)
            assert float(repr(x)) == x or (x == 0 and repr(x) in
                                           ("0.0", "-0.0"))
            f.write("%016x\t%r\n" % (b, x))
    print("%s: %d values" % (out, len(rows)))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Regenerate the seed corpora of the libFuzzer targets.

tests/fuzz/corpus/fuzz_envelope/, fuzz_json/ and fuzz_json_roundtrip/ get:
  * one file per wire_body of tests/data/vectors/signed.jsonl
    (vector-<name>.json, the body frame's exact bytes);
  * hand-made edge cases (edge-<name>.json), some of them invalid on
    purpose, which exercise the parser's corners.

Files this script did not write are left alone (libFuzzer may add its own
while running with the corpus directory as output).  Deterministic.

Run with Debian's Python 3:  /usr/bin/python3 tests/fuzz/make_corpus.py
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "data", "vectors", "signed.jsonl")
TARGETS = ("fuzz_envelope", "fuzz_json", "fuzz_json_roundtrip")
JSON_TARGETS = ("fuzz_json", "fuzz_json_roundtrip")

ENVELOPE = (b'{"certificate":"QUJD\\n","crypto":"x509","i":1,"msg":{},'
            b'"msg_id":"2026-0e6f0f4a-5a4e-4e8a-9d0b-3c1a2b3c4d5e",'
            b'"signature":"QUJD\\n","timestamp":1700000000,'
            b'"topic":"org.fedoraproject.dev.test.thing","username":"u"}')

EDGES = {
    # numbers: int vs float, spellings, limits, non-finite
    "numbers": b'{"a":[-0,0,-0.0,1E5,1.50,0.1e1,1e400,-1e400,1e-400,'
               b'5e-324,1.7976931348623157e308,18446744073709551616,'
               b'-9223372036854775809,NaN,Infinity,-Infinity]}',
    "int-4300-digits": b'{"i":' + b"9" * 4300 + b'}',
    "int-4301-digits": b'{"i":-' + b"1" * 4301 + b'}',
    "floats-long": b'{"f":0.' + b"0" * 400 + b'1e400,"g":' + b"1" * 400 +
                   b'.5e-700}',
    # strings: escapes, surrogates, NUL, raw UTF-8
    "strings": b'{"s":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\\u007f'
               b'\\u00E9\\uffff\\ud83d\\ude00\\ud800\\udc00\\ud800x\\udc00'
               b'\\ud800\\ud800\\udc00","raw":"\xc3\xa9\xe2\x82\xac'
               b'\xf0\x9f\x98\x80\x7f/"}',
    "keys-order": b'{"\\ud83d\\ude00":1,"\\ue000":2,"a\\u0000b":3,"a":4,'
                  b'"a\\u0000":5,"":6,"\\udc00":7,"b":8,"b":9}',
    "invalid-utf8": b'{"topic":"\xc0\x80\xed\xa0\x80\xf5\x80\x80\x80\xe2'
                    b'\x82"}',
    "control-char": b'{"topic":"a\x01b"}',
    # structure: depth, whitespace, duplicates, trailing data
    "deep-1000": b'{"d":' + b"[" * 999 + b"]" * 999 + b'}',
    "deep-1001": b'{"d":' + b"[" * 1000 + b"]" * 1000 + b'}',
    "whitespace": b' \t\n\r{ "topic" :\t"t" ,\n"msg" : { } }\r\n ',
    "trailing": b'{"a":1} {"b":2}',
    "not-object": b'["topic","msg"]',
    "duplicates": b'{"signature":1,"signature":"QUJD","crypto":null,'
                  b'"crypto":"x509","certificate":"","certificate":"Q==="}',
    # the duplicate-key forgery's shapes: escaped, nested, in arrays
    "duplicates-escaped": b'{"m\\u0073g":{"a":1},"topic":"t","msg":{},'
                          b'"\\u0074opic":"u"}',
    "duplicates-nested": b'{"msg":{"action":"x","b":[{"k":1,"k":2}],'
                         b'"action":"y"},"topic":"t"}',
    "duplicates-surrogates": b'{"\\ud83d\\ude00":1,"\xf0\x9f\x98\x80":2,'
                             b'"\\udc00":3,"\\uDC00":4}',
    "topic-list": b'{"topic":["org.fedoraproject.dev.bodhi.update"],'
                  b'"msg":{}}',
    # envelopes: credentials, odd types, base64 corners
    "envelope": ENVELOPE,
    "envelope-nested-creds": b'{"msg":{"signature":"x","certificate":"y"},'
                             b'"signature":"QQ==\\nQUI=","certificate":'
                             b'"QUJDRA==ZZZZ","topic":"t"}',
    "envelope-odd-types": b'{"topic":7,"msg_id":null,"username":["u"],'
                          b'"crypto":{"x509":1},"i":1.5,"timestamp":"now",'
                          b'"headers":[]}',
    "envelope-nul-fields": b'{"topic":"a\\u0000b","crypto":"x509\\u0000",'
                           b'"i":-9223372036854775808,"timestamp":NaN}',
    "base64-padding": b'QUJD\nQUI=\nQQ==QUJD\n=Q===\r\n-_*!QUJDR',
}


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    n = 0
    with open(VECTORS, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            body = rec["wire_body"].encode("utf-8")
            for t in TARGETS:
                write(t, "vector-%s.json" % rec["name"], body)
            n += 1
    for name, data in sorted(EDGES.items()):
        for t in TARGETS:
            write(t, "edge-%s.json" % name, data)
    # the JSON target also gets bare scalars and arrays
    for name, data in (("scalar-string", b'"\\ud800"'),
                       ("scalar-number", b"-0.0e-0"),
                       ("scalar-literals", b"[true,false,null]"),
                       ("empty", b"")):
        for t in JSON_TARGETS:
            write(t, "edge-%s.json" % name, data)
    print("%d vectors and %d edge cases in %s" % (n, len(EDGES) + 4,
                                                  ", ".join(TARGETS)))


if __name__ == "__main__":
    main()

"""fedmsg-c's JSON parser against Python's json.loads, on every file of
the fuzz corpora (tests/fuzz/corpus/*/*).

tests/tools/json_dump (built with `make asan-tools`) prints, per file, our
verdict, whether an object held a key twice, what fm_msg_parse() says of
the bytes as a message body, and the canonical text of our parse.  For
every input:

* we accept  => Python accepts (the text decoded as UTF-8, as fedmsg does
  with a frame) and json.dumps(sort_keys=True, separators=(",", ":")) of
  Python's value is our canonical text byte for byte: the same value;
* the duplicate flag is set exactly when Python's object_pairs_hook sees
  a key twice, and fm_msg_parse() refuses an object exactly then;
* we reject => Python rejects too, except for the documented differences
  in DIFFERENCES (nesting beyond our limit).

The libFuzzer target tests/fuzz/fuzz_json_roundtrip.c checks the other
half on any input: what we accept re-serialises to text that parses back
to the same tree.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FM_BUILD, REPO

CORPORA = REPO / "tests" / "fuzz" / "corpus"
JSON_DUMP = FM_BUILD / "asan" / "tests" / "tools" / "json_dump"

# Inputs Python accepts and we reject on purpose, with the reason; a
# message that needs one of these could never be validated by fedmsg-c.
# (Python's own nesting limit is its recursion limit, raised here so that
# it does not depend on how deep pytest's stack is.)
DIFFERENCES = {
    "%s/edge-deep-1001.json" % t:
        "nesting deeper than max_json_depth (1000 levels, README Limits)"
    for t in ("fuzz_envelope", "fuzz_json", "fuzz_json_roundtrip")
}


def corpus_files():
    files = sorted(p for p in CORPORA.glob("*/*") if p.is_file())
    assert len(files) > 150, "fuzz corpora missing under %s" % CORPORA
    return files


def deep(f, *args, **kw):
    """f(...) with a recursion limit well above 1000 levels of JSON."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))
    try:
        return f(*args, **kw)
    finally:
        sys.setrecursionlimit(limit)


def canonical(v):
    return deep(json.dumps, v, sort_keys=True, separators=(",", ":"))


def python_parse(data):
    """(value, saw a duplicate key) or raises ValueError/RecursionError."""
    dup = []

    def hook(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            dup.append(keys)
        return dict(pairs)
    text = data.decode("utf-8")         # UnicodeDecodeError is a ValueError
    return deep(json.loads, text, object_pairs_hook=hook), bool(dup)


def ours(files):
    if not (JSON_DUMP.is_file() and os.access(JSON_DUMP, os.X_OK)):
        pytest.fail("%s not found: build it with `make asan-tools` (or set "
                    "FM_BUILD)" % JSON_DUMP, pytrace=False)
    p = subprocess.run([str(JSON_DUMP)] + [str(f) for f in files],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    assert b"Sanitizer" not in p.stderr, p.stderr.decode()
    lines = p.stdout.decode("ascii").split("\n")
    assert lines[-1] == ""
    assert len(lines) - 1 == len(files)
    return lines[:-1]


def test_parser_agrees_with_python_on_the_corpora():
    files = corpus_files()
    results = ours(files)
    seen = {"accepted": 0, "rejected": 0, "duplicates": 0}
    for path, line in zip(files, results):
        name = "%s/%s" % (path.parent.name, path.name)
        data = path.read_bytes()
        try:
            value, dup = python_parse(data)
            py_ok, why = True, ""
        except (ValueError, RecursionError) as e:
            py_ok, why = False, "%s: %s" % (type(e).__name__, e)
        if line.startswith("error "):
            seen["rejected"] += 1
            if py_ok:
                assert name in DIFFERENCES, \
                    "%s: we reject (%s), Python accepts" % (name, line[6:])
            continue
        verdict, flag, env, canon = line.split(" ", 3)
        assert verdict == "ok", line
        seen["accepted"] += 1
        assert py_ok, "%s: we accept, Python rejects (%s)" % (name, why)
        assert canon == canonical(value), \
            "%s: we read another value than Python" % name
        assert flag == ("1" if dup else "0"), \
            "%s: duplicate flag %s, Python saw %s" % (name, flag, dup)
        want = "other" if not isinstance(value, dict) else \
            "refused" if dup else "envelope"
        assert env == want, "%s: fm_msg_parse %s, want %s" % (name, env,
                                                               want)
        seen["duplicates"] += dup
    # the corpora exercise all three outcomes
    assert seen["accepted"] > 100 and seen["rejected"] > 10 and \
        seen["duplicates"] >= 5, seen


def test_differences_are_still_needed():
    """An entry in DIFFERENCES that Python rejects too is stale."""
    for name in DIFFERENCES:
        data = (CORPORA / name).read_bytes()
        python_parse(data)      # raises if Python rejects it

#!/usr/bin/env python3
"""Check vm --json output against the schema table in docs/json.md.

    json-check.py DOC FILE [VERB...]
    json-check.py --same DOC OTHER

FILE holds what vm printed on stdout: every line must be one JSON object,
{"verb", "args", "status", "result"[, "error"]}, and every field of each
result must be one that DOC's table (between <!-- json-schema --> and
<!-- /json-schema -->) documents for that verb, of the type it gives;
fields marked in its fourth column are there whenever the step succeeded
(status 0, or 3 from @status) and was not a --dry-run; a field whose
meaning is only a list of `values` has one of them.  Only the last line
may be a failed step (the chain stops there).  With VERBs, the lines must
be those steps, in that order.  Exit 0, or 1 with one line saying what is
wrong.
"""
import json
import re
import sys

TYPES = {
    "string": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "[string]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "[object]": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
    "null": lambda v: v is None,
}


def schema(readme):
    text = open(readme, encoding="utf-8").read()
    m = re.search(r"<!-- json-schema -->(.*?)<!-- /json-schema -->", text, re.S)
    if not m:
        sys.exit(f"{readme}: no json-schema table")
    rows = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        cells[:3] = [c.strip("`") for c in cells[:3]]
        if len(cells) < 4 or not cells[0] or set(cells[0]) <= set("-: "):
            continue
        verb, field, typ, need = cells[:4]
        if verb in ("verb", "глагол"):
            continue
        for t in typ.split(" or "):
            if t not in TYPES:
                sys.exit(f"{readme}: {verb} {field}: unknown type {t}")
        rows.setdefault(verb, {})[field] = (typ.split(" or "), need == "✓",
                                            values(cells[4] if len(cells) > 4 else ""))
    return rows


def values(meaning):
    """The values a meaning such as "`a`, `b` (why) or `c`" allows, or None."""
    m = re.sub(r"\s*\([^)]*\)", "", meaning.strip())
    parts = re.split(r", | or | или ", m)
    if len(parts) < 2 or not all(re.fullmatch(r"`[a-z_]+`", p) for p in parts):
        return None
    return frozenset(p.strip("`") for p in parts)


def fail(msg):
    print(f"json-check: {msg}")
    sys.exit(1)


def check_obj(where, obj, fields, prefix, need_all):
    for k, v in obj.items():
        name = prefix + k
        if name not in fields:
            fail(f"{where}: field {name} is not in docs/json.md's table")
        types, _, allowed = fields[name]
        if not any(TYPES[t](v) for t in types):
            fail(f"{where}: field {name} = {v!r} is not {' or '.join(types)}")
        if allowed is not None and v not in allowed:
            fail(f"{where}: field {name} = {v!r} is none of {sorted(allowed)}")
        # an object whose fields the table does not list is opaque
        # (@monitor's reply is QEMU's)
        if isinstance(v, dict) and any(f.startswith(name + ".") for f in fields):
            check_obj(where, v, fields, name + ".", need_all)
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for x in v:
                check_obj(where, x, fields, name + "[].", need_all)
    if need_all:
        for name, (_, need, _) in fields.items():
            rest = name[len(prefix):]
            if need and name.startswith(prefix) and "." not in rest \
                    and "[]" not in rest and rest not in obj:
                fail(f"{where}: field {name} is missing")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--same":
        # the two documents give the same fields and types
        a, b = schema(sys.argv[2]), schema(sys.argv[3])
        if a != b:
            fail(f"{sys.argv[2]} and {sys.argv[3]} have different json-schema tables")
        return
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rows = schema(sys.argv[1])
    env = rows.get("(every step)", {})
    common = rows.get("(every verb)", {})
    data = open(sys.argv[2], "rb").read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(f"not UTF-8: {e}")
    # JSON Lines end in \n; json-c leaves U+2028 and U+0085 as they are,
    # which str.splitlines() would take for line ends
    if not text:
        fail("no output")
    if not text.endswith("\n"):
        fail("the last line does not end in a newline")
    lines = text[:-1].split("\n")
    want = sys.argv[3:]
    if want and len(lines) != len(want):
        fail(f"{len(lines)} lines for {len(want)} steps: {text!r}")
    for i, line in enumerate(lines):
        where = f"line {i + 1}"
        try:
            step = json.loads(line)
        except ValueError as e:
            fail(f"{where}: not JSON ({e}): {line!r}")
        if not isinstance(step, dict):
            fail(f"{where}: not an object")
        # the result is checked below, against the verb's own rows
        check_obj(where, {k: ({} if k == "result" else v)
                          for k, v in step.items()}, env, "", True)
        verb = step["verb"]
        if want and verb != want[i]:
            fail(f"{where}: verb {verb}, wanted {want[i]}")
        if "result" not in step:
            fail(f"{where}: no result")
        answer = verb == "status" and step["status"] == 3
        ok = step["status"] == 0 or answer
        if ok == ("error" in step):
            fail(f"{where}: status {step['status']} with error {step.get('error')!r}")
        if step["status"] != 0 and i != len(lines) - 1:
            fail(f"{where}: a chain goes on after a step with status {step['status']}")
        if verb not in rows:
            fail(f"{where}: verb {verb} has no rows in docs/json.md's table")
        fields = dict(common)
        fields.update(rows[verb])
        res = step["result"]
        if not isinstance(res, dict):
            fail(f"{where}: result is not an object")
        check_obj(f"{where} (@{verb})", res, fields, "",
                  ok and not res.get("dry_run"))


main()

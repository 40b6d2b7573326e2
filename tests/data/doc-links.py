"""Every relative link of README.md, README.ru.md and docs/*.md resolves:
the file is there and, for FILE#ANCHOR, FILE has a heading with that
anchor (GitHub's rule: lower case, punctuation but '-' and '_' dropped,
spaces to '-').

    doc-links.py TOP
"""
import os
import re
import sys

top = sys.argv[1]
files = ["README.md", "README.ru.md"] + sorted(
    "docs/" + f for f in os.listdir(os.path.join(top, "docs")) if f.endswith(".md"))


def anchors(path):
    out = set()
    text = open(path, encoding="utf-8").read()
    for m in re.finditer(r"^#+ (.*)$", text, re.M):
        a = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
        out.add(a.replace(" ", "-"))
    return out


bad = []
for f in files:
    text = open(os.path.join(top, f), encoding="utf-8").read()
    # code is not looked into
    text = re.sub(r"`[^`\n]*`", "", text)
    for m in re.finditer(r"\]\(([^)\s]+)\)", text):
        link = m.group(1)
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
        full = os.path.join(top, target)
        if not os.path.exists(full):
            bad.append("%s: %s: no such file" % (f, link))
        elif anchor and target.endswith(".md") and anchor not in anchors(full):
            bad.append("%s: %s: no such heading" % (f, link))
print("\n".join(bad) or "%d files, every link resolves" % len(files))
sys.exit(1 if bad else 0)

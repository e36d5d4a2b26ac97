#!/usr/bin/env python3
"""examples.py OUTDIR FILE... — the examples of man pages and of README.md,
one shell script per example, for tests/cli/examples.sh.

A man page's examples are the .RS/.RE blocks of its EXAMPLES section, with
the roff escapes undone; a README's are its ``` blocks, except those tagged
```text.  Each example is
written as OUTDIR/NNN.sh, with OUTDIR/NNN.name (FILE and example number) and
OUTDIR/NNN.mode: "run" (must exit 0), "long" (hours of work as written: must
exit 0 or still be running, without an error, at a time limit) or "ci" (the
quick start, which CI itself runs).  The mode is set by a comment in the
example: roff `.\\" test: long`, or `<!-- test: long -->` on the line before a
README block.  The variables a page's earlier examples set (lines that start
NAME=) are set again before its later ones, as for a reader following the
page in one shell.
"""
import os
import re
import sys

ROFF = [(r"\e", "\\"), (r"\-", "-"), (r"\(aq", "'"), (r"\(dq", '"'), (r"\&", "")]


def unroff(line):
    out, i = "", 0
    while i < len(line):
        for esc, text in ROFF:
            if line.startswith(esc, i):
                out += text
                i += len(esc)
                break
        else:
            out += line[i]
            i += 1
    return out


def man_examples(text):
    """(lines, mode) of each .RS/.RE block of the EXAMPLES section."""
    section, block, mode = None, None, "run"
    for line in text.splitlines():
        if line.startswith(".SH "):
            section = line[4:].strip().strip('"')
            continue
        if section != "EXAMPLES":
            continue
        if line.startswith(".RS"):
            block, mode = [], "run"
        elif line.startswith(".RE") and block is not None:
            yield block, mode
            block = None
        elif block is not None:
            m = re.match(r'\.\\"\s*test:\s*(\w+)', line)
            if m:
                mode = m.group(1)
            elif not line.startswith((".br", ".nf", ".fi", '.\\"')):
                block.append(unroff(line))


def readme_examples(text):
    block, mode, pending = None, "run", "run"
    for line in text.splitlines():
        if block is None:
            m = re.match(r"<!--\s*test:\s*(\w+)\s*-->", line.strip())
            if m:
                pending = m.group(1)
            elif line.startswith("```"):
                # a block tagged text (a drawing, a listing) is no example
                block, mode, pending = [], "text" if line[3:].strip() == "text" else pending, "run"
            elif line.strip():
                pending = "run"
        elif line.startswith("```"):
            if mode != "text":
                yield block, mode
            block = None
        else:
            block.append(line)


def logical_lines(lines):
    """Lines with their backslash-newline continuations joined."""
    joined = ""
    for line in lines:
        if line.endswith("\\"):
            joined += line[:-1]
        else:
            yield joined + line
            joined = ""
    if joined:
        yield joined


def main():
    out, files = sys.argv[1], sys.argv[2:]
    os.makedirs(out, exist_ok=True)
    n = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        blocks = readme_examples(text) if path.endswith(".md") else man_examples(text)
        assigned = []
        for k, (lines, mode) in enumerate(blocks, 1):
            if mode not in ("run", "long", "ci"):
                sys.exit(f"{path}: example {k}: unknown test mode '{mode}'")
            n += 1
            with open(f"{out}/{n:03d}.sh", "w") as f:
                f.write("\n".join(assigned + lines) + "\n")
            with open(f"{out}/{n:03d}.name", "w") as f:
                f.write(f"{os.path.basename(path)} example {k}\n")
            with open(f"{out}/{n:03d}.mode", "w") as f:
                f.write(mode + "\n")
            for line in logical_lines(lines):
                m = re.match(r"([A-Z][A-Z0-9_]*=[^;]*)", line)
                if m:
                    assigned.append(m.group(1))
    if n == 0:
        sys.exit("no examples found")


main()

"""The survey article's worked numbers, computed live: runs docs/tutorial.md.

    python examples/tutorial_article.py            # run every code block, print its output
    python examples/tutorial_article.py --check    # also compare with the output the doc shows
    python examples/tutorial_article.py --update   # rewrite the doc's output blocks

The tutorial's ```python blocks run in order in one namespace (they use cconv.analysis and
cconv.decompose only through the public API); the ```text block after each one is the output
it printed. --check compares token by token, numbers to 6 significant digits and values below
1e-9 (rounding residues such as 3e-16, which depend on the BLAS and the SIMD path) as equal;
it exits with status 1 on a mismatch.
"""
import contextlib
import io
import math
import os
import re
import sys

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs", "tutorial.md")
BLOCK = re.compile(r"```python\n(.*?)```\n(?:\n```text\n(.*?)```\n)?", re.S)
NUMBER = re.compile(r"[-+]?(?:\d[\d,_]*\.?\d*|\.\d+)(?:e[-+]?\d+)?", re.I)


def _tokens(text):
    """Numbers (as floats) and the text between them."""
    out, pos = [], 0
    for m in NUMBER.finditer(text):
        out.append(text[pos:m.start()])
        try:
            out.append(float(m.group().replace(",", "").replace("_", "")))
        except ValueError:
            out.append(m.group())
        pos = m.end()
    out.append(text[pos:])
    return out


def same_output(shown, printed):
    a, b = _tokens(shown), _tokens(printed)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, float) and isinstance(y, float):
            if not (abs(x) < 1e-9 and abs(y) < 1e-9) and not math.isclose(x, y, rel_tol=1e-6):
                return False
        elif x != y:
            return False
    return True


def run(path=DOC, check=False, update=False, echo=True):
    """Runs the tutorial; returns the number of blocks whose output differs from the doc."""
    with open(path) as f:
        src = f.read()
    ns = {"__name__": "__tutorial__"}
    pieces, pos, mismatches = [], 0, 0
    for m in BLOCK.finditer(src):
        code, shown = m.group(1), m.group(2)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(code, path, "exec"), ns)
        printed = buf.getvalue()
        if echo:
            print(">>> " + code.rstrip().replace("\n", "\n... "))
            print(printed, end="")
        if (shown or "") != printed and not (shown and same_output(shown, printed)):
            mismatches += 1
            if check:
                print(f"--- the doc shows:\n{shown}--- the code printed:\n{printed}", file=sys.stderr)
        pieces += [src[pos:m.start()], f"```python\n{code}```\n"]
        if printed:
            pieces.append(f"\n```text\n{printed}```\n")
        pos = m.end()
    pieces.append(src[pos:])
    if update:
        with open(path, "w") as f:
            f.write("".join(pieces))
    return mismatches


if __name__ == "__main__":
    n = run(check="--check" in sys.argv, update="--update" in sys.argv)
    if "--check" in sys.argv:
        print(f"\n{'OK' if n == 0 else f'{n} block(s) differ from'} {os.path.normpath(DOC)}")
        sys.exit(1 if n else 0)

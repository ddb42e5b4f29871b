"""Size, function length and duplication of the hand-written C core (before/after a restructuring).

    python tools/c_metrics.py [CHECKOUT] [--top 15] [--limit 150]

Counts the files under src/cconv/_c/ and include/cconv.h that git tracks or would track
(templates such as *.c.in count; ignored, generated files such as those under build/ do not):
total bytes, number of files, the longest functions and how many are longer than --limit lines.

Function length, a textual heuristic (no preprocessing, no parsing):
- a function is a `{` at column 0, or a line starting at column 0 and ending in `{` that is not
  a struct/enum/union or an initializer, up to the next `}` at column 0; its lines run from the
  first line of its signature (back to the previous blank line, comment, `}`, `;` or directive)
  to that `}`. The name is the declarator before the parameter list, e.g. `GWC(run_gw_)`.
- a #define continued over several lines (trailing backslashes) counts as one "function" too,
  named `NAME (macro)`: a 300-line macro body is a function in disguise.

When the `duplicates` command is on PATH, its summary over the same files follows. It reads
files by their ending, so every file is copied to a temporary folder with `.c` appended to
names that do not end in .c or .h (depthwise.inc -> depthwise.inc.c).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

SIGNATURE_STOP = re.compile(r"^\s*$|^\s*//|^[#}]|;\s*$|\*/\s*$")
NOT_A_FUNCTION = re.compile(r"^(typedef\s+)?(static\s+)?(const\s+)?(struct|enum|union)\b|=\s*\{?$")
DECLARATOR = re.compile(r"([A-Za-z_][\w${}]*(?:\s*\([^()]*\))?)\s*$")   # ${KEY}: templates


def c_files(root):
    """Paths (relative to root) of the hand-written C core, sorted."""
    where = ["src/cconv/_c", "include/cconv.h"]
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "--cached", "--others",
                              "--exclude-standard", "--"] + where,
                             capture_output=True, text=True, check=True).stdout.split("\n")
        found = [p for p in out if p and os.path.isfile(os.path.join(root, p))]
    except (OSError, subprocess.CalledProcessError):   # not a git checkout: every file
        found = ["include/cconv.h"] + [
            os.path.relpath(os.path.join(d, f), root)
            for d, _, files in os.walk(os.path.join(root, "src/cconv/_c")) for f in files]
    return sorted(set(found))


def functions(lines):
    """(name, first line, number of lines) of each function and multi-line macro (1-based)."""
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#define") and line.rstrip().endswith("\\"):
            j = i
            while j + 1 < len(lines) and lines[j].rstrip().endswith("\\"):
                j += 1
            name = re.match(r"#define\s+(\w+)", line).group(1)
            out.append((f"{name} (macro)", i + 1, j - i + 1))
            i = j + 1
            continue
        opens = line.startswith("{") or (
            line[:1].strip() and line[:1] not in "#}/*" and line.rstrip().endswith("{")
            and not NOT_A_FUNCTION.search(line.rstrip()))
        if opens:
            start = i if not line.startswith("{") else i - 1
            while start > 0 and not SIGNATURE_STOP.search(lines[start - 1]):
                start -= 1
            end = i + 1
            while end < len(lines) and not lines[end].startswith("}"):
                end += 1
            signature = " ".join(s.strip() for s in lines[start:i + 1])
            if not NOT_A_FUNCTION.search(_head(signature) + " ") and "(" in signature:
                out.append((_name(signature), start + 1, end - start + 1))
            i = end + 1
            continue
        i += 1
    return out


def _head(signature):
    """The signature without its body's opening brace."""
    head = signature.rstrip()
    return head[:-1].rstrip() if head.endswith("{") else head


def _name(signature):
    """The declarator before the parameter list: `static int GWC(run_)(const T *x) {` -> GWC(run_)."""
    head = _head(signature)
    depth = 0
    for k in range(len(head) - 1, -1, -1):   # the '(' that matches the last ')'
        depth += {")": 1, "(": -1}.get(head[k], 0)
        if head[k] == "(" and depth == 0:
            found = DECLARATOR.search(head[:k])
            return found.group(1).replace(" ", "") if found else head[:k].strip()
    return head


def duplicates_summary(root, files):
    """The `duplicates` command's report over the files, or None when it is not installed."""
    tool = shutil.which("duplicates")
    if tool is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            name = path if path.endswith((".c", ".h")) else path + ".c"
            os.makedirs(os.path.dirname(os.path.join(tmp, name)), exist_ok=True)
            shutil.copyfile(os.path.join(root, path), os.path.join(tmp, name))
        r = subprocess.run([tool, "--repo", tmp, "--most", "200", "--seconds", "120"],
                           capture_output=True, text=True)
    return r.stdout.strip()


def duplicated_lines(report):
    """Lines on the first side of each listed pair (its longest run only)."""
    spans = re.findall(r"^D\d+ \S+:(\d+)-(\d+) ~", report, re.M)
    return sum(int(b) - int(a) + 1 for a, b in spans)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkout", nargs="?", default=".", help="repository root (default: .)")
    p.add_argument("--top", type=int, default=15, help="how many of the longest functions")
    p.add_argument("--limit", type=int, default=150, help="count the functions longer than this")
    args = p.parse_args(argv)
    root = os.path.abspath(args.checkout)
    files = c_files(root)
    if not files:
        sys.exit(f"{root}: no C core found (src/cconv/_c/, include/cconv.h)")
    total, found = 0, []
    for path in files:
        with open(os.path.join(root, path), "rb") as f:
            data = f.read()
        total += len(data)
        lines = data.decode("utf-8", "replace").split("\n")
        found += [(n, path, first, length) for n, first, length in functions(lines)]
    found.sort(key=lambda f: -f[3])
    rev = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    print(f"# C core metrics of {root}" + (f" ({rev})" if rev else ""))
    print(f"\n{len(files)} files, {total} bytes ({total / 1000:.0f} KB), {len(found)} functions "
          f"and multi-line macros; {sum(f[3] > args.limit for f in found)} longer than "
          f"{args.limit} lines\n")
    print("| lines | function | file:line |\n|---|---|---|")
    for name, path, first, length in found[:args.top]:
        print(f"| {length} | {name} | {path}:{first} |")
    report = duplicates_summary(root, files)
    if report is None:
        print("\nduplicates: the command is not on PATH")
    else:
        first = report.splitlines()[0] if report else "no output"
        print(f"\nduplicates: {first}; {duplicated_lines(report)} lines in the longest run of "
              f"each pair\n\n```\n{report}\n```")
    return 0


if __name__ == "__main__":
    sys.exit(main())

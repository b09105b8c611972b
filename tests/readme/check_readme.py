#!/usr/bin/python3
"""check_readme.py SOURCE_DIR README... — runs what a README tells its reader to do (ctest
readme_*; tests/readme/CMakeLists.txt), so it cannot drift from the code.

Each README runs in a fresh copy of the source tree (git's files, as a clone has them),
with HOME set to an empty temporary directory, as one bash script (set -euo pipefail) made
from its fenced blocks, in order:
  ```bash / ```sh        the commands, run as written, from the copy's top directory
  ```bash parse-only     not run, checked: each line must be `./dev.sh SUB ...` with SUB a
                         subcommand of dev.sh (a label of its case: `main`, `test`, `sanitize`,
                         `bench`, `fuzz`: they take minutes, and `test` runs this test
                         again), or `ctest ... -R PATTERN ...` with PATTERN matching a test
                         that some CMakeLists.txt registers (the suite itself takes minutes)
  ```c file=P, ```cmake file=P   written to the file P (relative to the top directory)
                         for the commands after them; a c or cmake block without file= is
                         an error, so every C program in a README is compiled by its own
                         commands
  ```python              written to a file and run by the README's Python (PYTHONS below)
                         from the top directory; each `print(...)  # TEXT` line must have
                         printed TEXT (check_outputs)
Blocks of other languages (none: diagrams, tables) are prose and skipped.
Prints each block as it runs it; exits nonzero at the first failure."""
import os
import re
import shlex
import subprocess
import sys
import tempfile

# The interpreter that runs a README's python blocks: README.md installs hologram_ffi into
# a venv (its "Python quick start"), python/README.md uses the build tree with Debian's
# Python.
PYTHONS = {
    "README.md": '"$HOME/.venvs/hologram/bin/python"',
    "python/README.md": 'PYTHONPATH="$PWD/build/python" /usr/bin/python3',
}
FENCE = re.compile(r"^```(\S*)(.*)$")


def blocks(path):
    """[(line number, language, {tag: value}, text)] of the fenced blocks of `path`."""
    found, current = [], None
    with open(path) as f:
        for number, line in enumerate(f, 1):
            m = FENCE.match(line.rstrip("\n"))
            if current is None and m:
                tags = dict(t.partition("=")[::2] for t in m.group(2).split())
                current = (number, m.group(1), tags, [])
            elif current is not None and line.rstrip("\n") == "```":
                found.append(current[:3] + ("".join(current[3]),))
                current = None
            elif current is not None:
                current[3].append(line)
    if current is not None:
        raise SystemExit(f"{path}:{current[0]}: unclosed fenced block")
    return found


def dev_sh_commands(src):
    """The subcommands of dev.sh: the labels of its top-level `case` (`    main)`)."""
    with open(os.path.join(src, "dev.sh")) as f:
        return set(re.findall(r"^    ([a-z]+)\)$", f.read(), re.M))


def registered_tests(src):
    """Names of the tests that the CMakeLists.txt files register (add_test(NAME x ...));
    names made from variables count by their literal prefix."""
    names = set()
    for root, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if not d.startswith((".", "build"))]
        if "CMakeLists.txt" in files:
            with open(os.path.join(root, "CMakeLists.txt")) as f:
                names |= set(re.findall(r"add_test\(NAME\s+([\w$]+)", f.read()))
    return names


def check_parse_only(where, text, src):
    """Raises SystemExit unless every line of a parse-only block is a known command."""
    subcommands, tests = dev_sh_commands(src), registered_tests(src)
    for line in text.splitlines():
        command = line.split("#")[0].strip()
        if not command:
            continue
        words = shlex.split(command)
        if words[0] == "./dev.sh":
            if len(words) < 2 or words[1] not in subcommands:
                raise SystemExit(f"{where}: {command!r}: dev.sh has no such subcommand "
                                 f"({', '.join(sorted(subcommands))})")
        elif "ctest" in words and "-R" in words:
            pattern = words[words.index("-R") + 1]
            if not any(re.search(pattern, t) for t in tests):
                raise SystemExit(f"{where}: {command!r}: no registered test matches "
                                 f"{pattern!r}")
        else:
            raise SystemExit(f"{where}: {command!r} cannot be checked without running it")
        print(f"checked (not run): {command}")


def script(readme, src):
    """The bash script that runs README `readme` (a path relative to src)."""
    out = ["set -euo pipefail", 'top="$PWD"']
    python = PYTHONS[readme]
    for number, lang, tags, text in blocks(os.path.join(src, readme)):
        where = f"{readme}:{number}"
        marker = f"READMEBLOCK{number}"
        if lang in ("bash", "sh", "shell"):
            if "parse-only" in tags:
                check_parse_only(where, text, src)
                continue
            out += [f"echo '== {where}: {lang}'", 'cd "$top"', "set -x", text.rstrip("\n"),
                    "{ set +x; } 2>/dev/null"]
        elif lang in ("c", "cmake"):
            if not tags.get("file"):
                raise SystemExit(f"{where}: a {lang} block needs file=PATH, so that it "
                                 "is compiled by the README's commands")
            path = tags["file"]
            out += [f"echo '== {where}: {path}'", 'cd "$top"',
                    f'mkdir -p "$(dirname {shlex.quote(path)})"',
                    f"cat > {shlex.quote(path)} <<'{marker}'", text + marker]
        elif lang == "python":
            block = f'"$HOME/readme_{number}.py"'
            out += [f"echo '== {where}: python'", 'cd "$top"',
                    f"cat > {block} <<'{marker}'", text + marker,
                    f'{python} {block} | tee "$HOME/readme_{number}.out"',
                    f'{shlex.quote(sys.executable)} {shlex.quote(os.path.abspath(__file__))} '
                    f'--outputs {shlex.quote(where)} {block} "$HOME/readme_{number}.out"']
    return "\n".join(out) + "\n"


PRINTED = re.compile(r"^\s*print\(.*\)\s+# (.+)$")


def check_outputs(where, block, output):
    """Exit status 1 unless every `print(...)  # TEXT` line of the python block has TEXT in
    the output, as a whole line or as a line followed by an explanation in parentheses
    (`# 3.0 (also written to c[0])` for the line 3.0)."""
    with open(output) as f:
        lines = [line.rstrip() for line in f]
    with open(block) as f:
        expected = [m.group(1).strip() for m in map(PRINTED.match, f) if m]
    missing = [text for text in expected
               if not any(text == line or text.startswith(line + " (") for line in lines)]
    for text in missing:
        print(f"{where}: the README says the output is {text!r}; it printed {lines}")
    return 1 if missing else 0


def main(argv):
    if argv[1] == "--outputs":
        return check_outputs(*argv[2:5])
    src = os.path.abspath(argv[1])
    for readme in argv[2:]:
        with tempfile.TemporaryDirectory(prefix="readme-") as tmp:
            copy, home = os.path.join(tmp, "src"), os.path.join(tmp, "home")
            os.makedirs(copy)
            os.makedirs(home)
            files = subprocess.run(["git", "-C", src, "ls-files", "-z", "--cached",
                                    "--others", "--exclude-standard"], check=True,
                                   capture_output=True).stdout
            subprocess.run(["tar", "cf", os.path.join(tmp, "src.tar"), "--no-recursion",
                            "--null", "-T", "-"], input=files, cwd=src, check=True)
            subprocess.run(["tar", "xf", os.path.join(tmp, "src.tar")], cwd=copy, check=True)
            env = {k: v for k, v in os.environ.items() if not k.startswith("HOLOGRAM_")}
            env["HOME"] = home
            print(f"=== {readme} in {copy} (HOME={home})", flush=True)
            result = subprocess.run(["bash", "-c", script(readme, src)], cwd=copy, env=env)
            if result.returncode:
                print(f"=== {readme}: failed (exit status {result.returncode})")
                return 1
            print(f"=== {readme}: every block passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env bash
# bench/run.sh [--quick] — the whole benchmark against an existing build, under one
# progress bar: bench/run.py (its docstring lists the stages and the environment).
exec /usr/bin/python3 "$(dirname "$0")/run.py" "$@"

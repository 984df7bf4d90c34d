#!/usr/bin/env bash
# make matrix: the fast tests (not slow, e2e or bench) under each Python version given, each in its
# own virtualenv .venv-X.Y. The interpreter comes from PATH (pythonX.Y), else from pyenv.
set -euo pipefail
cd "$(dirname "$0")/.."

interpreter() {
    if "python$1" --version >/dev/null 2>&1; then
        command -v "python$1"
        return
    fi
    # A pyenv shim answers only when its version is selected: ask pyenv where that version is.
    local root version
    root=$(pyenv root 2>/dev/null) || return 1
    version=$(pyenv versions --bare | grep -E "^$1\.[0-9]+$" | sort -V | tail -1)
    [ -n "$version" ] && [ -x "$root/versions/$version/bin/python$1" ] || return 1
    echo "$root/versions/$version/bin/python$1"
}

for version in "$@"; do
    python=$(interpreter "$version") || { echo "make matrix: no Python $version found" >&2; exit 1; }
    venv=.venv-$version
    if [ ! -f "$venv/.installed" ] || [ pyproject.toml -nt "$venv/.installed" ]; then
        "$python" -m venv --clear "$venv"
        "$venv/bin/python" -m pip install --quiet --upgrade pip
        "$venv/bin/python" -m pip install --quiet -e '.[dev]'
        touch "$venv/.installed"
    fi
    echo "== $("$venv/bin/python" --version): the fast tests"
    "$venv/bin/python" -m pytest -q -n 3 -m "not slow and not e2e and not bench"
done

# Sourced by scripts/demo and scripts/test: create or reuse .venv and install metaloop into it.
# torch is pinned through constraints.txt so pip never pulls a CUDA build (GBs) on a CPU machine.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${METALOOP_VENV:-$REPO/.venv}"
PYTHON_BIN="${PYTHON:-python3}"

if ! "$PYTHON_BIN" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "metaloop needs Python >= 3.11 (found $("$PYTHON_BIN" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "[metaloop] creating virtual environment in $VENV" >&2
    "$PYTHON_BIN" -m venv "$VENV"
fi
# Reinstall only when the package metadata changed (the stamp holds a hash of pyproject + constraints).
STAMP="$VENV/.metaloop-install-stamp"
WANT="$(cat "$REPO/pyproject.toml" "$REPO/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ] || ! "$VENV/bin/python" -c 'import metaloop' 2>/dev/null; then
    echo "[metaloop] installing metaloop[dev] (torch pinned by constraints.txt)" >&2
    "$VENV/bin/python" -m pip install -q -c "$REPO/constraints.txt" -e "$REPO[dev]" >&2
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
cd "$REPO"

# Sourced by ./up and ./test: make .venv (once) and install reghub with its test tools into it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
if [ ! -x "$root/.venv/bin/python" ]; then
  "$python" -m venv "$root/.venv"
fi
stamp="$root/.venv/.installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  "$root/.venv/bin/pip" install --quiet --upgrade pip
  "$root/.venv/bin/pip" install --quiet -e "$root[test]"
  touch "$stamp"
fi

# Sourced by ./up and ./test: make .venv and install exactly what uv.lock says into it (reghub itself
# editable, with the `embedded`, `test` and `native` extras), again only when pyproject.toml or uv.lock
# changes; then compile the dispensing hot path with mypyc, again only when the source changes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
stamp="$root/.venv/.installed"
# (bytecode: the stamp changes with how the venv is made, so older venvs are made again)
wanted="$( (cat "$root/pyproject.toml" "$root/uv.lock"; echo bytecode) | sha256sum | cut -d' ' -f1)"
if [ ! -x "$root/.venv/bin/reghub" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  began=$SECONDS
  [ -x "$root/.venv/bin/python" ] || echo "creating .venv…" >&2
  echo "installing locked dependencies (uv.lock)…" >&2
  if ! UV_PROJECT_ENVIRONMENT="$root/.venv" "$root/scripts/uv" sync --project "$root" --locked \
    --extra embedded --extra test --extra native --python "${PYTHON:-python3}" --quiet --compile-bytecode; then
    echo "setup failed; if uv.lock is out of date with pyproject.toml, run scripts/uv lock" >&2
    return 1 2>/dev/null || exit 1
  fi
  echo "$wanted" >"$stamp"
  echo "done: .venv is ready ($((SECONDS - began)) s)" >&2
fi
# Our own modules' bytecode as well (only files changed since are compiled again): every worker, API
# and command process imports them, and where PYTHONDONTWRITEBYTECODE is set, Python would compile
# them from source at each start
"$root/.venv/bin/python" -m compileall -q -j 0 "$root"/{reghub,streams,sinks,rules,schemas,api,bench} \
  >/dev/null || true
# The dispensing hot path compiled with mypyc into .venv (reghub/native.py), only when the source changed
# since the last build; where it cannot be compiled, the same modules run as plain Python
"$root/.venv/bin/python" -m reghub.native_build || true

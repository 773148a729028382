# Sourced by scripts/demo and scripts/test: installs what they need, once.
#   - Debian packages: varnish + varnish-modules (the real cache), python3-venv if missing
#   - a virtualenv in .venv with s3purge and its dev tools (re-installed when pyproject.toml changes)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${S3PURGE_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

need_apt=()
for pkg in varnish varnish-modules; do dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg"); done
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "[setup] apt-get install ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >&2
fi

[ -x "$VENV/bin/python" ] || { echo "[setup] creating $VENV" >&2; "$PYTHON" -m venv "$VENV"; }
stamp="$VENV/.s3purge-installed"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] pip install -e .[dev] (first run takes a minute)" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]" >&2
  echo "$want" > "$stamp"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"

#!/usr/bin/env bash
# The one provisioning script of genet-testbed. Used by scripts/demo.sh,
# scripts/test.sh, .ci/run and the Vagrantfile.
#
#  1. When running as root on a machine with apt-get: installs the Debian/Ubuntu
#     packages the testbed drives (iperf3, mininet, bridge-utils, openssh-server,
#     iproute2; optional, best effort: chromium, chromium-driver, ffmpeg). Skipped when they are all installed already, or when not root
#     (then a line says which are missing; everything that does not need them
#     still works).
#  2. Always: a virtual environment in .venv with the project installed editable,
#     with every extra (all: sim, plots, train, deploy) and the test tools.
#     Skipped when .venv is up to date with pyproject.toml.
#
# Options: --system-only (step 1 only; the Vagrantfile runs step 2 as its user).
# Environment: PYTHON (interpreter for the venv, default python3),
#              GENET_SKIP_APT=1 (never touch system packages),
#              GENET_EXTRA_APT="pkg ..." (more packages, e.g. mahimahi in the VM).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="iperf3 mininet bridge-utils openssh-server iproute2 ${GENET_EXTRA_APT:-}"
# The browser player, the report screenshot and encoded test videos (Debian names; on a distribution
# without them, e.g. Ubuntu 22.04 where chromium is a snap, provisioning goes on and those tests skip).
OPTIONAL_APT_PACKAGES="chromium chromium-driver ffmpeg"

missing=()
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ] && [ "${GENET_SKIP_APT:-0}" != 1 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[provision] installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[provision] not root or no apt-get: system packages missing (${missing[*]});" \
         "emulation tests that need them will be skipped"
  fi
fi
optional=()
for p in $OPTIONAL_APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || optional+=("$p")
done
if [ "${#optional[@]}" -gt 0 ] && [ "${GENET_SKIP_APT:-0}" != 1 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[provision] installing optional system packages: ${optional[*]}"
    export DEBIAN_FRONTEND=noninteractive
    [ "${#missing[@]}" -gt 0 ] || apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${optional[@]}" >/dev/null \
      || echo "[provision] could not install ${optional[*]}; browser and video tests will be skipped"
  else
    echo "[provision] not root or no apt-get: optional packages missing (${optional[*]});" \
         "browser and video tests will be skipped"
  fi
fi

# ---- Mahimahi (issue 18) ---------------------------------------------------------------------
# When ../shared/vendor has Mahimahi's source and no mm-link is installed, build it once per machine
# into /opt/mahimahi (outside the clone; ~90 s the first time, 0.4 s afterwards) with
# ../shared/tools/build-mahimahi.sh, which also sets up the runtime user `mahimahi` (non-root user,
# net.ipv4.ip_forward=1, cubic allowed for unprivileged users; those sysctls do not survive a reboot,
# hence the cheap re-run). The mahimahi backend finds /opt/mahimahi/bin and that user by itself.
# Root only; GENET_SKIP_MAHIMAHI=1 (or GENET_SKIP_APT=1) skips it; a failed build only warns (the
# real-Mahimahi tests then skip with the reason).
MM_PREFIX=${GENET_MAHIMAHI_PREFIX:-/opt/mahimahi}
MM_SHARED=${GENET_SHARED:-../shared}
MM_TARBALL=$(ls "$MM_SHARED"/vendor/mahimahi-*.tar.gz 2>/dev/null | head -n 1 || true)
if [ "${GENET_SKIP_MAHIMAHI:-0}" != 1 ] && [ "${GENET_SKIP_APT:-0}" != 1 ] && [ "$(id -u)" = 0 ] \
   && [ -n "$MM_TARBALL" ] && [ -f "$MM_SHARED/tools/build-mahimahi.sh" ] \
   && { [ -x "$MM_PREFIX/bin/mm-link" ] || ! command -v mm-link >/dev/null; }; then
  [ -x "$MM_PREFIX/bin/mm-link" ] || echo "[provision] building Mahimahi from $MM_TARBALL into $MM_PREFIX (once, ~90 s)"
  mm_log=$(mktemp /tmp/genet-mahimahi-build.XXXXXX.log)
  if MM_RUNTIME_USER=mahimahi bash "$MM_SHARED/tools/build-mahimahi.sh" "$MM_TARBALL" "$MM_PREFIX" >"$mm_log" 2>&1; then
    rm -f "$mm_log"
  else
    echo "[provision] warning: building Mahimahi failed (log: $mm_log); real-Mahimahi tests will skip" >&2
    tail -n 5 "$mm_log" >&2 || true
  fi
elif [ "${GENET_SKIP_MAHIMAHI:-0}" != 1 ] && [ "${GENET_SKIP_APT:-0}" != 1 ] && [ -z "$MM_TARBALL" ] \
     && [ ! -x "$MM_PREFIX/bin/mm-link" ] && ! command -v mm-link >/dev/null; then
  echo "[provision] Mahimahi not built: its source (mahimahi-*.tar.gz) is not in $MM_SHARED/vendor;" \
       "the embedded netns emulator is the default, and the real-Mahimahi tests will skip"
fi
# ---- end Mahimahi ------------------------------------------------------------------------------

[ "${1:-}" = "--system-only" ] && exit 0

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "[provision] $PY is older than Python 3.11; set PYTHON=python3.11 (apt install python3.11 python3.11-venv)" >&2
  exit 1
fi
stamp=.venv/.genet-provisioned
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[provision] creating .venv and installing genet-testbed (editable, with extras all and test)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  pipq() { .venv/bin/python -m pip install -q "$@" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true; }
  pipq --upgrade pip setuptools wheel
  # torch first, pinned (see README for GPU builds; an installed 2.13.0+cuXXX build is kept).
  pipq "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[all,test]" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import genet, traces, torch, onnxruntime, numba" || { echo "[provision] install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

# ---- dash.js for the browser player (issue 14) -----------------------------------------------
# dash.js 5.2.1, pinned (SHA-256 of the UMD build below), from the npm registry via `npm pack` into a
# temporary directory; only the player build and its licence are copied into the project's own asset
# folder (gitignored), which the player page loads: nothing is ever fetched at run time. Redone only
# when the file is missing or differs. No npm, or the download fails: a line says so and the browser
# tests skip. GENET_SKIP_DASHJS=1 skips it.
DASHJS_VERSION=5.2.1
DASHJS_SHA256=3a22b1f4576ab294f41e56f156cec7972a5f83edda379416778293ff22d2eb49
DASHJS_DIR=player/assets/vendor/dashjs-$DASHJS_VERSION
if [ "${GENET_SKIP_DASHJS:-0}" != 1 ] \
   && [ "$(sha256sum "$DASHJS_DIR/dash.all.min.js" 2>/dev/null | cut -d' ' -f1)" != "$DASHJS_SHA256" ]; then
  if command -v npm >/dev/null; then
    echo "[provision] installing dash.js $DASHJS_VERSION into $DASHJS_DIR"
    djs_tmp=$(mktemp -d /tmp/genet-dashjs.XXXXXX)
    if (cd "$djs_tmp" && npm pack --silent "dashjs@$DASHJS_VERSION" >/dev/null 2>&1 \
          && tar xzf "dashjs-$DASHJS_VERSION.tgz" package/dist/modern/umd/dash.all.min.js package/LICENSE.md) \
       && [ "$(sha256sum "$djs_tmp/package/dist/modern/umd/dash.all.min.js" | cut -d' ' -f1)" = "$DASHJS_SHA256" ]; then
      mkdir -p "$DASHJS_DIR"
      cp "$djs_tmp/package/dist/modern/umd/dash.all.min.js" "$djs_tmp/package/LICENSE.md" "$DASHJS_DIR/"
    else
      echo "[provision] warning: could not fetch dash.js $DASHJS_VERSION (or its SHA-256 differs);" \
           "browser-player tests will be skipped" >&2
    fi
    rm -rf "$djs_tmp"
  else
    echo "[provision] npm not found: dash.js $DASHJS_VERSION not installed; browser-player tests will be skipped"
  fi
fi
# ---- end dash.js -------------------------------------------------------------------------------
echo "[provision] ready: $(.venv/bin/python --version), genet at .venv/bin/genet"

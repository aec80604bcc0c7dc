#!/usr/bin/env bash
# Make Debian's Chromium available for the browser test (Playwright's own browser
# download does not work offline). Installs it when this user can; otherwise says
# why, and the browser test skips (or fails under CI=true).
set -u
for exe in "${LOCALML_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -n "$exe" ] && [ -x "$exe" ]; then exit 0; fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: no apt-get here; install Chromium and set LOCALML_CHROMIUM=/path/to/chromium for the browser test"
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "note: cannot install chromium without root; run 'sudo apt-get install chromium' for the browser test"
  exit 0
fi
echo "installing Debian's chromium for the browser test..."
$SUDO apt-get update -qq >/dev/null 2>&1 || true
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null 2>&1; then
  echo "note: apt-get install chromium failed; the browser test will skip (fail under CI=true)"
fi
exit 0

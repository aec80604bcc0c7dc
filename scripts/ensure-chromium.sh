#!/usr/bin/env bash
# Make Debian's Chromium available for the browser test (Playwright's own browser
# download does not work offline), with a font that has the angle brackets netron
# draws around tensor shapes (U+3008/U+3009; without one they show as empty boxes).
# Installs what is missing when this user can; otherwise says why, and the browser
# test skips (or fails under CI=true).
set -u
have_chromium=""
for exe in "${LOCALML_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -n "$exe" ] && [ -x "$exe" ]; then have_chromium=1; break; fi
done
have_font=""
if ! command -v fc-list >/dev/null 2>&1 || [ -n "$(fc-list ':charset=3008' 2>/dev/null | head -1)" ]; then
  have_font=1
fi
if [ -n "$have_chromium" ] && [ -n "$have_font" ]; then exit 0; fi
packages=()
[ -z "$have_chromium" ] && packages+=(chromium)
[ -z "$have_font" ] && packages+=(fonts-wqy-microhei)
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: no apt-get here; install ${packages[*]} (and set LOCALML_CHROMIUM=/path/to/chromium) for the browser test"
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "note: cannot install ${packages[*]} without root; run 'sudo apt-get install ${packages[*]}' for the browser test"
  exit 0
fi
echo "installing ${packages[*]} for the browser test..."
$SUDO apt-get update -qq >/dev/null 2>&1 || true
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${packages[@]}" >/dev/null 2>&1; then
  echo "note: apt-get install ${packages[*]} failed; the browser test will skip (fail under CI=true) without chromium"
fi
exit 0

#!/usr/bin/env bash
# Provide Debian's chromium-headless-shell for the browser tests (tests/report/), without root: the packages
# are fetched with `apt-get download` and unpacked with `dpkg -x` into .browser/ (git-ignored), together with
# every library package of its Depends closure that this machine lacks. It writes .browser/chromium, a
# launcher that sets LD_LIBRARY_PATH to the unpacked libraries, and prints its path; does nothing when it is
# already there. `playwright install` is never needed: the tests launch .browser/chromium (or
# $SECTL_CHROMIUM) through Playwright's executable_path.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="$PWD/.browser"
launcher="$dest/chromium"
if [[ -x "$launcher" ]]; then echo "$launcher"; exit 0; fi

mkdir -p "$dest/debs" "$dest/root"
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
wanted=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == "<"* ]] && continue
  if [[ "$pkg" == chromium-* ]] || ! installed "$pkg"; then wanted+=("$pkg"); fi
done < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
           --no-enhances --no-pre-depends chromium-headless-shell | grep -v '^ ' | sort -u)
(cd "$dest/debs" && apt-get download "${wanted[@]}" >&2)
for deb in "$dest"/debs/*.deb; do dpkg -x "$deb" "$dest/root"; done
binary="$dest/root/usr/lib/chromium/chromium-headless-shell"
test -x "$binary" || { echo "chromium-headless-shell not found after unpacking into $dest" >&2; exit 1; }
root="$dest/root"
libs="$root/usr/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu/pulseaudio:$root/lib/x86_64-linux-gnu:$root/usr/lib/chromium"
missing="$(LD_LIBRARY_PATH="$libs" ldd "$binary" | grep 'not found' || true)"
if [[ -n "$missing" ]]; then echo "libraries still missing for $binary:"$'\n'"$missing" >&2; exit 1; fi
printf '#!/bin/sh\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "%s" "$@"\n' "$libs" "$binary" > "$launcher"
chmod +x "$launcher"
rm -rf "$dest/debs"
echo "$launcher"

#!/usr/bin/env bash
# Installs the Debian packages the tests need: Chromium for the browser test (Playwright drives
# Debian's build, it never downloads its own) and Prometheus for promtool and the scrape test.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-system-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# With the recommended packages: Chromium's fonts (fonts-liberation) come as recommends, and
# this is the combination the browser test was verified with.
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null

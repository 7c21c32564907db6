#!/usr/bin/env bash
# Installs what the tests need beyond the .NET SDK: Debian's chromium, for the headless-browser test of the chat page
# that `gemma serve` serves at / (Gemma.Tests/Serve/ChatPageBrowserTests.cs). Idempotent; needs root (CI runs as root).
# Without chromium that test fails with a message naming this script (it is never silently skipped).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then echo "install-test-deps: run as root to apt-get install chromium" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium

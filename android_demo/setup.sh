#!/usr/bin/env bash
# Installs what `make apk` and the Android demo's tests need, and nothing when it is all there.
#
#   bash android_demo/setup.sh          # called by `make apk`, `make test`, `make bench`
#
# - Debian packages: aapt, apksigner, zipalign, dexdump, android-framework-res (the framework
#   resources that aapt links against), JDK 17 (javac, keytool: dx 1.11 reads Java 7 class files,
#   which JDK 20 and later cannot emit; build.py picks a JDK <= 19) and chromium (browser tests).
#   `apt-get update` runs only when something is missing; installing needs root.
# - npm packages pinned in android_demo/package-lock.json, into android_demo/node_modules
#   (`npm ci`, re-run only when the lock file changed): LiteRT.js (shipped in the APK), the dx
#   dexer (inside @nativescript/android), Android API declarations and playwright-core.
# - The dx jar's sha256 is checked, since the build runs code from it.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DX_JAR="$HERE/node_modules/@nativescript/android/framework/build-tools/android-metadata-generator.jar"
DX_SHA256=65b0efce431b4c554d1aed6e18a6d7d20d02cbe945a3302cdf635e3031f35152

missing=()
need() {  # need PACKAGE PATH_OR_COMMAND
    if [[ "$2" == /* ]]; then [[ -e "$2" ]] || missing+=("$1")
    else command -v "$2" >/dev/null 2>&1 || missing+=("$1"); fi
}
need aapt aapt
need apksigner apksigner
need zipalign zipalign
need dexdump dexdump
need android-framework-res /usr/share/android-framework-res/framework-res.apk
need openjdk-17-jdk-headless "/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture)/bin/javac"
need openjdk-17-jdk-headless keytool
need chromium /usr/bin/chromium
need npm npm
if ((${#missing[@]})); then
    pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
    if [[ $(id -u) != 0 ]]; then
        echo "android_demo/setup.sh: missing Debian packages: $pkgs" >&2
        echo "  install them as root: apt-get install --no-install-recommends $pkgs" >&2
        exit 1
    fi
    echo "android_demo/setup.sh: installing $pkgs"
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $pkgs >/dev/null
fi

# npm ci wipes node_modules, so run it only when the installed tree is not from this lock file.
stamp="$HERE/node_modules/.officenet-lock.sha256"
want=$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "android_demo/setup.sh: npm ci (android_demo/node_modules)"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
fi

got=$(sha256sum "$DX_JAR" | cut -d' ' -f1)
if [[ "$got" != "$DX_SHA256" ]]; then
    echo "android_demo/setup.sh: $DX_JAR has sha256 $got, expected $DX_SHA256; refusing to run it" >&2
    exit 1
fi

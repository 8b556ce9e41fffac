"""Build the signed demo APK from an export bundle, with Debian's Android tools and no Android SDK.

    python -m android_demo.build --bundle artifacts/bundle --out artifacts/officenet-demo.apk
    adb install -r artifacts/officenet-demo.apk

Steps: validate the bundle (``bundle.manifest.load_bundle``); lay out the assets (the page from
``android_demo/web/``, the bundle's model.tflite + manifest.json + labels.txt byte for byte, the
LiteRT.js runtime and its wasm); ``javac --release 7`` the activity against the compile-only stubs
in ``android_demo/stubs/`` (dx 1.11, the only dexer reachable here, reads Java 7 class files);
dex with dx (JDK 20+ cannot emit Java 7, so a JDK <= 19 is looked for: ``find_javac``); package
with ``aapt`` against the platform's framework-res.apk, model and wasm stored uncompressed;
``zipalign -p 4``; sign v2 + v3 with ``apksigner``.

The signing key is a debug key generated once into ``android_demo/debug.keystore`` (git-ignored),
or a release key named by environment variables: OFFICENET_KEYSTORE (path),
OFFICENET_KEYSTORE_PASS, OFFICENET_KEY_ALIAS and OFFICENET_KEY_PASS (passwords stay in the
environment; apksigner reads them from there). Next to the APK, ``<apk>.json`` records what went
in (bundle, sizes, the model's share, the signing certificate). Run ``bash android_demo/setup.sh``
first (``make apk`` does).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from bundle.atomic import write_json_atomic
from bundle.flags import add_group, given, setting
from bundle.manifest import MANIFEST, SEAL, BundleError, load_bundle

HERE = Path(__file__).resolve().parent
APP = HERE / "app" / "src" / "main"
GRADLE_APP = HERE / "app" / "build.gradle"
WEB = HERE / "web"
STUBS = HERE / "stubs"
NODE_MODULES = HERE / "node_modules"
LITERT = NODE_MODULES / "@litertjs"
DX_JAR = NODE_MODULES / "@nativescript/android/framework/build-tools/android-metadata-generator.jar"
FRAMEWORK_RES = Path("/usr/share/android-framework-res/framework-res.apk")
DEBUG_KEYSTORE = HERE / "debug.keystore"
# The relaxed-SIMD build for current WebViews, and the plain build LiteRT.js picks on older ones.
LITERT_WASM = ("litert_wasm_internal", "litert_wasm_compat_internal")
# The threaded build (all cores; the page uses it only when cross-origin isolated) ships only
# with --threaded-wasm: 13 % faster per frame than one thread for a 41 % larger APK, with
# WebView's cross-origin isolation unverified (bench/results/android.md).
LITERT_WASM_THREADED = "litert_wasm_threaded_internal"
# Bundle files the page reads (SEAL: web/seal.js refuses a manifest edited after export, as
# load_bundle does here); the rest (golden vectors, reports) stay out of the APK.
BUNDLE_FILES = (MANIFEST, "labels.txt", SEAL)
NO_COMPRESS = ("tflite", "wasm")  # mapped straight from the APK instead of inflated into memory
WEB_INPUT_DTYPES = ("uint8", "float32")  # LiteRT.js refuses int8 input/output tensors


class BuildError(Exception):
    """Something the user can fix (missing tool, unusable bundle); reported without a traceback."""


@dataclass
class BuildConfig:
    bundle: Path = setting(Path("artifacts/bundle"), "export bundle directory", metavar="DIR")
    out: Path = setting(Path("artifacts/officenet-demo.apk"), "APK to write", metavar="APK")
    keystore: Path | None = setting(
        None, "release keystore (default: $OFFICENET_KEYSTORE, else the debug key)", metavar="FILE", section="signing"
    )
    key_alias: str | None = setting(
        None,
        "key alias in --keystore (default: $OFFICENET_KEY_ALIAS)",
        metavar="ALIAS",
        section="signing",
    )
    threaded_wasm: bool = setting(
        False,
        "also ship LiteRT.js's threaded build (+9.4 MB), which the page runs on all cores where it is "
        "cross-origin isolated (slower than one thread on the 2-core machine measured: bench/results/android.md)",
    )


@dataclass(frozen=True)
class SigningKey:
    keystore: Path
    alias: str
    store_pass: str  # apksigner/keytool password spec: "env:VAR" or "pass:literal"
    key_pass: str
    debug: bool


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    """Run a build tool; a failure becomes a BuildError carrying the tool's own message."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise BuildError(
            f"{Path(str(cmd[0])).name} failed ({proc.returncode}):\n{(proc.stderr or proc.stdout).strip()}"
        )
    return proc


# dx 1.11 reads class files up to Java 7 (version 51); JDK 20 dropped `javac --release 7`, so a
# newer default JDK (Debian 13's 21) cannot build the app. setup.sh installs JDK 17 by name.
NEWEST_JDK_FOR_DX = 19
JVM_DIR = Path("/usr/lib/jvm")


def jdk_major(javac: str) -> int:
    proc = run([javac, "-version"])
    out = proc.stdout + proc.stderr  # JDK 8 printed it on stderr
    m = re.search(r"javac (\d+)(?:\.(\d+))?", out)
    if not m:
        raise BuildError(f"cannot tell the version of {javac}: {out.strip()}")
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 else major  # "javac 1.8.0" is Java 8


def find_javac() -> str | None:
    """A javac that can still emit Java 7 class files: the one on PATH, else an installed JDK <= 19
    (newest first). None when there is none."""
    candidates = [shutil.which("javac"), *sorted(map(str, JVM_DIR.glob("*/bin/javac")), reverse=True)]
    for javac in filter(None, candidates):
        if jdk_major(javac) <= NEWEST_JDK_FOR_DX:
            return javac
    return None


def require_tools() -> dict[str, str]:
    tools = {name: shutil.which(name) for name in ("java", "keytool", "aapt", "zipalign", "apksigner")}
    missing = [name for name, path in tools.items() if not path]
    if shutil.which("javac") is None:
        missing.append("javac")
    elif (javac := find_javac()) is None:
        raise BuildError(
            f"javac {jdk_major(shutil.which('javac'))} cannot emit the Java 7 class files dx 1.11 "
            f"reads (JDK 20 dropped --release 7), and no JDK <= {NEWEST_JDK_FOR_DX} is in {JVM_DIR}: "
            "install openjdk-17-jdk-headless (bash android_demo/setup.sh does)"
        )
    else:
        tools["javac"] = javac
    for needed in (FRAMEWORK_RES, DX_JAR, LITERT / "core" / "dist" / "index.js"):
        if not needed.exists():
            missing.append(str(needed))
    if missing:
        raise BuildError(f"missing build tools: {', '.join(missing)}; run: bash android_demo/setup.sh")
    return tools


@dataclass(frozen=True)
class AppIdentity:
    """What Gradle keeps out of the manifest; app/build.gradle is the one place it is written."""

    package: str
    min_sdk: int
    target_sdk: int
    version_code: int
    version_name: str

    @classmethod
    def from_gradle(cls, path: Path = GRADLE_APP) -> AppIdentity:
        text = path.read_text()

        def value(key: str) -> str:
            m = re.search(rf"^\s*{key}\s+['\"]?([\w.]+)['\"]?\s*$", text, re.M)
            if not m:
                raise BuildError(f"{path} has no literal `{key}`")
            return m.group(1)

        return cls(
            value("namespace"),
            int(value("minSdk")),
            int(value("targetSdk")),
            int(value("versionCode")),
            value("versionName"),
        )


def check_bundle(path: Path):
    """The bundle must load cleanly and have tensors LiteRT.js can feed (batch 1, no int8 I/O)."""
    try:
        b = load_bundle(path)
    except BundleError as e:
        raise BuildError(str(e)) from None
    for side in ("input", "output"):
        spec = b.manifest[side]
        if spec["dtype"] not in WEB_INPUT_DTYPES:
            raise BuildError(
                f"bundle {side} dtype is {spec['dtype']}; the phone page's runtime "
                f"(LiteRT.js) needs {' or '.join(WEB_INPUT_DTYPES)}: re-export the model"
            )
        if spec["shape"][0] != 1:
            raise BuildError(f"bundle {side} shape {spec['shape']} must have batch size 1")
    return b


def stage_assets(b, assets: Path, threaded_wasm: bool = False) -> None:
    """assets/web/ = the page, bundle/ (copied byte for byte) and litert/ (runtime + wasm)."""
    web = assets / "web"
    shutil.copytree(WEB, web)
    (web / "bundle").mkdir()
    for name in (b.manifest["model"]["file"], *BUNDLE_FILES):
        shutil.copyfile(b.path / name, web / "bundle" / name)
    litert = web / "litert"
    (litert / "wasm").mkdir(parents=True)
    # The page's import map points "@litertjs/wasm-utils" (a bare import inside core) here.
    shutil.copyfile(LITERT / "core" / "dist" / "index.js", litert / "core.js")
    shutil.copyfile(LITERT / "wasm-utils" / "dist" / "index.js", litert / "wasm-utils.js")
    for stem in (*LITERT_WASM, LITERT_WASM_THREADED) if threaded_wasm else LITERT_WASM:
        for ext in (".js", ".wasm"):
            shutil.copyfile(LITERT / "core" / "wasm" / (stem + ext), litert / "wasm" / (stem + ext))


def compile_dex(tools: dict, work: Path) -> Path:
    stub_classes, app_classes, dex_dir = work / "stub-classes", work / "classes", work / "dex"
    for d in (stub_classes, app_classes, dex_dir):
        d.mkdir()
    javac = [tools["javac"], "--release", "7", "-Xlint:-options", "-encoding", "UTF-8"]
    run([*javac, "-d", stub_classes, *sorted(STUBS.rglob("*.java"))])
    run([*javac, "-Werror", "-cp", stub_classes, "-d", app_classes, *sorted((APP / "java").rglob("*.java"))])
    dex = dex_dir / "classes.dex"
    run([tools["java"], "-cp", DX_JAR, "com.android.dx.command.Main", "--dex", f"--output={dex}", app_classes])
    return dex


def package(tools: dict, app: AppIdentity, work: Path, dex: Path) -> Path:
    unaligned, aligned = work / "unaligned.apk", work / "aligned.apk"
    # aapt (v1) wants the package in the manifest; Gradle wants it out (it adds it from namespace).
    manifest = work / "AndroidManifest.xml"
    manifest.write_text(
        (APP / "AndroidManifest.xml").read_text().replace("<manifest ", f'<manifest package="{app.package}" ', 1)
    )
    no_compress = [arg for ext in NO_COMPRESS for arg in ("-0", ext)]
    run(
        [
            tools["aapt"],
            "package",
            "-f",
            "-M",
            manifest,
            "-S",
            APP / "res",
            "-A",
            work / "assets",
            "-I",
            FRAMEWORK_RES,
            "--min-sdk-version",
            app.min_sdk,
            "--target-sdk-version",
            app.target_sdk,
            "--version-code",
            app.version_code,
            "--version-name",
            app.version_name,
            *no_compress,
            "-F",
            unaligned,
        ]
    )
    with zipfile.ZipFile(unaligned, "a", zipfile.ZIP_DEFLATED) as z:
        z.write(dex, "classes.dex")
    run([tools["zipalign"], "-p", "-f", "4", unaligned, aligned])
    return aligned


def signing_key(cfg: BuildConfig, tools: dict) -> SigningKey:
    keystore = cfg.keystore or os.environ.get("OFFICENET_KEYSTORE")
    if keystore:
        for var in ("OFFICENET_KEYSTORE_PASS", "OFFICENET_KEY_PASS"):
            if var not in os.environ:
                raise BuildError(f"release signing with {keystore} needs {var} in the environment")
        alias = cfg.key_alias or os.environ.get("OFFICENET_KEY_ALIAS")
        if not alias:
            raise BuildError("release signing needs --key-alias or OFFICENET_KEY_ALIAS")
        if not Path(keystore).is_file():
            raise BuildError(f"keystore {keystore} does not exist")
        return SigningKey(Path(keystore), alias, "env:OFFICENET_KEYSTORE_PASS", "env:OFFICENET_KEY_PASS", False)
    # The debug key is Android's conventional one: fixed passwords, made once, kept out of git.
    if not DEBUG_KEYSTORE.is_file():
        tmp = DEBUG_KEYSTORE.with_name(f".{DEBUG_KEYSTORE.name}.{os.getpid()}.part")
        tmp.unlink(missing_ok=True)
        run(
            [
                tools["keytool"],
                "-genkeypair",
                "-noprompt",
                "-keystore",
                tmp,
                "-storetype",
                "PKCS12",
                "-storepass",
                "android",
                "-keypass",
                "android",
                "-alias",
                "androiddebugkey",
                "-keyalg",
                "RSA",
                "-keysize",
                "2048",
                "-validity",
                "10000",
                "-dname",
                "CN=officenet debug,O=officenet,C=US",
            ]
        )
        os.replace(tmp, DEBUG_KEYSTORE)
        print(f"made a debug signing key: {DEBUG_KEYSTORE}")
    return SigningKey(DEBUG_KEYSTORE, "androiddebugkey", "pass:android", "pass:android", True)


def sign(tools: dict, key: SigningKey, apk: Path, out: Path) -> str:
    run(
        [
            tools["apksigner"],
            "sign",
            "--ks",
            key.keystore,
            "--ks-key-alias",
            key.alias,
            "--ks-pass",
            key.store_pass,
            "--key-pass",
            key.key_pass,
            "--v1-signing-enabled",
            "false",
            "--v2-signing-enabled",
            "true",
            "--v3-signing-enabled",
            "true",
            "--v4-signing-enabled",
            "false",
            "--out",
            out,
            apk,
        ]
    )
    certs = run([tools["apksigner"], "verify", "--print-certs", out]).stdout
    return next(
        (line.split(":", 1)[1].strip() for line in certs.splitlines() if "certificate SHA-256 digest" in line), ""
    )


def build(cfg: BuildConfig) -> dict:
    """Build ``cfg.out`` (replaced atomically) and return what ``<out>.json`` records."""
    b = check_bundle(cfg.bundle)
    tools = require_tools()
    app = AppIdentity.from_gradle()
    key = signing_key(cfg, tools)
    out = cfg.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="officenet-apk-") as tmp:
        work = Path(tmp)
        stage_assets(b, work / "assets", cfg.threaded_wasm)
        aligned = package(tools, app, work, compile_dex(tools, work))
        signed = out.with_name(f".{out.name}.{os.getpid()}.part")
        try:
            cert = sign(tools, key, aligned, signed)
            os.replace(signed, out)
        finally:
            signed.unlink(missing_ok=True)
    with zipfile.ZipFile(out) as z:
        model_entry = z.getinfo(f"assets/web/bundle/{b.manifest['model']['file']}")
        wasm_bytes = sum(i.compress_size for i in z.infolist() if i.filename.endswith(".wasm"))
    size = out.stat().st_size
    info = {
        "apk": str(out),
        "bytes": size,
        "app": asdict(app),
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "model_bytes": model_entry.compress_size,
        "model_share": model_entry.compress_size / size,
        "wasm_bytes": wasm_bytes,
        "bundle": {
            "path": str(b.path.resolve()),
            "model": b.manifest["model"],
            "model_sha256": b.model_sha256,
            "manifest_sha256": hashlib.sha256((b.path / MANIFEST).read_bytes()).hexdigest(),
        },
        "signing": {"debug_key": key.debug, "certificate_sha256": cert},
        "config": {k: (str(v) if v is not None else None) for k, v in asdict(cfg).items()},
    }
    write_json_atomic(out.with_name(out.name + ".json"), info)
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m android_demo.build",
        description="Build the signed Android demo APK (WebView + LiteRT.js) from an export bundle.",
        epilog="Release signing: set OFFICENET_KEYSTORE, OFFICENET_KEYSTORE_PASS, OFFICENET_KEY_ALIAS "
        "and OFFICENET_KEY_PASS; otherwise a debug key is made once in android_demo/debug.keystore.",
    )
    add_group(p, "build", BuildConfig, title="input and output")
    cfg = BuildConfig(**given(p.parse_args(argv), "build"))
    try:
        info = build(cfg)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    mb = info["bytes"] / 1e6
    print(
        f"built {info['apk']} ({mb:.1f} MB; model {info['model_bytes'] / 1e6:.2f} MB = "
        f"{100 * info['model_share']:.1f}%, LiteRT.js wasm {info['wasm_bytes'] / 1e6:.1f} MB)"
    )
    if info["signing"]["debug_key"]:
        print("signed with the debug key (fine for sideloading; set OFFICENET_KEYSTORE etc. for a release)")
    print("install on a phone (USB debugging on):  adb install -r " + info["apk"])
    print("then open 'officenet' and allow the camera.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

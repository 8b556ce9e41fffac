"""The built APK, checked with the Android tools: signature, alignment, manifest, dex, assets.

No phone or emulator is available here, so these checks (plus the page tests) are what stands
between the build and a device: every framework method the dex calls must exist in the Android
API at or below minSdk, or be called only behind a ``Build.VERSION.SDK_INT`` check of its level;
every override must match a framework method (a newer callback is simply not called on older
phones); the stubs' inlined constants must have the real values; the manifest must allow what a
phone needs (cleartext to the LAN server, configuration changes without a reload).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import zipfile
from pathlib import PurePosixPath

import pytest
from android_api import DEMO, TYPES_D_TS, AndroidApi, dex_classes, dex_method_bodies, dex_references, sdk_checked_levels

from android_demo.build import AppIdentity
from android_demo.page import ISOLATION_HEADERS
from bundle.manifest import load_bundle

APP = AppIdentity.from_gradle()
MIN_SDK = APP.min_sdk
ACTIVITY = f"{APP.package}.MainActivity"

pytestmark = pytest.mark.slow


def tool(*cmd) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd[0]} failed: {proc.stderr or proc.stdout}"
    return proc.stdout


@pytest.fixture(scope="module")
def dex_dump(apk, tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("dex")
    with zipfile.ZipFile(apk[0]) as z:
        z.extract("classes.dex", d)
    return tool("dexdump", "-d", d / "classes.dex")


@pytest.fixture(scope="session")
def android_api(android_tools) -> AndroidApi:
    return AndroidApi.load(TYPES_D_TS)


def test_apk_is_signed_v2_v3_and_aligned(apk):
    verify = tool("apksigner", "verify", "-v", apk[0])
    assert "Verified using v2 scheme (APK Signature Scheme v2): true" in verify
    assert "Verified using v3 scheme (APK Signature Scheme v3): true" in verify
    tool("zipalign", "-c", "-p", "4", apk[0])
    assert apk[1]["signing"]["certificate_sha256"] in tool("apksigner", "verify", "--print-certs", apk[0])


def test_badging_names_package_activity_camera_and_sdk_levels(apk):
    badging = tool("aapt", "dump", "badging", apk[0])
    assert f"package: name='{APP.package}' versionCode='{APP.version_code}'" in badging
    assert f"launchable-activity: name='{ACTIVITY}'" in badging
    assert "uses-permission: name='android.permission.CAMERA'" in badging
    assert MIN_SDK == 24 and f"sdkVersion:'{MIN_SDK}'" in badging
    assert f"targetSdkVersion:'{APP.target_sdk}'" in badging
    assert APP.target_sdk >= 35, "Google Play takes new apps and updates only at targetSdk 35 or more"


# android:configChanges bits (android.content.pm.ActivityInfo.CONFIG_*): what a phone changes under
# a running activity without recreating it, provided the activity declares it.
CONFIG = {
    "keyboard": 0x10,
    "keyboardHidden": 0x20,
    "navigation": 0x40,
    "orientation": 0x80,
    "screenLayout": 0x100,
    "uiMode": 0x200,
    "screenSize": 0x400,
    "smallestScreenSize": 0x800,
    "density": 0x1000,
}


def test_manifest_allows_the_lan_server_and_keeps_the_page_through_configuration_changes(apk):
    """Android 9+ refuses cleartext HTTP unless allowed; a rotation (or fold, resize, dark mode)
    not listed in configChanges recreates the activity, and with it reloads the page."""
    manifest = tool("aapt", "dump", "xmltree", apk[0], "AndroidManifest.xml")
    config = re.search(r"android:networkSecurityConfig\(0x01010527\)=@(0x[0-9a-f]+)", manifest)
    assert config, "no network security config in the manifest"
    resources = tool("aapt", "dump", "resources", apk[0])
    name = re.search(rf"resource {config.group(1)} \S+:xml/(\w+)", resources).group(1)
    nsc = tool("aapt", "dump", "xmltree", apk[0], f"res/xml/{name}.xml")
    assert re.search(r"E: base-config.*\n\s+A: cleartextTrafficPermitted=\(type 0x12\)0xffffffff", nsc), nsc
    changes = int(re.search(r"android:configChanges\(0x0101001f\)=\(type 0x11\)(0x[0-9a-f]+)", manifest).group(1), 16)
    missing = [n for n, bit in CONFIG.items() if not changes & bit]
    assert missing == [], f"configChanges lacks {missing}: those changes would reload the page"


def test_dex_holds_the_activity(dex_dump):
    classes = dex_classes(dex_dump)
    assert classes[ACTIVITY].superclass == "android.app.Activity"
    assert ("onCreate", "(Landroid/os/Bundle;)V") in classes[ACTIVITY].virtual
    # A killed renderer must not take the app down; the page must not sit under the system bars.
    client = next(c for c in classes.values() if c.superclass == "android.webkit.WebViewClient")
    assert (
        "onRenderProcessGone",
        "(Landroid/webkit/WebView;Landroid/webkit/RenderProcessGoneDetail;)Z",
    ) in client.virtual
    assert ".setOnApplyWindowInsetsListener:(Landroid/view/View$OnApplyWindowInsetsListener;)V" in dex_dump


def test_assets_hold_the_bundle_byte_identical_and_the_litert_runtime(apk, tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    model = bundle.manifest["model"]["file"]
    with zipfile.ZipFile(apk[0]) as z:
        web = "assets/web/"
        assert z.read(web + "bundle/manifest.json") == (tiny_bundle / "manifest.json").read_bytes()
        for name in (model, "labels.txt"):
            data = z.read(web + "bundle/" + name)
            assert hashlib.sha256(data).hexdigest() == bundle.manifest["files"][name]["sha256"], name
        wasm = [n for n in z.namelist() if n.endswith(".wasm")]
        assert web + "litert/wasm/litert_wasm_internal.wasm" in wasm
        assert not [n for n in wasm if "threaded" in n], "the threaded build ships only with --threaded-wasm"
        for name in wasm:
            shipped = DEMO / "node_modules/@litertjs/core/wasm" / name.rsplit("/", 1)[1]
            assert z.read(name) == shipped.read_bytes(), name
        # noCompress: the model and the wasm are stored, so they are read without inflating.
        for name in [web + "bundle/" + model, *wasm]:
            assert z.getinfo(name).compress_type == zipfile.ZIP_STORED, name
        for name in ("index.html", "app.js", "classifier.js", "preprocess.js"):
            assert z.read(web + name) == (DEMO / "web" / name).read_bytes(), name
    assert apk[1]["model_bytes"] == bundle.manifest["files"][model]["bytes"]


def framework_problems(api: AndroidApi, dump: str) -> list[str]:
    """Every framework method/field the dex uses or overrides that is missing, or newer than minSdk
    and used in a method that does not compare SDK_INT with that level."""
    ours = dex_classes(dump)
    problems = []
    for method, body in sorted(dex_method_bodies(dump).items()):
        checked = sdk_checked_levels(body)
        for cls, name, desc in sorted(dex_references(body)):
            if cls in ours:  # a call on our own class: declared there, or inherited from the framework
                if (name, desc) in ours[cls].methods or name in ours[cls].fields:
                    continue
                cls = ours[cls].superclass
            if not cls.startswith("android."):
                continue
            member = api.find_method(cls, name, desc) if desc.startswith("(") else api.find_field(cls, name)
            if member is None:
                problems.append(f"{cls}.{name}{desc} does not exist in the Android API")
            elif member.since > MIN_SDK and not any(level >= member.since for level in checked):
                problems.append(
                    f"{cls}.{name}{desc} needs API {member.since} > minSdk {MIN_SDK} "
                    f"and {method} does not check Build.VERSION.SDK_INT >= {member.since}"
                )
    for c in ours.values():
        if c.superclass.startswith("android."):
            sup = api.classes.get(c.superclass)
            if sup is None or sup.since > MIN_SDK:
                problems.append(f"{c.name} extends {c.superclass}, missing at API {MIN_SDK}")
            for name, desc in c.virtual:  # an override with a wrong signature is silently never called
                if api.declares_method(c.superclass, name) and api.find_method(c.superclass, name, desc) is None:
                    problems.append(f"{c.name}.{name}{desc} overrides nothing")
    return problems


def test_every_framework_member_the_dex_uses_exists_at_min_sdk(dex_dump, android_api):
    refs = [r for r in dex_references(dex_dump) if r[0].startswith("android.")]
    assert len(refs) > 20  # the check saw the activity's real calls
    assert framework_problems(android_api, dex_dump) == []


def test_the_framework_check_catches_missing_and_too_new_members(android_api):
    # WebView.getWebViewClient exists from API 26 on; WebView.loadUrl(int) never existed; behind an
    # SDK_INT >= 26 check the first is fine.
    head = "Class #0 -\n  Class descriptor  : 'Lx/A;'\n  Superclass        : 'Ljava/lang/Object;'\n"
    call = "0002: invoke-virtual {v0}, Landroid/webkit/WebView;.getWebViewClient:()Landroid/webkit/WebViewClient;\n"
    fake = (
        head
        + "000100:          |[000100] x.A.a:()V\n"
        + call
        + "0004: invoke-virtual {v0, v1}, Landroid/webkit/WebView;.loadUrl:(I)V\n"
    )
    problems = framework_problems(android_api, fake)
    assert any("getWebViewClient" in p and "needs API 26" in p for p in problems), problems
    assert any("loadUrl(I)V does not exist" in p for p in problems), problems
    guarded = (
        head + "000100:          |[000100] x.A.b:()V\n"
        "0000: sget v0, Landroid/os/Build$VERSION;.SDK_INT:I // field@0004\n"
        "0002: const/16 v1, #int 26 // #1a\n" + call
    )
    assert framework_problems(android_api, guarded) == []


def test_stub_constants_have_the_framework_values(android_api):
    """javac inlines constants, so a wrong value in a stub would ship silently."""
    constants = []
    for path in (DEMO / "stubs").rglob("*.java"):
        text = path.read_text()
        package = re.search(r"package ([\w.]+);", text).group(1)
        outer = path.stem
        for inner, name, value in re.findall(r"(?:class (\w+) \{\s*)?public static final \w+ (\w+) = (.+?);", text):
            cls = ".".join([package, outer] + ([inner] if inner and inner != outer else []))
            constants.append((cls, name, value))
    assert len(constants) >= 4
    for cls, name, value in constants:
        member = android_api.find_field(cls, name)
        assert member is not None, f"{cls}.{name} is not in the Android API"
        assert member.value == value, f"{cls}.{name} = {value} in the stub, {member.value} on Android"
        # A flag newer than minSdk would mean nothing to an older phone; an API level's name is
        # only compared with SDK_INT.
        assert member.since <= MIN_SDK or cls == "android.os.Build.VERSION_CODES", f"{cls}.{name}"


def test_activity_serves_every_asset_with_a_type_the_webview_accepts(apk, tmp_path):
    """MainActivity.mimeType and .headers on the JVM (they touch no Android class) for every file in
    assets/web/: WebAssembly streaming compilation needs application/wasm, module scripts a
    JavaScript type; wasm threads need cross-origin isolation."""
    from android_demo.build import compile_dex, require_tools

    compile_dex(require_tools(), tmp_path)
    harness = tmp_path / "src" / "MimeTypes.java"
    harness.parent.mkdir()
    harness.write_text(
        "package org.officenet.demo;\npublic class MimeTypes {\n"
        "  public static void main(String[] paths) {\n"
        "    System.out.println(new java.util.TreeMap<String, String>(MainActivity.headers()));\n"
        "    for (String p : paths) System.out.println(MainActivity.mimeType(p));\n  }\n}\n"
    )
    classpath = f"{tmp_path / 'classes'}:{tmp_path / 'stub-classes'}"
    tool("javac", "-cp", classpath, "-d", tmp_path / "classes", harness)
    with zipfile.ZipFile(apk[0]) as z:
        paths = ["/" + n.removeprefix("assets/web/") for n in z.namelist() if n.startswith("assets/web/")]
    headers, *types = tool("java", "-cp", classpath, "org.officenet.demo.MimeTypes", *paths).splitlines()
    # The same cross-origin isolation headers the page tests serve it with (page.ISOLATION_HEADERS).
    assert headers == "{" + ", ".join(f"{k}={v}" for k, v in sorted(ISOLATION_HEADERS.items())) + "}"
    expected = {
        ".html": "text/html",
        ".js": "text/javascript",
        ".css": "text/css",
        ".json": "application/json",
        ".wasm": "application/wasm",
        ".txt": "text/plain",
        ".tflite": "application/octet-stream",
        "": "application/octet-stream",
    }  # the bundle's SEAL
    assert {p: t for p, t in zip(paths, types)} == {p: expected[PurePosixPath(p).suffix] for p in paths}

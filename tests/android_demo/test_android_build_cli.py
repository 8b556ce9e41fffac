"""``python -m android_demo.build``: errors a user can fix come out as one line and exit code 2."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from android_demo.build import main
from bundle.publish import seal


def test_missing_bundle_is_a_usage_error(tmp_path, capsys):
    rc = main(["--bundle", str(tmp_path / "nope"), "--out", str(tmp_path / "x.apk")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and "manifest.json is missing" in err
    assert not (tmp_path / "x.apk").exists()


def test_help_reads_well(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert "--bundle" in out and "OFFICENET_KEYSTORE" in out


@pytest.mark.slow
def test_int8_io_bundle_is_refused_before_building(tiny_bundle, tmp_path, capsys):
    """LiteRT.js cannot feed int8 tensors; the build says so instead of shipping a dead app."""
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["input"]["dtype"] = "int8"
    seal(bundle, manifest)  # a sealed bundle, so the dtype is what the build refuses
    assert main(["--bundle", str(bundle), "--out", str(tmp_path / "x.apk")]) == 2
    assert "int8" in capsys.readouterr().err
    assert not (tmp_path / "x.apk").exists()


@pytest.mark.slow
def test_release_key_from_environment_signs_the_apk(tiny_bundle, android_tools, tmp_path, monkeypatch):
    keystore = tmp_path / "release.p12"
    subprocess.run(
        [
            "keytool",
            "-genkeypair",
            "-noprompt",
            "-keystore",
            str(keystore),
            "-storetype",
            "PKCS12",
            "-storepass",
            "s3cret-store",
            "-keypass",
            "s3cret-store",
            "-alias",
            "officenet",
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-validity",
            "2",
            "-dname",
            "CN=release test",
        ],
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        ["keytool", "-list", "-v", "-keystore", str(keystore), "-storepass", "s3cret-store"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fingerprint = re.search(r"SHA256: ([0-9A-F:]+)", listing).group(1).replace(":", "").lower()
    for var, value in {
        "OFFICENET_KEYSTORE": str(keystore),
        "OFFICENET_KEYSTORE_PASS": "s3cret-store",
        "OFFICENET_KEY_ALIAS": "officenet",
        "OFFICENET_KEY_PASS": "s3cret-store",
    }.items():
        monkeypatch.setenv(var, value)
    out = tmp_path / "release.apk"
    assert main(["--bundle", str(tiny_bundle), "--out", str(out)]) == 0
    certs = subprocess.run(
        ["apksigner", "verify", "--print-certs", str(out)], check=True, capture_output=True, text=True
    ).stdout
    assert f"certificate SHA-256 digest: {fingerprint}" in certs
    info = json.loads(out.with_name(out.name + ".json").read_text())
    assert info["signing"] == {"debug_key": False, "certificate_sha256": fingerprint}
    assert "s3cret" not in json.dumps(info)  # passwords stay in the environment


def test_page_preview_without_an_apk_says_how_to_build_one(tmp_path, capsys):
    from android_demo.page import main as page_main

    assert page_main(["--apk", str(tmp_path / "missing.apk")]) == 2
    assert "make apk" in capsys.readouterr().err


def test_a_jdk_too_new_for_dx_is_passed_over_or_named(tmp_path, monkeypatch, android_tools):
    """dx 1.11 reads Java 7 class files, which JDK 20+ cannot write (Debian 13's default is 21).
    Debian 12 has no such JDK, so a script answering `javac -version` like JDK 21 stands first on
    PATH: the build passes it over for the installed JDK 17, or, with none, names the package."""
    from android_demo import build

    fake = tmp_path / "bin" / "javac"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'javac 21.0.4'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    javac = build.find_javac()
    assert javac != str(fake) and build.jdk_major(javac) <= build.NEWEST_JDK_FOR_DX
    monkeypatch.setattr(build, "JVM_DIR", tmp_path / "no-jvms")
    with pytest.raises(build.BuildError, match="javac 21 cannot emit .*install openjdk-17-jdk-headless"):
        build.require_tools()

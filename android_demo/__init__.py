"""The Android camera demo: an APK whose WebView page classifies camera frames on the phone.

- ``android_demo/app/src/main/``: the manifest, resources and the one Java activity (a WebView
  that serves ``assets/web/`` at https://appassets.androidplatform.net/ and grants the camera).
- ``android_demo/web/``: the page: camera, the manifest's crop/resize (Pillow's BILINEAR, bit for
  bit), LiteRT.js inference on the bundled int8 model, top-3; HTTP server fallback.
- ``android_demo.build``: bundle + page + LiteRT.js -> signed, aligned APK, with the Debian
  Android tools and no Android SDK (``python -m android_demo.build --bundle B --out X.apk``).
- ``android_demo/setup.sh``: installs those tools (apt) and the pinned npm packages.
"""

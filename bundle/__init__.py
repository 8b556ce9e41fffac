"""The bundle contract: the format every consumer of a trained model reads (pure Python, no TF).

- ``bundle.images``: untrusted bytes -> upright RGB picture (EXIF, CMYK, 16-bit, alpha, bombs).
- ``bundle.preprocess``: the reference crop/resize/quantize rule recorded in every manifest.
- ``bundle.manifest``: the directory layout, manifest schema and ``load_bundle`` validator.
- ``bundle.publish``: how export seals (SEAL) and atomically publishes (symlink swap) a bundle.
- ``bundle.cpus``: the CPU cores this process may use, on any OS (every stage sizes pools by it).

Stages import from here and from stages before them only; this package imports numpy and
Pillow, never TensorFlow, so the server and the APK build can use it.
"""

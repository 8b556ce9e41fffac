"""The data stage: photos from a source -> ``ROOT/<wnid>/*`` + ``ROOT/dataset.json`` (read by every later stage).

Modules: ``dataset`` (the dataset.json seam: build/load), ``catalog`` (class lists), one module per
source (``fetch``, ``importer``, ``download``, ``others``), ``web`` (the HTTP client), ``stats``
(table + contact sheet), ``cli`` (``python -m training.data ...``).

    python -m training.data fetch --out data/office20
    from training.data.dataset import load_dataset
"""

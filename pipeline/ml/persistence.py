"""Saving and loading models safely (skops, never pickle).

A model file is a skops archive of plain containers and stock scikit-learn
objects. Loading first lists the types the file would instantiate and refuses the
file if any is outside skops' default-trusted set plus an explicit allow-list, so a
crafted file cannot run code. The provenance (codebook hash, label set, library
versions, training data hash) is checked against the codebook in use.
"""
from __future__ import annotations

import json
import logging
import platform
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import skops
import skops.io as sio

from pipeline.errors import ModelError
from pipeline.ml.model import CoderModel

log = logging.getLogger(__name__)

FORMAT = "qcode-model"
FORMAT_VERSION = 1
# Types beyond skops' defaults a model file may contain. Keep this list short and
# exact: anything else in a file is refused.
EXTRA_TRUSTED: list[str] = []


def library_versions() -> dict[str, str]:
    """Versions that affect what a model predicts."""
    import spacy
    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
            "numpy": np.__version__, "pandas": pd.__version__, "skops": skops.__version__,
            "spacy": spacy.__version__}


def model_to_bytes(model: CoderModel) -> bytes:
    """Serialise a model to skops bytes (no pickle)."""
    meta = dict(model.meta)
    meta.setdefault("libraries", library_versions())
    payload = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "estimator": model.estimator,
        # Everything that is not an estimator travels as JSON text: trivially safe to load.
        "info": json.dumps({
            "labels": model.labels, "learnable": model.learnable,
            "not_learnable": model.not_learnable, "thresholds": model.thresholds,
            "hybrid": model.hybrid, "meta": meta, "train_ids": model.train_ids,
        }, ensure_ascii=False, sort_keys=True),
    }
    return sio.dumps(payload)


def model_from_bytes(data: bytes, source: str = "<model>") -> CoderModel:
    """Load a model from skops bytes, refusing untrusted content.

    Raises:
        ModelError: not a skops archive, untrusted types inside, or not a qcode model.
    """
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except (zipfile.BadZipFile, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise ModelError(f"{source}: not a qcode model file (not a skops archive: "
                         f"{type(exc).__name__})") from exc
    refused = [t for t in untrusted if t not in EXTRA_TRUSTED]
    if refused:
        raise ModelError(f"{source}: refusing to load: the file contains untrusted types "
                         f"({', '.join(sorted(refused)[:5])}); only models written by "
                         "'qcode train' can be loaded")
    try:
        payload = sio.loads(data, trusted=[t for t in untrusted if t in EXTRA_TRUSTED] or None)
    except Exception as exc:  # skops raises many types for damaged archives
        raise ModelError(f"{source}: model file is damaged ({type(exc).__name__})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{source}: not a qcode model file")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{source}: model format version {payload.get('format_version')} is "
                         f"not supported (this qcode reads version {FORMAT_VERSION}); retrain")
    info = json.loads(payload["info"])
    return CoderModel(estimator=payload["estimator"], labels=info["labels"],
                      learnable=info["learnable"], not_learnable=info["not_learnable"],
                      thresholds=info["thresholds"], hybrid=info["hybrid"], meta=info["meta"],
                      train_ids=info["train_ids"])


def check_codebook(model: CoderModel, codebook: Any, source: str = "<model>") -> None:
    """Refuse a model trained on a different codebook.

    Raises:
        ModelError: codebook hash differs (model trained with a codebook) or the label
            set has codes the codebook lacks (model trained without one).
    """
    trained = model.meta.get("codebook_hash")
    if trained:
        if trained != codebook.hash:
            raise ModelError(
                f"{source}: the model was trained with another codebook (hash {trained[:12]}, "
                f"{model.meta.get('codebook_path', '?')}); {codebook.path} has hash "
                f"{codebook.hash[:12]}. Retrain with 'qcode train --codebook {codebook.path}'")
        return
    unknown = [c for c in model.labels if c not in set(codebook.ids())]
    if unknown:
        raise ModelError(f"{source}: the model's codes are not in {codebook.path}: "
                         f"{', '.join(unknown)}")


def save_model(model: CoderModel, path: str | Path) -> Path:
    """Write a model file atomically."""
    from pipeline.store import atomic_write_bytes
    return atomic_write_bytes(path, model_to_bytes(model))


def load_model(path: str | Path, codebook: Any = None) -> CoderModel:
    """Load a model file; with ``codebook``, refuse a mismatched one.

    Raises:
        ModelError: missing, unsafe, damaged or mismatched model.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: model file not found (train one with 'qcode train')")
    model = model_from_bytes(p.read_bytes(), str(p))
    if codebook is not None:
        check_codebook(model, codebook, str(p))
    current = sklearn.__version__
    trained = model.meta.get("libraries", {}).get("scikit-learn")
    if trained and trained != current:
        log.warning("%s was trained with scikit-learn %s, this is %s: predictions may differ",
                    p, trained, current)
    return model

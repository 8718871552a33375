"""The model zoo registry: name -> "module:Class". Grep here to find every zoo model."""
from __future__ import annotations

import importlib

ZOO: dict[str, str] = {
    "ctr-ml100k": "odbench.models.ctr:CtrModel",
    "minilm-l6-query": "odbench.models.encoder:EncoderModel",
    "reviews-dept-clf": "odbench.models.classifier:ClassifierModel",
}


def get_model(name: str):
    try:
        module, cls = ZOO[name].split(":")
    except KeyError:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(ZOO)}") from None
    return getattr(importlib.import_module(module), cls)()

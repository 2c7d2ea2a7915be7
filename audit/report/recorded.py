"""The dataset a record was made with (``results["dataset"]``), whose declarations the report reads."""

from __future__ import annotations

from collections.abc import Mapping

from audit.datasets import DEFAULT_DATASET, dataset_names, get_dataset
from audit.datasets.base import Dataset


def record_dataset(results: Mapping) -> Dataset | None:
    """The record's dataset, or None when it is not installed here (the report then shows what is generic).
    Records written before the ``dataset`` key were runs of the default dataset."""
    name = results.get("dataset") or DEFAULT_DATASET
    return get_dataset(name) if isinstance(name, str) and name in dataset_names() else None

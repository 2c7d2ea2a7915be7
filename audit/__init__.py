"""bias-transfer-audit: does a causal LM's intrinsic gender bias transfer to its prompted behaviour?

Mackraz et al. 2024, "Evaluating Gender Bias Transfer between Pre-trained and Prompt-Adapted
Language Models"; Sivakumar, Mackraz et al. 2025, "Bias after Prompting" (EMNLP Findings).
"""

from ._errors import AuditError, ConfigError, DataError, ModelLoadError
from ._generated import generate_items
from ._items import Item
from ._occupations import Occupation, lookup_occupation, occupations

__version__ = "0.1.0"

__all__ = [
    "AuditError",
    "ConfigError",
    "DataError",
    "Item",
    "ModelLoadError",
    "Occupation",
    "generate_items",
    "lookup_occupation",
    "occupations",
]

"""CrowS-Pairs (Nangia, Vania, Bhalerao and Bowman, EMNLP 2020) for the audit: 1,508 sentence pairs over
nine bias types; see README.md in this folder for what it measures, how, and its known problems."""

from .items import LESS, MORE, CrowsPair
from .official import BIAS_TYPES, parse_file, parse_source

__all__ = ["BIAS_TYPES", "LESS", "MORE", "CrowsPair", "parse_file", "parse_source"]

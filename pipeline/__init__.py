"""qcode: reproducible auto-coding of qualitative interview transcripts.

Stages (one module each, data flows one way):
ingest -> segment -> nlp -> code -> store -> aggregate -> figures/notebooks,
with exchange (REFI-QDA) on the side.
"""
__version__ = "0.1.0"

"""The small core every layer stands on: atomic writes, one-line errors, the folder contract, digests, tables."""

"""Compressor registry: name -> "module:Class". Empty until the compressors land."""
COMPRESSORS: dict[str, str] = {}

"""The neutral core: records, feeds, validation, ONNX helpers and shared constants.

Every other package imports it; it imports none of them."""

"""The Faust app and the pure core it wraps (``core/``); adapters move data in and out."""

//! Python bindings for boc (skeleton; the Python package issue fills it in).

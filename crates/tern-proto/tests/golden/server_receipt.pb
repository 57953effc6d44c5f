²
d:alice:bobbob
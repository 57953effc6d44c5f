º
d:alice:bobbob
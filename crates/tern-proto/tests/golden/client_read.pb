J
d:alice:bob
:
d:alice:bob
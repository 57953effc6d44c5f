R
d:alice:bob
:
d:alice:bob
 d
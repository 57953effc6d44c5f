:
d:alice:bobd 2
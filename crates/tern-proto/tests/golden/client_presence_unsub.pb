	b
bob
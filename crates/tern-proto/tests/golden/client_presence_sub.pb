Z
bob
carol
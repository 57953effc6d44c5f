2
bobc-42"hi
rD
g:x101JD3Z8Q4W5Y6V7T8S9R0P1N19"system*hi рџЂ08“ШЧќЄ3Bc-19
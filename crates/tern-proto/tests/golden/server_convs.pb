’|
d
d:alice:bobbob(08BH
d:alice:bob01JD3Z8Q4W5Y6V7T8S9R0P1N17"alice*hi рџЂ8‘ШЧќЄ3Bc-17

g:x1"
Lunch crew
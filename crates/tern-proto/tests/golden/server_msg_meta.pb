r}
d:alice:bob01JD3Z8Q4W5Y6V7T8S9R0P1N18"alice*hi рџЂ8’ШЧќЄ3Bc-18J3{"reply_to":16,"mentions":["bob","carol"],"s":"Г©"}
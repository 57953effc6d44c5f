ЉЦ
d:alice:bobH
d:alice:bob01JD3Z8Q4W5Y6V7T8S9R0P1N11"alice*hi рџЂ8‹ШЧќЄ3Bc-11}
d:alice:bob01JD3Z8Q4W5Y6V7T8S9R0P1N12"alice*hi рџЂ8ЊШЧќЄ3Bc-12J3{"reply_to":16,"mentions":["bob","carol"],"s":"Г©"}
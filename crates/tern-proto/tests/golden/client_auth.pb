*&
eyJhbGciOiJIUzI1NiJ9.e30.siglaptop
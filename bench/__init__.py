"""Scale benchmark: seed a big desk, time its pages next to stock Flask-Admin (see bench/README.md)."""

"""The infrastructure tier reads the template that the session-wide `synth` fixture (tests/conftest.py)
synthesises once."""

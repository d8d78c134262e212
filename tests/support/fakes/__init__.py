"""Fake outside services (Gemini, YouTube) that tests run on 127.0.0.1."""

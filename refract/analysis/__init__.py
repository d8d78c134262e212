"""Offline analyses behind the ``local`` model backend: text statistics, extractive
summaries, comment sentiment, picture descriptions and the cartoon restyle."""

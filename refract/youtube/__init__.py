"""YouTube ingestion: links parsed (``links``), the HTTP calls (``client``) and the cached,
quota-counted material tasks use (``cache``). See ``client.py`` for the stable error codes."""

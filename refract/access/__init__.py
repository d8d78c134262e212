"""Who may use the API: API keys (stored as hashes) and the request rates they are allowed."""

"""Store implementations; each is imported only when its URI scheme is first used."""

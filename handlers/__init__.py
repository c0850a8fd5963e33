"""This deployment's handlers. Workers, `tidings serve` and `tidings subscribe` import
every module of this package (TIDINGS_HANDLERS): a new module needs nothing here."""

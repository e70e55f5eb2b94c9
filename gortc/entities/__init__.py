"""Domain objects and errors: no I/O and no framework imports here."""

"""Hand-written upcasters: version steps the schema cannot derive."""

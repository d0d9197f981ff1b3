"""`logway forward`: pipelines from a gateway source to aggregators' own protocols, at least
once, with the journal as the buffer (ARCHITECTURE.md, issue 13)."""

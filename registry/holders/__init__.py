"""Holders (持证人, issue 15): holder keys, key-bound certificates, presentations, grants (授权他人用证),
document-key wrapping for grantee agencies, the GrantRegistry outbox and inbox lanes, and the CLI wallet."""

"""Data and features: the deterministic credit-risk generator and the Feast repository it feeds."""

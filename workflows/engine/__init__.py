"""The embedded engine: runs Argo Workflows YAML on one machine with Argo's semantics.

Kept import-light on purpose: the CLI imports sub-modules lazily, so nothing heavy belongs here.
"""

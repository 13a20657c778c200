"""The Argo spec layer: what Argo's own YAML means, independent of who compiles or runs it.

The bottom of ``workflows/``: the compiler (``workflows.compiler``) and the embedded engine (``workflows.engine``)
import it, never each other for it. So far it holds the ``depends`` grammar (``workflows.spec.depends``); the
expressions, the schema and the linter are to follow (docs/architecture.md, issue 12).
"""

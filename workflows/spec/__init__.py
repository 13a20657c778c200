"""The Argo spec layer: what Argo's own YAML means, independent of who compiles, runs or submits it.

The bottom of ``workflows/``: the compiler (``workflows.compiler``), the embedded engine (``workflows.engine``) and
the client (``workflows.client``) import it; it imports none of them (tests/core/test_layers.py).

- ``schema``: Argo's CRD schemas, translated for jsonschema (cached).
- ``lint``: the linter, schema + the controller's semantic checks (``_semantic``, ``_references``, ``_graph``).
- ``yamlio``: YAML documents with their source, for the linter's messages and the compiler's output.
- ``depends``: the ``depends`` grammar of DAG tasks.
- ``submit``: Workflows built from other objects (``submit --from``, SubmitOpts, cron schedules).

The expression language stays in the engine (``workflows.engine.expressions``): only the engine evaluates expressions.
"""

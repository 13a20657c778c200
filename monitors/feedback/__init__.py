"""Ground-truth feedback: outcomes posted to the receiver, stored beside the lake, joined to payloads by request id.

``_parse`` validates rows, ``_store`` keeps them (SQLite, one transaction per ingest), ``_http`` is ``POST /feedback``,
``quality`` joins them to a lake window and computes live ROC AUC, log loss and calibration error, ``cli`` is
``driftloop feedback``. See docs/feedback.md.
"""

"""The local stand-in for Argo CD + Argo Rollouts: ``driftloop deployer`` (``deployer.py``, ``cli.py``) follows the
GitOps branch and canaries each new model pin through the sidecar, judged by ``analysis.py`` — the AnalysisTemplate's
conditions as code."""

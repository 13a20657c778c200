"""The local stand-in for Argo CD + Argo Rollouts. So far only the canary conditions (``analysis``); the
branch-following deployer itself is not built yet (docs/deploy.md)."""

"""`driftloop deployer`: the local stand-in for Argo CD + Argo Rollouts (follows the GitOps branch)."""

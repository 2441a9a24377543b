"""Publishing the rollout's progress and the system's effect: the plan, the public page, the phase
evaluation reports and the accepted installations (issue 22)."""

"""PPO for genet-testbed: networks (Pensieve-PPO actor-critic, Aurora MLPs), returns/advantages,
the clipped losses, adaptive entropy, and the update step. Rollout collection lives with each
use case's batched simulator; the update is shared."""

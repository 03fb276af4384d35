"""Optimizer state on a device mesh: sharded like its parameters, or split ZeRO-1 style (see `sharding`)."""

from gradxform.distributed.sharding import init_sharded, map_state, state_sharding, zero1, zero1_sharding

__all__ = ["init_sharded", "map_state", "state_sharding", "zero1", "zero1_sharding"]

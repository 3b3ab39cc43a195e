"""Classic neural style transfer, the baselines StyleBoost is compared with: Gatys et al.'s optimisation,
AdaIN's feed-forward arbitrary transfer, and the ``styleboost transfer`` command that runs them on folders."""

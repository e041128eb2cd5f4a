"""scaimind_nb: the ScaiMind evaluation API in Jupyter."""

"""scaimind_local: the embedded ScaiMind coordinator."""

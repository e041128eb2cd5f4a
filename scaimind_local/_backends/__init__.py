"""Model backends: turn a model folder's manifest into an object that answers prompts."""

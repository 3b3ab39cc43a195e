"""Base-model knowledge: loading pipelines, model families, tokens, prompts, weight files."""

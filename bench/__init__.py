"""Load benchmark of litegate against a cheap fake backend (and LiteLLM side by side): see README.md."""

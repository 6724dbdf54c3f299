"""The repository's own developer tools (run from the repository root; not installed)."""

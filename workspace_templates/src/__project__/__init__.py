"""The ${project} package."""

"""Plain factory functions per domain: fill defaults, add, flush, return."""

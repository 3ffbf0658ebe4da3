"""Runnable examples: data generators and pipelines (``eta``: the tutorial's Uber Eats ETA
example). They use Spark."""

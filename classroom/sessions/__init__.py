"""Tutoring sessions: scheduling, lifecycle, completion, billing, payout, reviews."""

"""Playcount core: what every service shares (settings, messages, keys, AWS clients, the SQS loop)."""

"""What is sent: sources of realistic logs, rendered before the workers fork (never by the hot path)."""

"""loggend: a syslog load generator for SIEM ingestion testing."""

__version__ = "0.1.0"

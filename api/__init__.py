"""The read side: HTTP API and the monitoring dashboard."""

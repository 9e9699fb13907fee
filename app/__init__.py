"""tidelog broker service."""

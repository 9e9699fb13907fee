"""tidelog storage engine."""
